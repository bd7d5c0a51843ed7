"""Hostile skills, legacy pipelines and requests: each request fails alone, with the
documented JSON error, and the server goes on serving."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sof_serve.server import MAX_HEAD_BYTES

from sof_core import UIF, BaseSkillModule, CoordinatorEngine, SOFConfigManager

Served = Callable[..., Any]


class InterruptSkill(BaseSkillModule):
    skill_name = "InterruptSkill"
    skill_description = "Raises KeyboardInterrupt from its worker thread."
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        raise KeyboardInterrupt


def hostile_legacy(query: str, **context: Any) -> str:
    if query == "kbint":
        raise KeyboardInterrupt
    if query == "exit":
        raise SystemExit(3)
    return f"legacy:{query}"


def _still_serving(http: httpx.Client) -> None:
    assert http.get("/healthz").status_code == 200
    again = http.post("/v1/query", json={"query": "fine"})
    assert again.status_code == 200, again.text
    assert again.json()["final_response"] == "legacy:fine"


@pytest.mark.parametrize(("query", "named"), [("kbint", "KeyboardInterrupt"),
                                              ("exit", "SystemExit: 3")])
def test_legacy_raising_base_exception_fails_the_request_not_the_server(
        served: Served, query: str, named: str) -> None:
    # KeyboardInterrupt / SystemExit from the legacy pipeline's worker thread used to be
    # re-raised out of the event loop: the server died (exit 130), later connections refused.
    server = served(legacy=hostile_legacy)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post("/v1/query", json={"query": query})
        assert answer.status_code == 500
        assert answer.headers["content-type"].startswith("application/json")
        err = answer.json()["error"]
        assert err["status"] == 500 and err["code"] == "internal_error"
        assert named in err["message"]
        run_id = http.get("/v1/runs?limit=1").json()["runs"][0]["run_id"]
        assert run_id in err["message"]
        run = http.get(f"/v1/runs/{run_id}").json()
        assert run["route"]["ok"] is False and named in run["route"]["error"]
        _still_serving(http)


def test_skill_raising_keyboard_interrupt_fails_the_request_not_the_server(
        served: Served, engine: CoordinatorEngine, manager: SOFConfigManager) -> None:
    engine.register_skills([InterruptSkill], "serve-hostile-tests")
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100)
    server = served(legacy=hostile_legacy)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post("/v1/query", json={"query": "q", "plan": ["InterruptSkill"]})
        assert answer.status_code == 500
        assert "KeyboardInterrupt" in answer.json()["error"]["message"]
        # The run stored is the engine's report of it (it was a made-up placeholder with
        # no plan and no results): the skill that raised is named in it.
        run = http.get("/v1/runs?limit=1").json()["runs"][0]
        stored = http.get(f"/v1/runs/{run['run_id']}").json()
        assert stored["plan"] == ["InterruptSkill"]
        assert stored["route"]["path"] == "sof" and stored["route"]["ok"] is False
        assert "KeyboardInterrupt" in stored["route"]["error"]
        [result] = stored["skills"]
        assert result["skill"] == "InterruptSkill"
        assert result["error_type"] == "KeyboardInterrupt"
        assert http.get("/healthz").status_code == 200
        manager.update_config(use_sof_framework=False)
        _still_serving(http)


@pytest.mark.parametrize(("route", "body", "field"), [
    ("/v1/query", '{"query": "hi", "user_id": "\\ud800"}', "'user_id'"),
    ("/v1/query", '{"query": "hi", "session_id": "a\\udfffb"}', "'session_id'"),
    ("/v1/query", '{"query": "hi", "plan": ["\\ud800"]}', "'plan'[0]"),
    ("/v1/query", '{"query": "hi", "context": {"k": "\\ud800"}}', "'context'['k']"),
    ("/v1/query", '{"query": "hi", "context": {"\\ud800": "v"}}', "'context' key"),
    ("/v1/plan", '{"query": "hi", "profile": "\\ud800"}', "'profile'"),
    ("/v1/validate", '{"plan": ["AnswerSkill", "\\ud800"]}', "'plan'[1]"),
])
def test_lone_surrogate_in_a_field_is_422_naming_it(
        served: Served, route: str, body: str, field: str) -> None:
    # Was a plain-text 500 with a traceback (the bucket hash or the plan compiler tried to
    # encode the string).
    server = served()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post(route, content=body.encode(),
                           headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    err = answer.json()["error"]
    assert err["code"] == "invalid_body"
    assert field in err["message"] and "surrogate" in err["message"]


def surrogate_legacy(query: str, **context: Any) -> str:
    return "bad \ud800 answer"


def test_answer_with_a_lone_surrogate_is_served_and_its_run_reads_back(
        served: Served) -> None:
    # Was a plain-text 500 for the query, and GET /v1/runs/{id} answered 500 forever.
    server = served(legacy=surrogate_legacy)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post("/v1/query", json={"query": "hi"})
        assert answer.status_code == 200, answer.text
        run = answer.json()
        assert run["final_response"] == "bad \ufffd answer"
        again = http.get(f"/v1/runs/{run['run_id']}")
        assert again.status_code == 200
        assert again.json()["final_response"] == "bad \ufffd answer"
        assert http.get("/v1/runs").status_code == 200
        assert http.get("/v1/stats").status_code == 200


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/nope", 404), ("GET", "/v1", 404), ("GET", "/v1/nothing", 404),
    ("GET", "/static/../app.py", 404), ("GET", "/static/%2e%2e/app.py", 404),
    ("GET", "/static/missing.js", 404),
    ("GET", "/v1/query", 405), ("PUT", "/v1/query", 405), ("DELETE", "/v1/runs", 405),
    ("POST", "/v1/runs/stream", 405), ("PATCH", "/v1/admin/rollout", 405),
])
def test_unknown_routes_and_methods_are_json_errors(
        served: Served, method: str, path: str, status: int) -> None:
    # Were Starlette's plain-text "Not Found" / "Method Not Allowed".
    server = served()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.request(method, path)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/json")
    err = answer.json()["error"]
    assert err["status"] == status
    assert err["code"] == {404: "not_found", 405: "method_not_allowed"}[status]
    assert err["message"]
    if status == 405:
        assert "allow" in answer.headers


RELEASE = threading.Event()


def hanging_legacy(query: str, **context: Any) -> str:
    if query == "hang":
        RELEASE.wait(30)
    return f"legacy:{query}"


def test_hung_work_keeps_its_place_until_its_thread_returns(served: Served) -> None:
    # A request answered 504 used to free its place while its thread ran on, so every
    # further request started one more thread: threads grew without bound.
    RELEASE.clear()
    server = served(legacy=hanging_legacy, max_concurrency=2, max_queue=4,
                    request_timeout=0.5)
    threads_before = threading.active_count()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            first = [http.post("/v1/query", json={"query": "hang"}) for _ in range(2)]
            assert [r.status_code for r in first] == [504, 504]
            started = time.monotonic()
            busy = http.post("/v1/query", json={"query": "hang"})
            assert busy.status_code == 503  # at once, not after another request_timeout
            assert time.monotonic() - started < 0.4
            assert busy.headers["retry-after"] == "1"
            assert "max_concurrency" in busy.json()["error"]["message"]
            stats = http.get("/v1/stats").json()["workers"]
            assert stats == {"max": 2, "busy": 2, "hung": 2}
            assert threading.active_count() <= threads_before + 2 + 1
            RELEASE.set()  # the hung work returns: its places are free again
            deadline = time.monotonic() + 10
            while http.get("/v1/stats").json()["workers"]["hung"] and (
                    time.monotonic() < deadline):
                time.sleep(0.05)
            ok = http.post("/v1/query", json={"query": "fine"})
            assert ok.status_code == 200, ok.text
            assert http.get("/v1/stats").json()["workers"]["busy"] == 0
    finally:
        RELEASE.set()


def _read_until_closed(sock: socket.socket, seconds: float) -> tuple[bytes, float]:
    sock.settimeout(seconds)
    started = time.monotonic()
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data, time.monotonic() - started


@pytest.mark.parametrize("sent", [b"", b"POST /v1/query HTTP/1.1\r\nHost: x\r\n"])
def test_a_connection_without_a_whole_request_head_is_closed(served: Served,
                                                             sent: bytes) -> None:
    # Slowloris: connections that sent part of a head, or nothing, were never timed out;
    # 21,000 of them used up the process's file descriptors.
    server = served(header_timeout=0.5)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(sent)
        data, waited = _read_until_closed(sock, 10)
    assert waited < 5
    assert data.startswith(b"HTTP/1.1 408")
    assert b'"header_timeout"' in data
    with httpx.Client(base_url=server.url, timeout=30) as http:  # keep-alive still works
        assert http.get("/healthz").status_code == 200
        time.sleep(0.8)  # an idle keep-alive connection past header_timeout: closed, reopened
        assert http.get("/healthz").status_code == 200


def test_connections_past_max_connections_are_refused_at_once(served: Served) -> None:
    server = served(max_connections=3)
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", server.port)) as extra:
            data, _ = _read_until_closed(extra, 10)
        assert data.startswith(b"HTTP/1.1 503")
        assert b"max_connections" in data
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize("size", [400_000, 2_000_000])
def test_a_request_head_too_large_is_answered_431_not_reset(served: Served, size: int) -> None:
    # uvicorn answered 400 and closed with the rest of the head unread: the kernel then
    # reset the connection, and the client got ECONNRESET instead of any answer.
    server = served()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.get("/healthz", headers={"X-Big": "a" * size})
        assert answer.status_code == 431
        error = answer.json()["error"]
        assert error["code"] == "header_too_large"
        assert "16384 bytes" in error["message"]
        assert http.get("/healthz").status_code == 200  # a new connection is served


def _head(size: int) -> bytes:
    """A whole ``GET /healthz`` request head (request line, header lines, blank line) of
    exactly ``size`` bytes."""
    start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


@pytest.mark.parametrize(("size", "status", "first"),
                         [(MAX_HEAD_BYTES, b"200", MAX_HEAD_BYTES),
                          (MAX_HEAD_BYTES + 1, b"431", MAX_HEAD_BYTES + 1),
                          (40_000, b"431", 40_000),
                          (17_000, b"431", 16_000)])  # in two pieces, each under the limit
def test_a_whole_head_over_16_kib_is_431_however_it_arrives(served: Served, size: int,
                                                            status: bytes, first: int) -> None:
    # h11 limits only the head still arriving (its unparsed buffer): a whole head of any
    # size that arrived in one piece was served.
    server = served()
    head = _head(size)
    assert len(head) == size
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head[:first])
        if first < size:
            time.sleep(0.2)  # the server reads the first piece on its own
            sock.sendall(head[first:])
        data, _ = _read_until_closed(sock, 10)
    assert data.startswith(b"HTTP/1.1 " + status), data[:200]
    if status == b"431":
        assert b'"header_too_large"' in data and b"16384 bytes" in data


def test_a_malformed_request_is_answered_400_with_the_json_error(served: Served) -> None:
    server = served()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n" + b"x" * 300_000)
        data, waited = _read_until_closed(sock, 10)
    assert waited < 5
    assert data.startswith(b"HTTP/1.1 400"), data[:200]
    assert b'"bad_request"' in data
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/healthz").status_code == 200


def test_a_client_that_keeps_sending_after_its_answer_is_cut_off(served: Served) -> None:
    # The discarded rest of a bad request is bounded in time: a client that never stops
    # sending cannot hold its connection open.
    server = served()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 40_000)
        sock.settimeout(0.2)
        started = time.monotonic()
        answer = b""
        closed = False
        while time.monotonic() - started < 20:
            try:
                sock.sendall(b"a" * 4096)
            except OSError:  # reset or broken pipe: the server closed the connection
                closed = True
                break
            try:
                answer += sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                pass
            except OSError:
                closed = True
                break
            time.sleep(0.01)
    assert closed
    assert time.monotonic() - started < 10
    assert answer.startswith(b"HTTP/1.1 431")
