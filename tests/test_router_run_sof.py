"""``QueryRouter.route(run_sof=...)``: a host's own SOF run, judged like the engine's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule, ExecutionReport, PlanValidationError
from sof_core.config.manager import SOFConfigManager
from sof_core.graph.validate import ValidationProblem
from sof_core.routing.router import QueryRouter
from sof_core.testing import make_engine


class AnswerSkill(BaseSkillModule):
    skill_name = "AnswerSkill"
    skill_description = "Answers by echoing the query."
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = f"engine:{uif.input_query}"
        return uif


@pytest.fixture
def manager(tmp_path: Path) -> SOFConfigManager:
    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=100)
    return manager


def legacy(query: str, **context: Any) -> str:
    return f"legacy:{query}"


def router_for(manager: SOFConfigManager) -> QueryRouter:
    return QueryRouter(make_engine([AnswerSkill], default_plan=["AnswerSkill"]), legacy, manager)


def test_the_hosts_run_replaces_planning_and_gets_the_routers_uif(
    manager: SOFConfigManager,
) -> None:
    seen: list[UIF] = []

    def run_sof(uif: UIF) -> ExecutionReport:
        seen.append(uif)
        uif.final_response = f"host:{uif.input_query}"
        return ExecutionReport(uif=uif, status="success", plan=[])

    router = router_for(manager)
    result = router.route("hi", user_id="u1", run_sof=run_sof, locale="de")
    assert (result.path, result.response) == ("sof", "host:hi")
    assert seen[0].user_id == "u1" and seen[0].user_context == {"locale": "de"}
    assert router.metrics.snapshot()["paths"]["sof"]["count"] == 1


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [("failure", "failure"), ("invalid", "invalid_plan"), ("raise", "exception")],
)
def test_a_failing_host_run_falls_back_to_legacy_with_its_reason(
    manager: SOFConfigManager, outcome: str, reason: str
) -> None:
    def run_sof(uif: UIF) -> ExecutionReport:
        if outcome == "invalid":
            raise PlanValidationError([ValidationProblem("unknown_skill", "unknown skill 'X'")])
        if outcome == "raise":
            raise RuntimeError("boom")
        return ExecutionReport(uif=uif, status="failure", plan=[], errors=["S: broke"])

    result = router_for(manager).route("hi", run_sof=run_sof)
    assert (result.path, result.response, result.fallback) == ("legacy", "legacy:hi", True)
    assert result.fallback_reason == reason


def test_outside_the_rollout_the_hosts_run_is_not_called(manager: SOFConfigManager) -> None:
    manager.update_config(sof_rollout_percentage=0)
    calls: list[UIF] = []
    result = router_for(manager).route("hi", run_sof=lambda uif: calls.append(uif))  # type: ignore[arg-type,func-returns-value]
    assert (result.path, result.response, calls) == ("legacy", "legacy:hi", [])


def test_without_a_host_run_the_planner_and_engine_answer(manager: SOFConfigManager) -> None:
    assert router_for(manager).route("hi").response == "engine:hi"


@pytest.mark.parametrize("returned", [None, "not a report", 42])
def test_a_run_sof_returning_something_else_falls_back_and_never_raises(
    manager: SOFConfigManager, returned: Any,
) -> None:
    # AttributeError ('NoneType' object has no attribute 'status') escaped route()
    result = router_for(manager).route("hi", run_sof=lambda uif: returned)
    assert (result.path, result.response) == ("legacy", "legacy:hi")
    assert result.fallback and result.fallback_reason == "exception"
    assert result.sof_error is not None
    assert f"run_sof returned {type(returned).__name__}" in result.sof_error
    assert "not an ExecutionReport" in result.sof_error
