"""Body size, concurrency and time limits answer with clear 413/503/504."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sof_serve.settings import ServeSettings

from sof_core import ConfigError

Served = Callable[..., Any]


IN_LEGACY = threading.Event()


def slow_legacy(query: str, **context: Any) -> str:
    IN_LEGACY.set()
    time.sleep(float(query))
    return "slow"


def test_body_over_the_limit_is_413(served: Served) -> None:
    server = served(max_body_bytes=200)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        big = http.post("/v1/query", json={"query": "x" * 500})
        ok = http.post("/v1/query", json={"query": "x" * 50})

        def chunks() -> Any:  # no Content-Length: counted while it streams in
            for _ in range(10):
                yield b"x" * 100

        streamed = http.post("/v1/query", content=chunks())
    assert big.status_code == 413
    assert "max_body_bytes" in big.json()["error"]["message"]
    assert ok.status_code == 200
    assert streamed.status_code == 413


def _hold_the_only_place(server: Any, seconds: float) -> tuple[threading.Thread, list[int]]:
    """A query that holds the server's one place for ``seconds`` (legacy answers it
    slowly), started in a thread: returned once it is being answered, with its status
    list (filled when it ends)."""
    results: list[int] = []

    def first() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            results.append(http.post("/v1/query", json={"query": str(seconds)}).status_code)

    IN_LEGACY.clear()
    thread = threading.Thread(target=first)
    thread.start()
    assert IN_LEGACY.wait(10)  # the first request is being answered
    return thread, results


def test_requests_past_max_concurrency_get_503(served: Served) -> None:
    server = served(legacy=slow_legacy, max_concurrency=1, max_queue=0)
    thread, results = _hold_the_only_place(server, 0.8)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        busy = http.post("/v1/query", json={"query": "0"})
        health = http.get("/healthz")
    thread.join()
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert "max_concurrency" in busy.json()["error"]["message"]
    assert health.status_code == 200  # health checks are never refused for being busy
    assert results == [200]


def test_watching_and_operating_a_saturated_server_still_works(served: Served) -> None:
    # Every place held by a query (a hung skill, say): /metrics, the page, stats, alerts
    # and the admin routes answered 503 busy, so an operator could neither see nor roll
    # back the server in the very incident. Only the routes that run work are limited.
    token = "ops-token"
    server = served(token=token, legacy=slow_legacy, max_concurrency=1, max_queue=0)
    thread, results = _hold_the_only_place(server, 1.5)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/v1/query", json={"query": "0"}).status_code == 503
        for path in ("/", "/metrics", "/v1/stats", "/v1/alerts", "/v1/runs", "/v1/skills",
                     "/openapi.json"):
            assert http.get(path).status_code == 200, path
        assert http.get("/v1/admin/config", headers=auth).status_code == 200
        rolled_back = http.post("/v1/admin/disable", headers=auth, json={})
    thread.join()
    assert rolled_back.status_code == 200, rolled_back.text
    assert results == [200]


def test_requests_past_max_concurrency_wait_in_the_queue(served: Served) -> None:
    server = served(legacy=slow_legacy, max_concurrency=1, max_queue=4)
    codes: list[int] = []

    def one() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            codes.append(http.post("/v1/query", json={"query": "0.2"}).status_code)

    threads = [threading.Thread(target=one) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * 5  # one at a time, the others waited for the slot


def test_request_over_the_time_limit_is_504_and_the_server_stays_up(served: Served) -> None:
    server = served(legacy=slow_legacy, request_timeout=0.2)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        late = http.post("/v1/query", json={"query": "1"})
        after = http.post("/v1/query", json={"query": "0"})
    assert late.status_code == 504
    assert "request_timeout" in late.json()["error"]["message"]
    assert after.status_code == 200
    with httpx.Client(base_url=server.url, timeout=30) as http:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the late run finishes and is kept
            queries = [r["query"] for r in http.get("/v1/runs").json()["runs"]]
            if "1" in queries:
                break
            time.sleep(0.05)
    assert "1" in queries


@pytest.mark.parametrize(("settings", "key"), [
    ({"max_concurrency": 0}, "max_concurrency"),
    ({"max_queue": -1}, "max_queue"),
    ({"request_timeout": "soon"}, "request_timeout"),
    ({"port": 70000}, "port"),
    ({"shadow_sample_rate": 2}, "shadow_sample_rate"),
    ({"legacy": "nocolon"}, "legacy"),
    ({"max_body": 5}, "max_body"),
])
def test_bad_settings_name_the_key(settings: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=f"plugin_settings.serve.{key}"):
        ServeSettings.load(settings)
