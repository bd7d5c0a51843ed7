"""The ``openai`` backend's whole-call deadline and response-size limit, against a real server.

Every scenario is served by the loopback server in conftest.py: a body or headers dripped one
byte at a time (each byte well inside any read timeout), a stream without end, a gzip bomb, a
body of empty gzip members. Time bounds in these tests catch hangs; they are not performance
figures.
"""

from __future__ import annotations

import math
import time
import tracemalloc

import pytest
from sof_response import (
    LLMBackendError,
    LLMProtocolError,
    LLMTimeoutError,
    OpenAICompatibleBackend,
    ResponseConfigError,
    ResponseSettings,
)

import sof_core

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What does SOF do?"},
]
#: How far past a deadline a cut may land before we call it a hang.
SLACK = 0.75


def backend_for(server, scenario: str, **kwargs) -> OpenAICompatibleBackend:
    kwargs.setdefault("model", "test-model")
    kwargs.setdefault("timeout", 5.0)
    return OpenAICompatibleBackend(base_url=server.url(scenario), **kwargs)


def failure(call) -> tuple[LLMBackendError, float]:
    """The typed error ``call`` raises, and how long it took to raise it."""
    started = time.monotonic()
    with pytest.raises(LLMBackendError) as caught:
        call()
    return caught.value, time.monotonic() - started


# --- the deadline ------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["drip", "driphead"])
def test_a_server_dripping_bytes_is_cut_at_the_timeout(chat_server, scenario):
    backend = backend_for(chat_server, scenario, timeout=0.6)

    error, took = failure(lambda: backend.generate(MESSAGES))

    assert isinstance(error, LLMTimeoutError), error
    assert took < 0.6 + SLACK
    assert error.reason == "timeout"
    assert "0.6s" in str(error) and "SOF_LLM_TIMEOUT" in str(error)


def test_an_endless_stream_is_cut_at_the_timeout(chat_server):
    backend = backend_for(chat_server, "endless", timeout=0.6)

    error, took = failure(lambda: backend.generate(MESSAGES, stream=True))

    assert isinstance(error, LLMTimeoutError), error
    assert took < 0.6 + SLACK
    assert "while reading the answer" in str(error)
    assert chat_server.disconnected.wait(2), "the server never saw the client hang up"


def test_a_deadline_from_the_caller_wins_when_it_comes_first(chat_server):
    backend = backend_for(chat_server, "drip", timeout=30)

    error, took = failure(
        lambda: backend.generate(MESSAGES, deadline=time.monotonic() + 0.5)
    )

    assert isinstance(error, LLMTimeoutError), error
    assert took < 0.5 + SLACK
    assert error.reason == "deadline"
    assert "max_execution_time" in str(error)


def test_the_core_deadline_is_used_when_sof_core_offers_one(chat_server, monkeypatch):
    """sof_core.current_deadline() is the running skill's deadline (None outside a run)."""
    end = time.monotonic() + 0.5
    monkeypatch.setattr(sof_core, "current_deadline", lambda: end, raising=False)
    backend = backend_for(chat_server, "endless", timeout=30)

    error, took = failure(lambda: backend.generate(MESSAGES, stream=True))

    assert isinstance(error, LLMTimeoutError), error
    assert took < 0.5 + SLACK
    assert error.reason == "deadline"


def test_with_no_time_left_the_backend_does_not_even_connect(chat_server):
    backend = backend_for(chat_server, "ok")

    error, _ = failure(lambda: backend.generate(MESSAGES, deadline=time.monotonic() - 1))

    assert isinstance(error, LLMTimeoutError)
    assert "no time left" in str(error)
    assert chat_server.requests == []


def test_a_server_that_never_answers_is_cut_at_the_deadline(chat_server):
    backend = backend_for(chat_server, "slow", timeout=30)

    error, took = failure(lambda: backend.generate(MESSAGES, deadline=time.monotonic() + 0.4))

    assert isinstance(error, LLMTimeoutError)
    assert took < 0.4 + SLACK
    assert "waiting for the response" in str(error)


@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan, 1e300])
def test_timeouts_must_be_finite_and_positive(value):
    with pytest.raises(ResponseConfigError, match="timeout"):
        ResponseSettings(timeout=value)._check()
    with pytest.raises(ResponseConfigError, match="timeout"):
        OpenAICompatibleBackend(base_url="http://127.0.0.1:1/v1", timeout=value)


