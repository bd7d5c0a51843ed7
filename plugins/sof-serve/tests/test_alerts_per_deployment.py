"""One process, one service after another, each with its own config file (a user's test
suite, or a host that restarts its service): each is judged on its own queries.

The alert monitor is process-wide. It kept the window, the active alerts, the rollback record
and the masked-rollback state of the config it judged before, and read that config until the
new service's first query: a healthy service was rolled back for the failures of the one
before it, and a fresh one showed the previous config's rollout and thresholds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sof_serve.service import SOFService

from sof_core import CoordinatorEngine, SOFConfigManager

Skills = tuple[Any, Any, Any]  # the conftest's serve_skills: answer, broken, legacy


def service_at(skills: Skills, path: Path, **config: Any
               ) -> tuple[SOFService, CoordinatorEngine]:
    answer, broken, legacy_answer = skills
    manager = SOFConfigManager(path, environ={})
    manager.update_config(**{"use_sof_framework": True, "sof_rollout_percentage": 100,
                             "planner": "static", **config})
    engine = CoordinatorEngine()
    engine.register_skills([answer, broken], "deployment-tests")
    return SOFService(engine=engine, legacy=legacy_answer, manager=manager), engine


def test_a_healthy_service_is_not_rolled_back_for_the_failures_of_the_one_before(
    tmp_path: Path, serve_skills: Skills,
) -> None:
    failing, first = service_at(serve_skills, tmp_path / "a.json", default_plan=["BrokenSkill"],
                                alert_min_samples=3)
    for i in range(6):
        failing.query(f"q{i}", user_id="u")
    assert "sof:error_rate" in failing.alert_state()["active"]
    first.close()

    healthy_path = tmp_path / "b.json"
    healthy, second = service_at(serve_skills, healthy_path, default_plan=["AnswerSkill"],
                                 auto_rollback=True, alert_min_samples=3)
    try:
        fresh = healthy.alert_state()
        assert fresh["active"] == [] and fresh["last_rollback"] is None
        answers = [healthy.query(f"q{i}", user_id="u")["route"]["path"] for i in range(5)]
        assert answers == ["sof"] * 5
        assert json.loads(healthy_path.read_text())["sof_rollout_percentage"] == 100
        assert healthy.alert_state()["active"] == []
    finally:
        second.close()


def test_a_fresh_service_reads_its_own_config_before_its_first_query(
    tmp_path: Path, serve_skills: Skills,
) -> None:
    earlier, first = service_at(serve_skills, tmp_path / "a.json", default_plan=["AnswerSkill"])
    earlier.query("q", user_id="u")
    first.close()

    later, second = service_at(serve_skills, tmp_path / "b.json", default_plan=["AnswerSkill"],
                               sof_rollout_percentage=40, alert_error_rate=0.2)
    try:
        state = later.alert_state()
        assert state["rollout_percentage"] == 40
        assert state["thresholds"]["error_rate"] == 0.2
    finally:
        second.close()


@pytest.mark.parametrize("run", [1, 2])
def test_the_masked_rollback_is_judged_afresh_for_each_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: int, serve_skills: Skills,
) -> None:
    """docs/operations.md: with SOF_ROLLOUT_PERCENTAGE keeping 100 in effect, the file is
    still written to the lower rollout and the record says what overrides it: for the
    second config in the process too (it was skipped as 'still overridden')."""
    from sof_core.config import reset_sof_config_managers

    path = tmp_path / f"run{run}.json"
    monkeypatch.setenv("SOF_ROLLOUT_PERCENTAGE", "100")
    reset_sof_config_managers()
    manager = SOFConfigManager(path)
    manager.update_config(use_sof_framework=True, planner="static",
                          default_plan=["BrokenSkill"], auto_rollback=True,
                          alert_min_samples=3)
    answer, broken, legacy_answer = serve_skills
    engine = CoordinatorEngine()
    engine.register_skills([answer, broken], "deployment-tests")
    service = SOFService(engine=engine, legacy=legacy_answer, manager=manager)
    try:
        for i in range(6):
            service.query(f"q{i}", user_id="u")
        assert json.loads(path.read_text())["sof_rollout_percentage"] == 0
        record = service.alert_state()["last_rollback"]
        assert record is not None and record.get("overridden_by")
    finally:
        engine.close()
        reset_sof_config_managers()

