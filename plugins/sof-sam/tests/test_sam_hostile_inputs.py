"""Hostile input to sof_sam's SAM surface: typed outcomes, never a bare TypeError."""

from __future__ import annotations

from typing import Any

import pytest
from sof_sam.config import SOFConfig
from sof_sam.coordinator import CoordinatorEngine, ExecutionReport, ExecutionResult
from sof_sam.skills.base import BaseSkillModule
from sof_sam.uif import SAM_UIF
from sof_sam.validator import PlanValidationEngine

from sof_core import UIFError


def sam_config(**flags: Any) -> SOFConfig:
    return SOFConfig(**{"enable_fallback_plans": False, **flags})


UNHASHABLE_PLANS = [[["A"]], [{"a": 1}], [{"a"}], ["A", ["B"]]]


@pytest.mark.parametrize("plan", UNHASHABLE_PLANS, ids=repr)
@pytest.mark.parametrize("validation", [True, False])
def test_a_plan_of_unhashable_items_is_an_invalid_plan_naming_the_item(
    plan: Any, validation: bool
) -> None:
    engine = CoordinatorEngine(config=sam_config(enable_plan_validation=validation))
    uif = SAM_UIF(input_query="q")
    report = engine.execute_plan(plan, uif)
    assert isinstance(report, ExecutionReport)
    assert report.result == ExecutionResult.FAILURE
    assert report.error_details is not None
    assert report.error_details.startswith("Plan validation failed")
    assert report.validation_report is not None and not report.validation_report.is_valid
    bad = plan[-1]
    assert any(type(bad).__name__ in issue.description and repr(bad) in issue.description
               for issue in report.validation_report.issues)


@pytest.mark.parametrize("plan", [*UNHASHABLE_PLANS, [1, 2], None, "A"], ids=repr)
def test_validate_plan_reports_unhashable_items_as_invalid(plan: Any) -> None:
    validator = PlanValidationEngine(config=sam_config())
    for _ in range(2):  # the second time from no cache either
        report = validator.validate_plan(plan, SAM_UIF(input_query="q"))
        assert not report.is_valid and report.errors_count >= 1
        assert all(i.issue_type == "plan_type" for i in report.issues)


@pytest.mark.parametrize("uif", [None, "hello", 5, {"input_query": "q"}], ids=repr)
def test_a_uif_that_is_not_one_is_a_typed_uif_error_naming_the_argument(uif: Any) -> None:
    engine = CoordinatorEngine(config=sam_config())
    with pytest.raises(UIFError) as caught:
        engine.execute_plan(["ResponseGenerationSkill"], uif)
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert message.startswith("uif must be a SAM_UIF") and type(uif).__name__ in message


def sam_skill(name: str, body: Any, base: type[BaseSkillModule] = BaseSkillModule
              ) -> BaseSkillModule:
    skill_class = type(name, (base,), {
        "skill_name": name, "skill_description": "a test skill", "required_inputs": [],
        "output_keys": ["answer"], "execute": body,
    })
    instance: BaseSkillModule = skill_class()
    return instance


def returns_none(self: Any, uif: SAM_UIF) -> None:
    uif.intermediate_data["answer"] = 1


def returns_a_new_uif(self: Any, uif: SAM_UIF) -> SAM_UIF:
    other = SAM_UIF(input_query="another query")
    other.intermediate_data["answer"] = 2
    return other


def test_a_skill_returning_none_fails_with_sams_words() -> None:
    engine = CoordinatorEngine(config=sam_config(max_retry_attempts=0))
    engine.register_skill(sam_skill("NoneSkill", returns_none))
    report = engine.execute_plan(["NoneSkill"], SAM_UIF(input_query="q"))
    assert report.result == ExecutionResult.FAILURE
    assert report.executed_skills == [] and report.failed_skills == ["NoneSkill"]
    details = report.uif.error_details or ""
    assert details.startswith(
        "Unexpected error: 'NoneType' object has no attribute 'mark_skill_complete'")
    assert "NoneSkill.execute() returned None" in details


def test_execute_with_monitoring_of_a_skill_returning_none_is_sams() -> None:
    uif = SAM_UIF(input_query="q")
    result = sam_skill("NoneSkill", returns_none).execute_with_monitoring(uif)
    assert result is uif
    assert uif.error_details == (
        "Unexpected error: 'NoneType' object has no attribute 'mark_skill_complete'")


