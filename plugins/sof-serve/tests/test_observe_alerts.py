"""Alerts over a sliding window and automatic rollback, with a real router, engine, config
file and the installed `monitor` plugin; time is a fake clock moved per query."""

from __future__ import annotations

import concurrent.futures
import json
import sys
from pathlib import Path
from typing import Any

from sof_serve.observe.alerts import AlertMonitor, alert_state

from sof_core import SOFConfigManager

S = sys.modules["sof_serve_tests_observe_support"]  # loaded by conftest.py
fresh_singletons = S.fresh_singletons


def manager_at(tmp_path: Path, **changes: Any) -> SOFConfigManager:
    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    manager.update_config(use_sof_framework=True, **changes)
    return manager


def monitor_with(clock: Any, memory: float = 1.0) -> AlertMonitor:
    return AlertMonitor(clock=clock, wall=lambda: 1_790_000_000.0, memory=lambda: memory)


def test_a_skill_failing_under_load_rolls_the_rollout_back_within_the_window(
        tmp_path: Path) -> None:
    clock = S.FakeClock()
    _, monitor = S.fresh_observers(monitor_with(clock))
    manager = manager_at(tmp_path, sof_rollout_percentage=100, auto_rollback=True,
                         alert_window_seconds=30, alert_min_samples=20)
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, 150
    sink = S.AlertSink()
    engine = S.engine_with_monitor(["FlakySkill"], ("sink", sink))
    router, legacy = S.make_router(manager, engine)
    failed_at: list[float] = []
    rolled_at: list[float] = []

    def ask(i: int) -> Any:
        clock.advance(0.05)  # 20 queries a second
        result = router.route(f"q{i}", user_id=f"user-{i}")
        if result.fallback and not failed_at:
            failed_at.append(clock())
        if not rolled_at and result.path == "legacy" and not result.fallback:
            rolled_at.append(clock())  # the first query the lowered rollout sent to legacy
        return result

    queries = 600
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(ask, range(queries)))

    # no query unanswered: SOF's failures and everything after the rollback went to legacy
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    assert manager.state().config is not None
    assert manager.state().config.sof_rollout_percentage == 0
    on_disk = json.loads((tmp_path / "config.json").read_text())
    assert on_disk["sof_rollout_percentage"] == 0  # the same file `sof config` writes
    state = alert_state()
    record = state["last_rollback"]
    assert record is not None and record["what"] == "sof_rollout_percentage 100 -> 0"
    assert record["who"].startswith("sof auto_rollback")
    assert "error rate" in record["why"] and record["when"].startswith("2026-")
    assert state["auto_rollback"] is True and state["rollout_percentage"] == 0
    # within the window (30 s): the rollback came seconds after the first failure, and
    # SOF's failures stopped (queries in flight on the 8 threads may still fail)
    assert failed_at and rolled_at and rolled_at[0] - failed_at[0] < 5
    sof_errors = sum(1 for r in results if r.fallback)
    assert 0 < sof_errors < 100
    assert S.FlakySkill.calls == 150 + sof_errors
    kinds = [kind for kind, _, _ in sink.alerts]
    assert "threshold_error_rate" in kinds and kinds.count("auto_rollback") == 1
    assert len(monitor.rollbacks) == 1
    # nothing lost: every query is counted once as answered by SOF or by legacy alone
    parsed = S.samples()
    sof_ok = S.value(parsed, "sof_queries_total", path="sof", status="ok")
    sof_err = S.value(parsed, "sof_queries_total", path="sof", status="error")
    legacy_ok = S.value(parsed, "sof_queries_total", path="legacy", status="ok")
    fallbacks = S.total(parsed, "sof_fallbacks_total")
    assert sof_err == fallbacks == sof_errors
    assert sof_ok + legacy_ok == queries == sof_ok + (legacy.calls)
    assert sof_ok == 150
    assert S.value(parsed, "sof_auto_rollbacks_total") == 1
    assert S.value(parsed, "sof_rollout_percentage") == 0
    assert S.value(parsed, "sof_auto_rollback_enabled") == 1
    assert S.value(parsed, "sof_alert_threshold", alert="sof:error_rate") == 0.05
    engine.close()


def test_it_stays_rolled_back_until_a_person_raises_it(tmp_path: Path) -> None:
    clock = S.FakeClock()
    _, monitor = S.fresh_observers(monitor_with(clock))
    manager = manager_at(tmp_path, sof_rollout_percentage=100, auto_rollback=True,
                         alert_min_samples=5)
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, 0
    router, _ = S.make_router(manager, S.engine_with_monitor(["FlakySkill"]))
    for i in range(10):
        clock.advance(1)
        assert router.route(f"q{i}", user_id=f"u{i}").ok
    assert manager.state().config.sof_rollout_percentage == 0
    for i in range(100):  # much later: the window moved on, nothing raises it back
        clock.advance(10)
        assert router.route(f"later{i}", user_id=f"u{i}").path == "legacy"
    assert manager.state().config.sof_rollout_percentage == 0
    S.FlakySkill.fail_after = None  # fixed; a person raises the rollout
    manager.set_rollout_percentage(100)
    for i in range(20):
        clock.advance(1)
        assert router.route(f"again{i}", user_id=f"u{i}").path == "sof"
    assert manager.state().config.sof_rollout_percentage == 100
    assert len(monitor.rollbacks) == 1


def test_a_configured_step_lowers_the_rollout_by_that_much(tmp_path: Path) -> None:
    clock = S.FakeClock()
    _, monitor = S.fresh_observers(monitor_with(clock))
    manager = manager_at(tmp_path, sof_rollout_percentage=100, auto_rollback=True,
                         auto_rollback_step=40, alert_min_samples=5)
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, 0
    router, _ = S.make_router(manager, S.engine_with_monitor(["FlakySkill"]))
    for i in range(5):
        clock.advance(1)
        router.route(f"q{i}", user_id=f"u{i}")
    assert manager.state().config.sof_rollout_percentage == 60
    assert monitor.rollbacks[-1]["what"] == "sof_rollout_percentage 100 -> 60"


