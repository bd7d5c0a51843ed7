"""What a black-box probe of the monitor found: ``sof_run_errors_total`` without the
documented ``status`` label, one permanent ``plan`` series per plan a client sends, and an
automatic rollback an environment variable masks, repeated as if it had worked."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sof_serve.app import create_app
from sof_serve.observe.alerts import AlertMonitor
from sof_serve.observe.metrics import MAX_PLAN_LABELS, OTHER_PLAN
from sof_serve.server import BackgroundServer
from sof_serve.service import SOFService
from sof_serve.settings import ServeSettings

from sof_core import UIF, BaseSkillModule, QueryRouter, SOFConfigManager
from sof_core.testing import make_engine

S = sys.modules["sof_serve_tests_observe_support"]  # loaded by conftest.py
fresh_singletons = S.fresh_singletons

Parsed = list[tuple[str, dict[str, str], float]]


def _parse(text: str) -> Parsed:
    return [(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


def _exposition() -> Parsed:
    body, _ = S.render_latest()
    return _parse(body.decode())


# --- 1. sof_run_errors_total is labelled by status, as the metrics table says -------------

def test_run_errors_are_labelled_by_the_runs_status(tmp_path: Path) -> None:
    S.fresh_observers()
    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100)
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, 3
    engine = S.engine_with_monitor(["FlakySkill"])
    try:
        router, _ = S.make_router(manager, engine)
        for i in range(10):
            router.route(f"q{i}", user_id=f"u{i}")
        parsed = _exposition()
        errors = [(labels, v) for n, labels, v in parsed if n == "sof_run_errors_total"]
        runs = {labels["status"]: v for n, labels, v in parsed if n == "sof_runs_total"}
        assert errors and all(set(labels) == {"status"} for labels, _ in errors), errors
        by_status = {labels["status"]: v for labels, v in errors}
        # every status a run ended with has its error series; successes report none
        assert set(by_status) == set(runs), (by_status, runs)
        assert by_status.get("success", 0) == 0
        failed = sum(v for status, v in runs.items() if status != "success")
        assert failed == 7 and sum(by_status.values()) >= failed
    finally:
        engine.close()


# --- 2. the `plan` label takes at most MAX_PLAN_LABELS values --------------------------------

def _noop(i: int) -> type[BaseSkillModule]:
    def execute(self: BaseSkillModule, uif: UIF) -> UIF:
        uif.intermediate_data[f"k{i}"] = i
        return uif
    return type(f"Noop{i}", (BaseSkillModule,), {
        "skill_name": f"Noop{i}", "skill_description": "adds a key",
        "required_inputs": ["input_query"], "output_keys": [f"k{i}"], "execute": execute})


class Reply(BaseSkillModule):
    skill_name = "Reply"
    skill_description = "answers"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = "ok"
        return uif


def test_client_chosen_plans_share_a_bounded_set_of_plan_series(tmp_path: Path) -> None:
    S.fresh_observers()
    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100,
                          planner="static", default_plan=["Reply"])
    engine = make_engine([Reply] + [_noop(i) for i in range(10)], autoload=True,
                         plugins_only=["monitor"], default_plan=["Reply"])
    service = SOFService(engine=engine, legacy=S.Legacy(), manager=manager,
                         settings=ServeSettings())
    server = BackgroundServer(create_app(service)).start()
    names = [f"Noop{i}" for i in range(10)]
    plans = [[*combo, "Reply"] for k in (1, 2, 3)
             for combo in itertools.combinations(names, k)][:MAX_PLAN_LABELS + 40]
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for plan in plans:
                answer = http.post("/v1/query", json={"query": "q", "plan": plan})
                assert answer.status_code == 200 and answer.json()["route"]["path"] == "sof"
            parsed = _parse(http.get("/metrics").text)
    finally:
        server.stop()
        service.close()
        engine.close()
    for series in ("sof_query_plan_duration_seconds_count", "sof_run_duration_seconds_count"):
        counts = {labels["plan"]: v for n, labels, v in parsed if n == series}
        assert len(counts) == MAX_PLAN_LABELS, (series, len(counts))
        assert sum(counts.values()) == len(plans)  # every run still counted, once
        first = [",".join(plan) for plan in plans[:MAX_PLAN_LABELS - 1]]
        assert all(counts[label] == 1 for label in first)  # the first plans keep their own
        assert counts[OTHER_PLAN] == len(plans) - (MAX_PLAN_LABELS - 1)


# --- 3. a rollback an environment variable overrides is said so, once ---------------------------

def test_a_rollback_masked_by_the_environment_is_reported_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = S.FakeClock()
    _, monitor = S.fresh_observers(
        AlertMonitor(clock=clock, wall=lambda: 1_790_000_000.0, memory=lambda: 1.0))
    SOFConfigManager(tmp_path / "config.json", environ={}).update_config(
        use_sof_framework=True, auto_rollback=True, alert_min_samples=20,
        planner="static", default_plan=["FlakySkill"])
    monkeypatch.setenv("SOF_ROLLOUT_PERCENTAGE", "100")
    live = SOFConfigManager(tmp_path / "config.json")  # reads the environment
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, 0
    sink = S.AlertSink()
    engine = S.engine_with_monitor(["FlakySkill"], ("sink", sink))
    try:
        router = QueryRouter(engine, S.Legacy(), live)
        for i in range(100):
            clock.advance(0.1)
            assert router.route(f"q{i}", user_id=f"u{i}").ok
        assert json.loads((tmp_path / "config.json").read_text())["sof_rollout_percentage"] == 0
        assert live.config.sof_rollout_percentage == 100  # the environment still wins
        rolled = [(m, d) for k, m, d in sink.alerts if k == "auto_rollback"]
        assert len(rolled) == 1 and len(monitor.rollbacks) == 1, [m for m, _ in rolled]
        message, details = rolled[0]
        assert "SOF_ROLLOUT_PERCENTAGE" in message and "unset" in message, message
        assert details["overridden_by"] == "environment SOF_ROLLOUT_PERCENTAGE"
        assert details["in_effect"] == 100
        last = monitor.state()["last_rollback"]
        assert "overridden by environment SOF_ROLLOUT_PERCENTAGE" in last["what"]
        assert S.value(S.samples(), "sof_auto_rollbacks_total") == 1
        # once the variable is gone the file's 0 is in effect: SOF is no longer routed to
        monkeypatch.delenv("SOF_ROLLOUT_PERCENTAGE")
        assert router.route("after", user_id="u-after").path == "legacy"
        assert live.config.sof_rollout_percentage == 0
    finally:
        engine.close()


def test_a_rollback_repeats_once_the_override_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = S.FakeClock()
    _, monitor = S.fresh_observers(
        AlertMonitor(clock=clock, wall=lambda: 1_790_000_000.0, memory=lambda: 1.0))
    SOFConfigManager(tmp_path / "config.json", environ={}).update_config(
        use_sof_framework=True, auto_rollback=True, alert_min_samples=5,
        planner="static", default_plan=["FlakySkill"])
    monkeypatch.setenv("SOF_ROLLOUT_PERCENTAGE", "100")
    live = SOFConfigManager(tmp_path / "config.json")
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, 0
    engine = S.engine_with_monitor(["FlakySkill"])
    try:
        router = QueryRouter(engine, S.Legacy(), live)
        for i in range(30):
            clock.advance(0.1)
            router.route(f"q{i}", user_id=f"u{i}")
        assert len(monitor.rollbacks) == 1
        monkeypatch.setenv("SOF_ROLLOUT_PERCENTAGE", "50")  # a person changed it, still over
        for i in range(200):
            clock.advance(0.1)
            router.route(f"r{i}", user_id=f"r{i}")
        assert len(monitor.rollbacks) == 2
        assert monitor.rollbacks[-1]["what"].startswith("sof_rollout_percentage 50 -> 0")
        assert monitor.rollbacks[-1]["in_effect"] == 50
    finally:
        engine.close()
