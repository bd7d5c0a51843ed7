"""SAM's PlanValidationEngine over sof_core's validator and graph."""

from __future__ import annotations

from typing import Any

from sof_sam.config import SOFConfig
from sof_sam.skills.base import BaseSkillModule
from sof_sam.uif import SAM_UIF
from sof_sam.validator import (
    PlanValidationEngine,
    PlanValidationReport,
    ValidationIssue,
    ValidationResult,
)

from sof_core.testing import make_engine


def skill(name: str, reads: list[str], writes: list[str], *, optional: list[str] = (),  # type: ignore[assignment]
          estimate: float | None = None, external: bool = False) -> BaseSkillModule:
    def execute(self: Any, uif: SAM_UIF) -> SAM_UIF:
        return uif

    cls = type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"{name}, a test skill",
        "required_inputs": reads, "optional_inputs": list(optional), "output_keys": writes,
        "estimated_execution_time": estimate, "requires_external_access": external,
        "execute": execute,
    })
    return cls()  # type: ignore[no-any-return]


A = skill("TestSkillA", ["input_query"], ["skill_a_output"], estimate=1.0)
B = skill("TestSkillB", ["skill_a_output"], ["skill_b_output"], estimate=0.5)
C = skill("TestSkillC", ["skill_b_output"], ["final_response"], optional=["notes"])
NOTES = skill("NotesSkill", ["input_query"], ["notes"], estimate=2.0)


def validator(*skills: BaseSkillModule, **flags: Any) -> PlanValidationEngine:
    flags.setdefault("max_retry_attempts", 0)
    engine = PlanValidationEngine(engine=make_engine(), config=SOFConfig(**flags))
    engine.register_skills(list(skills))
    return engine


def uif(**data: Any) -> SAM_UIF:
    return SAM_UIF(input_query="What is the capital of France?", intermediate_data=data)


def test_a_valid_plan_gets_sams_report_from_the_real_graph() -> None:
    report = validator(A, B, C, NOTES).validate_plan(
        ["TestSkillA", "TestSkillB", "NotesSkill", "TestSkillC"], uif()
    )
    assert isinstance(report, PlanValidationReport)
    assert report.is_valid and report.errors_count == 0 and report.warnings_count == 0
    assert report.optimized_plan == ["TestSkillA", "TestSkillB", "NotesSkill", "TestSkillC"]
    assert report.dependency_graph == {
        "TestSkillA": [],
        "TestSkillB": ["TestSkillA"],
        "NotesSkill": [],
        "TestSkillC": ["TestSkillB", "NotesSkill"],  # optional inputs are edges too
    }
    # SAM's estimate: the declared times, 1.0 s for a skill that declares none
    assert report.execution_estimate == 1.0 + 0.5 + 2.0 + 1.0


def test_an_unknown_skill_is_an_error_naming_it() -> None:
    report = validator(A, B, C).validate_plan(["TestSkillA", "TestSkilB", "TestSkillC"], uif())
    assert not report.is_valid and report.errors_count >= 1
    missing = [i for i in report.issues if i.issue_type == "missing_skill"]
    assert len(missing) == 1 and isinstance(missing[0], ValidationIssue)
    assert missing[0].skill_name == "TestSkilB"
    assert missing[0].severity == ValidationResult.INVALID
    assert "did you mean 'TestSkillB'?" in missing[0].description


def test_a_required_input_nobody_produces_is_sams_missing_dependencies() -> None:
    report = validator(A, B, C).validate_plan(["TestSkillC"], uif())
    issue = next(i for i in report.issues if i.issue_type == "missing_dependencies")
    assert (issue.skill_name, issue.description) == (
        "TestSkillC", "Missing required inputs: ['skill_b_output']"
    )


def test_inputs_already_in_the_uif_satisfy_a_skill() -> None:
    report = validator(A, B, C).validate_plan(["TestSkillC"], uif(skill_b_output="x"))
    assert report.is_valid


SESSION = skill("SessionSkill", ["session_id"], ["final_response"])
DOCS = skill("DocsSkill", ["source_documents"], ["final_response"])


def test_a_required_uif_field_counts_only_when_it_holds_a_value_as_in_sam() -> None:
    # SAM's _validate_dependencies adds session_id, source_documents, ... to what is
    # available only when set; the plan was reported valid and the skill ran on None
    engine = validator(SESSION, DOCS)
    for name, field in (("SessionSkill", "session_id"), ("DocsSkill", "source_documents")):
        report = engine.validate_plan([name], uif())
        assert not report.is_valid
        issue = next(i for i in report.issues if i.issue_type == "missing_dependencies")
        assert (issue.skill_name, issue.description) == (
            name, f"Missing required inputs: [{field!r}]")
    filled = SAM_UIF(input_query="q", session_id="s-1", source_documents=["a.pdf"])
    assert engine.validate_plan(["SessionSkill"], filled).is_valid
    assert engine.validate_plan(["DocsSkill"], filled).is_valid
    # a skill listed earlier that writes the field provides it, as in SAM
    opener = skill("OpenSession", ["input_query"], ["session_id"])
    assert validator(opener, SESSION).validate_plan(["OpenSession", "SessionSkill"],
                                                    uif()).is_valid