def test_without_auto_rollback_an_alert_changes_nothing(tmp_path: Path) -> None:
    clock = S.FakeClock()
    _, _monitor = S.fresh_observers(monitor_with(clock))
    manager = manager_at(tmp_path, sof_rollout_percentage=100, alert_min_samples=5)
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, 0
    router, _ = S.make_router(manager, S.engine_with_monitor(["FlakySkill"]))
    for i in range(10):
        clock.advance(1)
        assert router.route(f"q{i}", user_id=f"u{i}").ok
    assert manager.state().config.sof_rollout_percentage == 100
    state = alert_state()
    assert "sof:error_rate" in state["active"] and state["last_rollback"] is None
    assert state["auto_rollback"] is False
    assert S.value(S.samples(), "sof_alert_active", alert="sof:error_rate") == 1


def test_auto_rollback_switched_on_during_a_breach_rolls_back_at_the_next_query(
        tmp_path: Path) -> None:
    """The alert was raised while auto_rollback was off; a person turns it on while SOF is
    still failing: the next query judged in breach rolls back (once), not only a breach
    crossed afresh."""
    clock = S.FakeClock()
    _, _monitor = S.fresh_observers(monitor_with(clock))
    manager = manager_at(tmp_path, sof_rollout_percentage=100, alert_min_samples=5)
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, 0
    router, _ = S.make_router(manager, S.engine_with_monitor(["FlakySkill"]))
    for i in range(8):
        clock.advance(1)
        router.route(f"q{i}", user_id=f"u{i}")
    assert "sof:error_rate" in alert_state()["active"]

    manager.update_config(auto_rollback=True)
    clock.advance(1)
    router.route("q-next", user_id="u-next")

    assert manager.state().config.sof_rollout_percentage == 0
    state = alert_state()
    assert state["last_rollback"] is not None
    assert state["last_rollback"]["alert"] == "sof:error_rate"
    assert len(_monitor.rollbacks) == 1


def test_the_window_slides_and_the_alert_clears(tmp_path: Path) -> None:
    clock = S.FakeClock()
    _, _monitor = S.fresh_observers(monitor_with(clock))
    manager = manager_at(tmp_path, sof_rollout_percentage=100, alert_min_samples=5,
                         alert_window_seconds=10)
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, 0
    sink = S.AlertSink()
    router, _ = S.make_router(manager, S.engine_with_monitor(["FlakySkill"], ("sink", sink)))
    for i in range(6):
        clock.advance(1)
        router.route(f"q{i}", user_id=f"u{i}")
    assert "sof:error_rate" in alert_state()["active"]
    S.FlakySkill.fail_after = None
    clock.advance(11)  # the failures leave the window
    for i in range(5):
        router.route(f"ok{i}", user_id=f"u{i}")
    state = alert_state()
    assert "sof:error_rate" not in state["active"]
    assert state["values"]["sof:error_rate"] == 0.0
    assert [k for k, _, _ in sink.alerts].count("threshold_error_rate") == 1


def test_slow_sof_answers_breach_the_response_time_threshold(tmp_path: Path) -> None:
    clock = S.FakeClock()
    _, monitor = S.fresh_observers(monitor_with(clock))
    manager = manager_at(tmp_path, sof_rollout_percentage=100, auto_rollback=True,
                         alert_min_samples=5, alert_response_time=0.01)
    router, _ = S.make_router(manager, S.engine_with_monitor(["SlowSkill"]))
    # SlowSkill answers right after 0.02 s: no error, but the window's p95 is above 0.01 s
    results = []
    for i in range(6):
        clock.advance(1)
        results.append(router.route(f"q{i}", user_id=f"u{i}"))
    assert all(r.ok and not r.fallback for r in results)
    assert manager.state().config.sof_rollout_percentage == 0
    assert [r["alert"] for r in monitor.rollbacks] == ["sof:response_time"]
    assert router.route("after", user_id="u").path == "legacy"
    state = alert_state()
    assert state["thresholds"]["response_time"] == 0.01


def test_memory_and_skill_failure_thresholds_and_the_kpis(tmp_path: Path) -> None:
    clock = S.FakeClock()
    _, _monitor = S.fresh_observers(monitor_with(clock, memory=93.0))
    manager = manager_at(tmp_path, sof_rollout_percentage=50, alert_min_samples=5)
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, None
    router, _ = S.make_router(manager, S.engine_with_monitor(["FlakySkill"]))
    for i in range(40):
        clock.advance(0.1)
        assert router.route(f"q{i}", user_id=f"u{i}").ok
    state = alert_state()
    assert "process:memory_percent" in state["active"]
    assert state["values"]["process:memory_percent"] == 93.0
    kpis = {k["name"]: k for k in state["kpis"]}
    assert kpis["error_rate"]["state"] == "ok" and kpis["error_rate"]["value"] == 0.0
    assert kpis["availability"]["value"] == 1.0 and kpis["availability"]["state"] == "ok"
    assert kpis["response_time"]["state"] in {"ok", "breached"}
    assert kpis["response_time"]["legacy"] is not None
    # One definition with the page's KPI table (sof_serve.health.kpi_rows): p95 against p95.
    assert kpis["response_time"]["target"] == "SOF p95 <= legacy p95"
    assert {a["name"] for a in state["alerts"]} >= {
        "sof:error_rate", "sof:response_time", "sof:skill_failure_rate",
        "legacy:error_rate", "process:memory_percent"}
