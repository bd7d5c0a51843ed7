"""One pooled HTTP client per ``openai`` backend: reused, thread-safe, closed when done."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sof_response import LLMTimeoutError, OpenAICompatibleBackend
from sof_response.httpio import environment_proxy

MESSAGES = [{"role": "user", "content": "What does SOF do?"}]


def backend_for(server, scenario: str = "ok", **kwargs) -> OpenAICompatibleBackend:
    kwargs.setdefault("timeout", 5.0)
    return OpenAICompatibleBackend(base_url=server.url(scenario), **kwargs)


def test_sequential_generations_reuse_one_connection(chat_server):
    backend = backend_for(chat_server)

    for number in range(6):
        assert backend.generate(MESSAGES, stream=number % 2 == 0).text == chat_server.reply

    assert backend.client() is backend.client()
    assert len(set(chat_server.client_ports)) == 1, chat_server.client_ports


def test_threads_share_the_client_safely(chat_server):
    backend = backend_for(chat_server)

    def ask(number: int) -> str:
        return backend.generate(MESSAGES, stream=number % 2 == 0).text

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(40)))

    assert answers == [chat_server.reply] * 40
    # Connections are pooled: at most one per thread, not one per call.
    assert len(set(chat_server.client_ports)) <= 8, len(set(chat_server.client_ports))


def test_a_body_held_open_after_done_costs_a_moment_not_the_deadline(chat_server):
    backend = backend_for(chat_server, "donehang", timeout=30)
    started = time.monotonic()

    result = backend.generate(MESSAGES, stream=True)

    assert result.text == chat_server.reply
    assert time.monotonic() - started < 1.0


def test_close_releases_the_connection_and_a_later_call_reconnects(chat_server, probe):
    before = probe.sockets()
    backend = backend_for(chat_server)
    backend.generate(MESSAGES)
    client = backend.client()
    assert probe.sockets() > before  # the kept-alive connection (both ends live here)

    backend.close()

    assert client.is_closed
    assert probe.settles(lambda: probe.sockets() <= before)
    assert backend.generate(MESSAGES).text == chat_server.reply


def test_the_backend_is_a_context_manager_that_closes_its_client(chat_server):
    with backend_for(chat_server) as backend:
        backend.generate(MESSAGES)
        client = backend.client()

    assert client.is_closed


def test_a_backend_that_is_dropped_closes_its_client(chat_server):
    backend = backend_for(chat_server)
    backend.generate(MESSAGES)
    client = backend.client()

    del backend
    gc.collect()

    assert client.is_closed


def test_a_pickled_backend_leaves_its_client_behind_and_still_works(chat_server):
    backend = backend_for(chat_server)
    backend.generate(MESSAGES)

    copy = pickle.loads(pickle.dumps(backend))

    assert copy.generate(MESSAGES).text == chat_server.reply
    assert copy.client() is not backend.client()
    assert (copy.base_url, copy.timeout, copy.max_response_bytes) == (
        backend.base_url, backend.timeout, backend.max_response_bytes,
    )


def _ask_in_child(backend: OpenAICompatibleBackend, answers) -> None:
    text = backend.generate(MESSAGES).text
    answers.put((text, backend._client_pid == os.getpid()))


@pytest.mark.skipif(sys.platform != "linux", reason="needs the fork start method")
def test_a_forked_child_makes_its_own_client_and_leaves_the_parents_alone(chat_server):
    backend = backend_for(chat_server)
    backend.generate(MESSAGES)
    parent_port = chat_server.client_ports[-1]
    context = multiprocessing.get_context("fork")
    answers = context.Queue()

    child = context.Process(target=_ask_in_child, args=(backend, answers))
    child.start()
    text, own_client = answers.get(timeout=10)
    child.join(10)

    assert (text, own_client) == (chat_server.reply, True)
    assert chat_server.client_ports[-1] != parent_port  # the child opened its own connection
    backend.generate(MESSAGES)
    assert chat_server.client_ports[-1] == parent_port  # the parent's is still alive


def test_the_environment_proxy_is_used_and_the_deadline_holds_through_it(
    chat_server, monkeypatch
):
    """Giving httpx our own transport turns its proxy support off; ours must take over."""
    for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://{chat_server.host}:{chat_server.port}")
    monkeypatch.setenv("http_proxy", f"http://{chat_server.host}:{chat_server.port}")

    answer = OpenAICompatibleBackend(base_url="http://llm.invalid/ok/v1", timeout=5).generate(
        MESSAGES
    )

    assert answer.text == chat_server.reply
    assert chat_server.requests[-1]["proxied"] is True
    assert chat_server.requests[-1]["target"] == "http://llm.invalid/ok/v1/chat/completions"

    dripping = OpenAICompatibleBackend(base_url="http://llm.invalid/drip/v1", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        dripping.generate(MESSAGES)
    assert time.monotonic() - started < 1.25


def test_no_proxy_exempts_a_host(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    assert environment_proxy("http://127.0.0.1:11434/v1") is None
    assert environment_proxy("http://llm.example/v1") == "http://proxy.example:3128"


def test_all_proxy_applies_to_any_scheme(monkeypatch):
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY",
                "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ALL_PROXY", "proxy.example:3128")
    monkeypatch.setenv("all_proxy", "proxy.example:3128")

    assert environment_proxy("https://api.example/v1") == "http://proxy.example:3128"