def test_wrong_order_is_invalid_while_plans_run_as_written() -> None:
    report = validator(A, B).validate_plan(["TestSkillB", "TestSkillA"], uif())
    assert not report.is_valid and report.errors_count == 1
    issue = report.issues[0]
    assert (issue.skill_name, issue.issue_type) == ("TestSkillB", "missing_dependencies")
    assert "'TestSkillA', which produces it, comes later in the plan" in issue.description


def test_with_parallel_execution_wrong_order_is_a_warning_and_sof_reorders() -> None:
    report = validator(A, B, enable_parallel_execution=True).validate_plan(
        ["TestSkillB", "TestSkillA"], uif()
    )
    assert report.is_valid and report.warnings_count == 1
    assert report.issues[0].issue_type == "reordered"
    assert report.optimized_plan == ["TestSkillA", "TestSkillB"]


def test_sofs_stricter_checks_apply_cycles_and_duplicate_producers() -> None:
    ping = skill("PingSkill", ["pong"], ["ping"])
    pong = skill("PongSkill", ["ping"], ["pong"])
    cycle = validator(ping, pong).validate_plan(["PingSkill", "PongSkill"], uif())
    kinds = {i.issue_type for i in cycle.issues}
    assert "circular_dependency" in kinds and not cycle.is_valid
    other = skill("OtherAnswerSkill", ["input_query"], ["skill_a_output"])
    twice = validator(A, other).validate_plan(["TestSkillA", "OtherAnswerSkill"], uif())
    assert [i.issue_type for i in twice.issues] == ["duplicate_producer"]


def test_length_and_repeats_are_only_warnings_as_in_sam() -> None:
    checker = validator(A, B, max_plan_length=2)
    report = checker.validate_plan(["TestSkillA", "TestSkillA", "TestSkillB"], uif())
    assert report.is_valid
    kinds = sorted(i.issue_type for i in report.issues)
    assert kinds == ["duplicate_skill", "plan_too_long"]
    assert report.warnings_count == 2
    assert report.optimized_plan == ["TestSkillA", "TestSkillB"]


def test_untrusted_output_must_be_vetted_unless_sam_says_otherwise() -> None:
    web = skill("WebSkill", ["input_query"], ["final_response"], external=True)
    strict = validator(web).validate_plan(["WebSkill"], uif())
    assert [i.issue_type for i in strict.issues] == ["untrusted_output"]
    relaxed = PlanValidationEngine(
        engine=None, config=SOFConfig(require_vetting_for_external=False)
    )
    relaxed.register_skill(web)
    assert relaxed.validate_plan(["WebSkill"], uif()).is_valid


def test_a_string_is_not_a_plan() -> None:
    report = validator(A).validate_plan("TestSkillA", uif())  # type: ignore[arg-type]
    assert not report.is_valid
    assert report.issues[0].issue_type == "plan_type"
    assert "['TestSkillA']" in report.issues[0].description


def test_reports_are_cached_until_the_skills_change() -> None:
    checker = validator(A, B)
    first = checker.validate_plan(["TestSkillA", "TestSkillB"], uif())
    assert checker.validate_plan(["TestSkillA", "TestSkillB"], uif()) is first
    assert checker.validate_plan(["TestSkillA", "TestSkillB"], uif(x=1)) is not first
    checker.register_skill(skill("TestSkillB", ["skill_a_output", "extra"], ["skill_b_output"]))
    again = checker.validate_plan(["TestSkillA", "TestSkillB"], uif())
    assert again is not first and not again.is_valid  # the new TestSkillB needs 'extra'
    checker.clear_cache()
    assert checker.validate_plan(["TestSkillA", "TestSkillB"], uif()) is not again


def test_skill_info_is_sams_eight_keys() -> None:
    checker = validator(A)
    info = checker.get_skill_info("TestSkillA")
    assert info == {
        "skill_name": "TestSkillA",
        "required_inputs": ["input_query"],
        "optional_inputs": [],
        "output_keys": ["skill_a_output"],
        "requires_external_access": False,
        "requires_vetting": False,
        "can_run_parallel": True,
        "estimated_execution_time": 1.0,
    }
    assert checker.get_skill_info("Nope") is None
    assert checker.get_registered_skills() == ["TestSkillA"]


def test_by_default_the_installed_plugins_count_as_registered() -> None:
    checker = PlanValidationEngine()
    checker.register_skill(A)
    names = checker.get_registered_skills()
    assert "TestSkillA" in names
    assert "TestSkillA" not in PlanValidationEngine().get_registered_skills()