def test_super_execute_returning_none_inside_a_skill_is_not_checked() -> None:
    parent = type(sam_skill("ParentSkill", returns_none))

    def child_execute(self: Any, uif: SAM_UIF) -> SAM_UIF:
        super(type(self), self).execute(uif)
        return uif

    engine = CoordinatorEngine(config=sam_config(max_retry_attempts=0))
    engine.register_skill(sam_skill("ChildSkill", child_execute, parent))
    report = engine.execute_plan(["ChildSkill"], SAM_UIF(input_query="q"))
    assert report.result == ExecutionResult.SUCCESS, report.uif.error_details
    assert report.uif.intermediate_data["answer"] == 1


def test_a_failing_skill_traceback_still_starts_at_its_own_execute() -> None:
    def raises(self: Any, uif: SAM_UIF) -> SAM_UIF:
        raise ValueError("boom")

    engine = CoordinatorEngine(config=sam_config(max_retry_attempts=0))
    engine.register_skill(sam_skill("RaisingSkill", raises))
    report = engine.execute_plan(["RaisingSkill"], SAM_UIF(input_query="q"))
    assert report.sof_report is not None
    result = report.sof_report.results[0]
    assert result.traceback is not None and result.location is not None
    assert result.traceback.splitlines()[1].endswith("in raises")
    assert result.location.startswith(__file__)


@pytest.mark.parametrize("strict", ["1", "0"])
def test_a_skill_returning_a_new_uif_is_told_to_return_the_one_it_was_given(
    strict: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOF_STRICT_DECLARATIONS", strict)
    engine = CoordinatorEngine(config=sam_config(max_retry_attempts=0))
    engine.register_skill(sam_skill("NewUIFSkill", returns_a_new_uif))
    report = engine.execute_plan(["NewUIFSkill"], SAM_UIF(input_query="q"))
    assert report.result == ExecutionResult.FAILURE
    details = report.uif.error_details or ""
    assert "task_id" not in details and "output_keys" not in details
    assert "returned a different UIF object" in details
    assert "return the one you were given" in details


def test_a_skill_returning_a_copy_of_its_uif_still_works() -> None:
    def returns_a_copy(self: Any, uif: SAM_UIF) -> SAM_UIF:
        copy = uif.model_copy(deep=True)
        copy.intermediate_data["answer"] = 3
        return copy

    engine = CoordinatorEngine(config=sam_config(max_retry_attempts=0))
    engine.register_skill(sam_skill("CopySkill", returns_a_copy))
    report = engine.execute_plan(["CopySkill"], SAM_UIF(input_query="q"))
    assert report.result == ExecutionResult.SUCCESS, report.uif.error_details
    assert report.uif.intermediate_data["answer"] == 3


def test_a_skill_setting_status_failure_itself_is_reported_as_such() -> None:
    def sets_status(self: Any, uif: SAM_UIF) -> SAM_UIF:
        uif.intermediate_data["answer"] = 1
        uif.status = "failure"
        return uif

    engine = CoordinatorEngine(config=sam_config(max_retry_attempts=0))
    engine.register_skill(sam_skill("StatusSkill", sets_status))
    report = engine.execute_plan(["StatusSkill"], SAM_UIF(input_query="q"))
    assert report.result == ExecutionResult.FAILURE
    details = report.uif.error_details or ""
    assert details.startswith("Skill StatusSkill set status failure without calling set_error()")
    assert any(line.endswith(f"Skill StatusSkill failed: {details}")
               for line in report.uif.log_trace)


def test_a_skill_calling_set_error_keeps_its_words() -> None:
    def calls_set_error(self: Any, uif: SAM_UIF) -> SAM_UIF:
        uif.set_error("the store is down")
        return uif

    engine = CoordinatorEngine(config=sam_config(max_retry_attempts=0))
    engine.register_skill(sam_skill("ErrorSkill", calls_set_error))
    report = engine.execute_plan(["ErrorSkill"], SAM_UIF(input_query="q"))
    assert report.uif.error_details == "the store is down"


def test_junk_in_executed_skills_passes_through_as_in_sam() -> None:
    # SAM's report copies uif.executed_skills as it is; so does sof_sam's.
    engine = CoordinatorEngine(config=sam_config(max_retry_attempts=0))
    engine.register_skill(sam_skill("OkSkill", writes_answer))
    uif = SAM_UIF(input_query="q")
    uif.mark_skill_complete(None)  # type: ignore[arg-type]
    report = engine.execute_plan(["OkSkill"], uif)
    assert report.executed_skills == [None, "OkSkill"]


def writes_answer(self: Any, uif: SAM_UIF) -> SAM_UIF:
    uif.intermediate_data["answer"] = 1
    return uif
