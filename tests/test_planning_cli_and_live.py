"""``sof plan``, and planner settings that apply to the next query without a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.config.manager import SOFConfigManager
from sof_core.routing.router import QueryRouter
from sof_core.testing import make_engine

from .conftest import run_sof


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"SOF_CONFIG": str(tmp_path / "none.json"), "PATH": "/usr/bin:/bin", **extra}


def test_sof_plan_prints_plan_stages_planner_cache_and_why(tmp_path: Path) -> None:
    done = run_sof("plan", "Fetch", "https://example.org", "and", "compute", "2+2",
                   env=_env(tmp_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert ("plan: AgentZeroWebBrowserTool -> CalculatorTool -> ContentVettingSkill -> "
            "ResponseGenerationSkill") in out
    assert "planner: rules (cache miss" in out
    assert "stage 1: AgentZeroWebBrowserTool | CalculatorTool" in out
    assert "ContentVettingSkill: taint rule" in out
    assert "CalculatorTool: its trigger matched '2+2'" in out


def test_sof_plan_json_and_another_planner(tmp_path: Path) -> None:
    done = run_sof("plan", "What is 15% of 240?", "--planner", "static", "--json",
                   env=_env(tmp_path))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["schema"] == "sof.plan/1"
    assert data["planner"] == "static" and data["cache_hit"] is False
    assert data["plan"] == ["MemoryRetrievalSkill", "ResponseGenerationSkill"]
    assert data["stages"] == [["MemoryRetrievalSkill"], ["ResponseGenerationSkill"]]
    assert data["reasons"]["MemoryRetrievalSkill"] == "listed in default_plan"
    assert data["valid"] is True and data["query"] == "What is 15% of 240?"


def test_sof_plan_with_an_unknown_planner_is_one_line_exit_2(tmp_path: Path) -> None:
    done = run_sof("plan", "hello", "--planner", "oracle", env=_env(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "unknown planner 'oracle'" in done.stderr and "rules" in done.stderr


# --- live settings ----------------------------------------------------------------------------


class Echo(BaseSkillModule):
    skill_name = "Echo"
    skill_description = "answers with the query"
    required_inputs = ["input_query"]
    optional_inputs = ["shout"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = uif.intermediate_data.get("shout") or uif.input_query
        return uif


class Shout(BaseSkillModule):
    skill_name = "Shout"
    skill_description = "upper-cases a query that asks for it"
    required_inputs = ["input_query"]
    output_keys = ["shout"]
    triggers = (r"\bloud\b",)

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["shout"] = uif.input_query.upper()
        return uif


@pytest.fixture
def router(tmp_path: Path) -> QueryRouter:
    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100)
    engine = make_engine([Echo, Shout], default_plan=["Echo"], total_timeout=None)
    return QueryRouter(engine, lambda q, **_: "legacy", manager)


def test_planner_and_default_plan_changes_apply_to_the_next_query(router: QueryRouter) -> None:
    first = router.route("say it loud")
    assert first.response == "SAY IT LOUD"
    assert first.report is not None and first.report.plan == ["Shout", "Echo"]
    assert first.report.planning is not None and first.report.planning["planner"] == "rules"
    router.manager.update_config(planner="static", default_plan=["Echo"])
    second = router.route("say it loud")
    assert second.response == "say it loud" and second.report is not None
    assert second.report.planning is not None and second.report.planning["planner"] == "static"
    router.manager.update_config(default_plan=["Shout", "Echo"])
    assert router.route("say it loud").response == "SAY IT LOUD"


def test_planner_options_apply_to_the_next_query(router: QueryRouter) -> None:
    assert router.route("loud please").response == "LOUD PLEASE"
    router.manager.update_config(planner_options={"rules": {"goals": ["shout"]}})
    report = router.route("loud please").report
    assert report is not None and report.plan == ["Shout"]


def test_the_plan_is_recorded_in_the_trace(router: QueryRouter) -> None:
    report = router.route("be loud").report
    assert report is not None
    assert any("planner rules (planned): ['Shout', 'Echo']" in e for e in report.uif.log_trace)


def test_each_query_of_a_batch_gets_its_own_plan() -> None:
    import asyncio

    from sof_core import arun_batch, run_batch

    engine = make_engine([Echo, Shout], default_plan=["Echo"], total_timeout=None)
    batch = run_batch(engine, ["say it loud", "whisper it"])
    assert [item.report.plan for item in batch.items if item.report] == [["Shout", "Echo"],
                                                                         ["Echo"]]
    assert [item.plan for item in batch.items] == [["Shout", "Echo"], ["Echo"]]
    done = asyncio.run(arun_batch(engine, ["say it loud", "whisper it"]))
    assert [item.plan for item in done.items] == [["Shout", "Echo"], ["Echo"]]
    assert done.items[0].report is not None and done.items[0].report.final_response == "SAY IT LOUD"
