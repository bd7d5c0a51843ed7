"""KPI and alert rows of the page: thresholds, values, states, and the warm-up state."""

from __future__ import annotations

from typing import Any

from sof_serve.health import alert_rows, kpi_rows

from sof_core import ABMetrics


def _comparison(sof_errors: int, count: int, legacy_latency: float = 0.001) -> dict[str, Any]:
    metrics = ABMetrics()
    for index in range(count):
        metrics.record("sof", 0.002, error=index < sof_errors, skills_run=1,
                       skills_failed=int(index < sof_errors))
        metrics.record("legacy", legacy_latency)
    return metrics.snapshot()


def test_alert_rows_follow_the_thresholds_and_warm_up() -> None:
    router_state = {"thresholds": {"error_rate": 0.05, "min_samples": 20}, "active": []}
    few = {row["kind"]: row for row in alert_rows(router_state, _comparison(3, 10))}
    assert few["error_rate"]["value"] == 0.3
    assert few["error_rate"]["state"] == "warming"  # 10 of the 20 samples it needs
    assert "10 so far" in few["error_rate"]["note"]
    active = {**router_state, "active": ["sof:error_rate"]}
    many = {row["kind"]: row for row in alert_rows(active, _comparison(3, 30))}
    assert many["error_rate"]["state"] == "alert"
    assert many["response_time"]["state"] == "ok"
    assert many["memory"]["threshold"] == 0.8
    assert 0 < many["memory"]["value"] < 1


def test_observer_values_and_thresholds_win() -> None:
    state = {"thresholds": {"error_rate": {"threshold": 0.2}},
             "values": {"error_rate": 0.25}, "active": [{"kind": "error_rate"}]}
    rows = {row["kind"]: row for row in alert_rows(state, _comparison(0, 5))}
    assert rows["error_rate"]["threshold"] == 0.2 and rows["error_rate"]["value"] == 0.25
    assert rows["error_rate"]["state"] == "alert"


def test_kpi_rows() -> None:
    rows = {r["name"]: r for r in kpi_rows(_comparison(1, 10, legacy_latency=0.005), 10, 10)}
    assert rows["Response time"]["state"] == "ok"  # 2 ms against legacy's 5 ms
    assert rows["Error rate"]["state"] == "alert"  # 10 % > 1 %
    assert rows["Availability"]["state"] == "ok"
    unanswered = {r["name"]: r for r in kpi_rows(_comparison(0, 10), 1000, 998)}
    assert unanswered["Availability"]["state"] == "alert"  # 99.8 % < 99.9 %
    assert unanswered["Response time"]["state"] == "alert"  # 2 ms against 1 ms


def test_alerts_given_as_one_entry_each() -> None:
    state = {"alerts": [{"kind": "sof:response_time", "threshold": 2.0, "value": 3.5,
                         "active": True},
                        {"kind": "skill_failure_rate", "threshold": 0.3, "value": 0.1}]}
    rows = {row["kind"]: row for row in alert_rows(state, _comparison(0, 5))}
    assert rows["response_time"]["threshold"] == 2.0
    assert rows["response_time"]["value"] == 3.5 and rows["response_time"]["state"] == "alert"
    assert rows["skill_failure_rate"]["state"] == "ok"


def test_the_observers_alert_state_shape() -> None:
    """sof_serve.observe.alerts.alert_state(): path-qualified values, memory in percent."""
    state = {"thresholds": {"error_rate": 0.05, "response_time": 10.0, "memory_percent": 80.0,
                            "skill_failure_rate": 0.1, "min_samples": 20},
             "values": {"legacy:error_rate": 0.0, "sof:error_rate": 0.5,
                        "process:memory_percent": 90.0},
             "alerts": [{"name": "legacy:error_rate", "path": "legacy", "kind": "error_rate",
                         "value": 0.0, "threshold": 0.05, "active": False},
                        {"name": "sof:error_rate", "path": "sof", "kind": "error_rate",
                         "value": 0.5, "threshold": 0.05, "active": True}],
             "active": ["sof:error_rate"]}
    rows = {row["kind"]: row for row in alert_rows(state, _comparison(0, 30))}
    assert rows["error_rate"]["value"] == 0.5 and rows["error_rate"]["state"] == "alert"
    assert rows["memory"]["threshold"] == 0.8 and rows["memory"]["value"] == 0.9
    assert rows["memory"]["state"] == "alert"