@pytest.mark.parametrize(("variable", "value", "key"), [
    ("SOF_LLM_TIMEOUT", "inf", "timeout"), ("SOF_LLM_TIMEOUT", "1e300", "timeout"),
    ("SOF_LLM_TIMEOUT", "0", "timeout"), ("SOF_LLM_MAX_RESPONSE_BYTES", "0", "max_response_bytes"),
])
def test_an_out_of_range_variable_is_named_in_the_error(monkeypatch, variable, value, key):
    # A value that is not a number named its variable; one out of range named only the key.
    monkeypatch.setenv(variable, value)
    with pytest.raises(ResponseConfigError) as caught:
        OpenAICompatibleBackend(base_url="http://127.0.0.1:1/v1").generate(MESSAGES)
    assert f"'{key}' (from environment variable {variable})" in str(caught.value)
    assert caught.value.key == f"plugin_settings.response.{key}"


# --- the size limit ----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_gzip_bomb_stops_at_max_response_bytes_without_the_memory(chat_server, stream):
    from sof_response import LLMResponseTooLargeError

    backend = backend_for(chat_server, "gzipbomb", max_response_bytes=1_000_000)
    backend.client()  # made once per backend; not part of what one answer costs
    tracemalloc.start()
    try:
        error, _ = failure(lambda: backend.generate(MESSAGES, stream=stream))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert isinstance(error, LLMResponseTooLargeError), error
    assert error.reason == "size"
    assert (error.which, error.limit) == ("decoded", 1_000_000)
    message = str(error)
    assert "max_response_bytes = 1000000" in message
    assert "decompressed" in message and "SOF_LLM_MAX_RESPONSE_BYTES" in message
    # A 100 MB answer used to be built; now memory stays a small multiple of the limit.
    assert peak < 4 * 1_000_000, f"peak {peak} bytes"


def test_bytes_on_the_wire_are_capped_even_when_they_decode_to_nothing(chat_server):
    from sof_response import LLMResponseTooLargeError

    backend = backend_for(chat_server, "gzipempty", max_response_bytes=64 * 1024)

    error, took = failure(lambda: backend.generate(MESSAGES))

    assert isinstance(error, LLMResponseTooLargeError), error
    assert error.which == "raw"
    assert "bytes received" in str(error)
    assert took < 2.0


def test_an_uncompressed_endless_stream_stops_at_the_size_limit(chat_server):
    from sof_response import LLMResponseTooLargeError

    backend = backend_for(chat_server, "endless", max_response_bytes=20_000)

    error, took = failure(lambda: backend.generate(MESSAGES, stream=True))

    assert isinstance(error, LLMResponseTooLargeError), error
    assert took < 2.0
    assert chat_server.disconnected.wait(2)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("scenario", ["gzipped", "deflated", "rawdeflated", "twomembers"])
def test_compressed_answers_within_the_limit_are_decoded(chat_server, scenario, stream):
    result = backend_for(chat_server, scenario).generate(MESSAGES, stream=stream)

    assert result.text == chat_server.reply
    assert chat_server.requests[-1]["headers"]["Accept-Encoding"] == "gzip, deflate"


def test_an_encoding_that_was_not_offered_is_a_protocol_error(chat_server):
    error, _ = failure(lambda: backend_for(chat_server, "brotli").generate(MESSAGES))

    assert isinstance(error, LLMProtocolError)
    assert "Content-Encoding 'br'" in str(error)


def test_the_size_limit_is_a_setting_with_an_environment_variable():
    from sof_response.openai_backend import DEFAULT_MAX_RESPONSE_BYTES

    assert ResponseSettings().max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES == 8 * 1024 * 1024
    settings = ResponseSettings.resolve(
        {"max_response_bytes": 4096}, environ={"SOF_LLM_MAX_RESPONSE_BYTES": "2048"}
    )
    assert settings.max_response_bytes == 2048
    assert OpenAICompatibleBackend().with_settings(settings).max_response_bytes == 2048
    with pytest.raises(ResponseConfigError, match="max_response_bytes"):
        ResponseSettings.resolve({"max_response_bytes": 0})
    with pytest.raises(ResponseConfigError, match="SOF_LLM_MAX_RESPONSE_BYTES"):
        ResponseSettings.resolve(environ={"SOF_LLM_MAX_RESPONSE_BYTES": "lots"})
