"""The page's alert rows judge the alert window, not the server's lifetime.

docs/operations.md, "The monitoring page": each alert threshold is shown "with its value now
and its state; an alert shows 'collecting' until its window holds enough queries to judge".
Once every query has left the window the row used to show the all-time error rate (100 %)
as "ok": the window was empty, so the lifetime figures stood in for it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sof_serve.app import create_app
from sof_serve.health import alert_rows
from sof_serve.observe.alerts import AlertMonitor
from sof_serve.service import SOFService
from starlette.testclient import TestClient

from sof_core import ABMetrics, SOFConfigManager

S = sys.modules["sof_serve_tests_observe_support"]  # loaded by conftest.py
fresh_singletons = S.fresh_singletons

WINDOW = 1.0
MIN_SAMPLES = 3


@pytest.fixture
def failing_app(tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    """The app on an engine whose only skill fails, judged by a monitor on a fake clock
    (a 1 s window, 3 queries to judge); yields the client and the clock."""
    clock = S.FakeClock()
    S.fresh_observers(AlertMonitor(clock=clock, wall=lambda: 1_790_000_000.0,
                                   memory=lambda: 1.0))
    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100,
                          alert_window_seconds=WINDOW, alert_min_samples=MIN_SAMPLES,
                          planner="static", default_plan=["FlakySkill"])
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, 0
    engine = S.engine_with_monitor(["FlakySkill"])
    service = SOFService(engine=engine, legacy=S.Legacy(), manager=manager)
    try:
        with TestClient(create_app(service)) as client:
            yield client, clock
    finally:
        service.close()
        engine.close()


def _error_row(client: TestClient) -> dict[str, Any]:
    rows = {row["kind"]: row for row in client.get("/v1/stats").json()["alerts"]}
    return dict(rows["error_rate"])


def test_an_emptied_window_is_collecting_not_ok(failing_app: tuple[TestClient, Any]) -> None:
    client, clock = failing_app
    for _ in range(4):
        assert client.post("/v1/query", json={"query": "hello"}).status_code == 200
    full = _error_row(client)
    assert (full["state"], full["value"]) == ("alert", 1.0), full
    clock.advance(2 * WINDOW)  # every query has left the window
    empty = _error_row(client)
    assert empty["state"] == "warming", empty  # drawn "collecting" by the page
    assert empty["value"] is None, empty  # nothing in the window: no value now
    assert "0 so far" in empty["note"], empty


def test_a_window_short_of_min_samples_shows_its_own_value(
        failing_app: tuple[TestClient, Any]) -> None:
    client, clock = failing_app
    for _ in range(4):
        assert client.post("/v1/query", json={"query": "hello"}).status_code == 200
    clock.advance(2 * WINDOW)
    assert client.post("/v1/query", json={"query": "again"}).status_code == 200
    row = _error_row(client)
    assert (row["state"], row["value"]) == ("warming", 1.0), row  # 1 query in the window
    assert "1 so far" in row["note"], row


def test_a_breaching_value_is_never_ok() -> None:
    """A source whose judgement lags (no active alert yet) beside a value over the
    threshold on a window holding enough samples: the row says alert."""
    metrics = ABMetrics()
    state = {"thresholds": {"error_rate": 0.05, "min_samples": 3},
             "alerts": [{"kind": "sof:error_rate", "value": 0.5, "threshold": 0.05,
                         "samples": 10, "active": False}]}
    rows = {row["kind"]: row for row in alert_rows(state, metrics.snapshot())}
    assert rows["error_rate"]["state"] == "alert"


CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium is not installed at {CHROMIUM}")
def test_the_page_draws_an_emptied_window_as_collecting(served: Any,
                                                         manager: SOFConfigManager) -> None:
    """Headless Chromium: the row the API gives for an emptied window reads "collecting"
    with no value, never "OK" with the lifetime rate."""
    from playwright.sync_api import sync_playwright

    clock = S.FakeClock()
    S.fresh_observers(AlertMonitor(clock=clock, wall=lambda: 1_790_000_000.0,
                                   memory=lambda: 1.0))
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100,
                          alert_window_seconds=WINDOW, alert_min_samples=MIN_SAMPLES)
    server = served()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for _ in range(4):
            answer = http.post("/v1/query", json={"query": "q", "plan": ["BrokenSkill"]})
            assert answer.json()["route"]["fallback"], answer.text
        clock.advance(2 * WINDOW)
        api = {row["kind"]: row for row in http.get("/v1/stats").json()["alerts"]}
    assert api["error_rate"]["state"] == "warming" and api["error_rate"]["value"] is None
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = chromium.new_page()
            page.goto(server.url + "/")
            page.wait_for_selector('#alerts tr[data-alert="error_rate"]')
            row = page.locator('#alerts tr[data-alert="error_rate"]')
            state = row.locator("td[data-state]")
            assert state.get_attribute("data-state") == "warming"
            assert state.inner_text() == "collecting"
            assert row.locator("td").nth(1).inner_text() == "\u2013"  # the value: none now (en dash)
            assert "0 so far" in row.inner_text()
        finally:
            chromium.close()
