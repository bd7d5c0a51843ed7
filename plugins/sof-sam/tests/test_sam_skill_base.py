"""``sof_sam.BaseSkillModule``: SAM's defaults, checks and helpers, and a SAM skill that
registers with ``sof_core.CoordinatorEngine`` and runs under it like any skill."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from sof_sam import (
    SAM_UIF,
    BaseSkillModule,
    SkillDependencyError,
    SkillExecutionError,
    SkillMetadata,
    UIFStatus,
)
from sof_sam.skills.base import SkillDefinitionError

import sof_core
from sof_core import SOFConfig

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?"


class KeywordSkill(BaseSkillModule):
    """Pulls keywords out of the query, SAM style."""

    skill_name = "KeywordSkill"
    skill_description = "Extracts keywords from the query"
    skill_category = "analysis"
    required_inputs = ["input_query"]
    optional_inputs = ["stopwords"]
    output_keys = ["keywords"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        stop = set(uif.intermediate_data.get("stopwords", []))
        words = [w for w in uif.input_query.lower().split() if w not in stop]
        uif.intermediate_data["keywords"] = words
        return uif


class RankSkill(BaseSkillModule):
    skill_name = "RankSkill"
    skill_description = "Ranks keywords"
    required_inputs = ["keywords"]
    output_keys = ["ranked"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.intermediate_data["ranked"] = sorted(uif.intermediate_data["keywords"])
        return uif

    def can_execute(self, uif: SAM_UIF) -> bool:
        return super().can_execute(uif) and bool(uif.intermediate_data.get("keywords"))


def engine(*skills: Any, **config: Any) -> sof_core.CoordinatorEngine:
    settings = {"plugins_autoload": False, "skill_timeout": None, "total_timeout": None}
    return sof_core.CoordinatorEngine(config=SOFConfig(**{**settings, **config}))


# --- defaults and definition checks --------------------------------------------------------


def test_sams_class_defaults() -> None:
    assert issubclass(BaseSkillModule, sof_core.BaseSkillModule)
    assert (BaseSkillModule.skill_name, BaseSkillModule.skill_version) == ("BaseSkill", "1.0.0")
    assert BaseSkillModule.skill_description == "Base skill class"
    assert BaseSkillModule.skill_category == "core"
    assert BaseSkillModule.required_inputs == BaseSkillModule.optional_inputs == []
    assert BaseSkillModule.output_keys == []
    assert BaseSkillModule.requires_external_access is False
    assert BaseSkillModule.requires_vetting is False
    assert BaseSkillModule.can_run_parallel is True
    assert BaseSkillModule.estimated_execution_time is None
    assert BaseSkillModule.max_execution_time is None


def test_the_base_class_is_abstract() -> None:
    with pytest.raises(TypeError):
        BaseSkillModule()  # type: ignore[abstract]


def _execute(self: Any, uif: SAM_UIF) -> SAM_UIF:
    return uif


@pytest.mark.parametrize("attrs,message", [
    ({}, "Skill must define a unique skill_name"),
    ({"skill_name": "BaseSkill"}, "Skill must define a unique skill_name"),
    ({"skill_name": ""}, "Skill must define a unique skill_name"),
    ({"skill_name": "S", "skill_description": ""}, "Skill S must provide a description"),
    ({"skill_name": "S", "required_inputs": ["a"], "optional_inputs": ["a"]},
     "Skill S has overlapping required/optional inputs: {'a'}"),
    ({"skill_name": "S", "output_keys": ["status"]}, "managed by the coordinator"),
    ({"skill_name": "S", "max_execution_time": -1}, "max_execution_time must be a positive"),
])
def test_a_bad_definition_raises_value_error_when_instantiated(
    attrs: dict[str, Any], message: str,
) -> None:
    broken = type("Broken", (BaseSkillModule,), {"execute": _execute, **attrs})  # defines fine
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        broken()
    assert isinstance(caught.value, SkillDefinitionError)
    assert isinstance(caught.value, sof_core.SkillDefinitionError)


def test_a_broken_skill_cannot_be_registered() -> None:
    broken = type("Broken", (BaseSkillModule,), {"execute": _execute, "skill_name": "Broken",
                                                  "skill_description": ""})
    with pytest.raises(sof_core.SkillDefinitionError, match="Broken"):
        engine().register_skill(broken)


def test_instance_logger_follows_the_module() -> None:
    assert KeywordSkill().logger.name == "sof_sam.skills.base.KeywordSkill"


# --- SAM's helpers -------------------------------------------------------------------------


def test_dependencies_and_available_inputs() -> None:
    keywords, rank = KeywordSkill(), RankSkill()
    uif = SAM_UIF(input_query="Capital of France", user_id="u1")
    assert keywords.get_available_inputs(uif) == {"input_query", "active_profile", "user_id"}
    keywords.validate_dependencies(uif)
    assert keywords.can_execute(uif) and not rank.can_execute(uif)
    with pytest.raises(SkillDependencyError) as caught:
        rank.validate_dependencies(uif)
    assert str(caught.value) == "Skill RankSkill missing required inputs: ['keywords']"
    uif.intermediate_data["keywords"] = []
    assert not rank.can_execute(uif)  # the subclass's own check, after super()'s
    uif.intermediate_data["keywords"] = ["france"]
    assert rank.can_execute(uif)


def test_execute_with_monitoring_runs_validates_and_records() -> None:
    uif = SAM_UIF(input_query="capital of france", intermediate_data={"stopwords": ["of"]})
    result = KeywordSkill().execute_with_monitoring(uif)
    assert result is uif and result.status == "running"
    assert result.intermediate_data["keywords"] == ["capital", "france"]
    assert result.executed_skills == ["KeywordSkill"]
    assert 0 <= result.skill_timings["KeywordSkill"] < 5
    assert re.fullmatch(rf"\[{ISO}\] KeywordSkill: Starting execution", result.log_trace[0])
    assert result.log_trace[-1].endswith("KeywordSkill: Completed successfully")
    chained = RankSkill().execute_with_monitoring(result)
    assert chained.intermediate_data["ranked"] == ["capital", "france"]
    assert chained.executed_skills == ["KeywordSkill", "RankSkill"]


class SlowSkill(BaseSkillModule):
    skill_name = "SlowSkill"
    skill_description = "Takes longer than it promises"
    max_execution_time = 0.01
    output_keys = ["slow", "never_written"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        time.sleep(0.03)
        uif.intermediate_data["slow"] = True
        return uif


def test_execute_with_monitoring_warns_about_overruns_and_missing_outputs() -> None:
    uif = SlowSkill().execute_with_monitoring(SAM_UIF(input_query="q"))
    assert uif.status != UIFStatus.FAILURE and uif.intermediate_data["slow"] is True
    assert re.fullmatch(r"Execution time \(0\.\d\ds\) exceeded limit \(0\.01s\)", uif.warnings[0])
    assert uif.warnings[1] == (
        "Skill SlowSkill did not produce expected outputs: ['never_written']")


class Raises(BaseSkillModule):
    skill_name = "Raises"
    skill_description = "Raises what it is told to"
    error: Exception = RuntimeError("disk full")

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        raise self.error


@pytest.mark.parametrize("error,details", [
    (SkillExecutionError("no model loaded"), "Execution error: no model loaded"),
    (SkillDependencyError("memory offline"), "Dependency error: memory offline"),
    (sof_core.SkillTimeoutError("took too long"), "Execution error: took too long"),
    (RuntimeError("disk full"), "Unexpected error: disk full"),
])
def test_execute_with_monitoring_records_errors_in_the_uif(
    error: Exception, details: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Raises, "error", error)
    uif = Raises().execute_with_monitoring(SAM_UIF(input_query="q"))
    assert uif.status == "failure" and uif.error_details == details
    assert uif.log_trace[-1].endswith(f"Raises: ERROR: {details}")
    assert uif.executed_skills == []


def test_execute_with_monitoring_reports_missing_inputs() -> None:
    uif = RankSkill().execute_with_monitoring(SAM_UIF(input_query="q"))
    assert uif.status == "failure"
    assert uif.error_details == (
        "Dependency error: Skill RankSkill missing required inputs: ['keywords']")


def test_metadata_dependency_info_and_str() -> None:
    skill = KeywordSkill()
    assert skill.get_metadata() == SkillMetadata(
        name="KeywordSkill", description="Extracts keywords from the query", version="1.0.0",
        category="analysis", requires_external_access=False, requires_vetting=False,
        estimated_execution_time=None,
    )
    assert skill.get_dependency_info() == {
        "skill_name": "KeywordSkill", "required_inputs": ["input_query"],
        "optional_inputs": ["stopwords"], "output_keys": ["keywords"],
        "requires_external_access": False, "requires_vetting": False,
        "can_run_parallel": True, "estimated_execution_time": None,
    }
    assert str(skill) == "KeywordSkill v1.0.0 (analysis)"
    assert repr(skill) == "KeywordSkill(name='KeywordSkill', version='1.0.0', category='analysis')"
    assert SkillMetadata("n", "d", "1", "c").estimated_execution_time is None


# --- errors --------------------------------------------------------------------------------


def test_error_classes_keep_sams_relations_and_join_sofs() -> None:
    assert not issubclass(SkillDependencyError, SkillExecutionError)
    assert not issubclass(SkillExecutionError, SkillDependencyError)
    assert issubclass(SkillExecutionError, sof_core.SkillExecutionError)
    assert issubclass(SkillDependencyError, sof_core.SkillDependencyError)
    assert issubclass(SkillDependencyError, sof_core.SkillExecutionError)
    assert str(SkillExecutionError("plain message")) == "plain message"
    with pytest.raises(SkillDependencyError):  # SAM code's except clause lets it through
        try:
            raise SkillDependencyError("missing")
        except SkillExecutionError:
            pytest.fail("a dependency error is not an execution error in SAM")


# --- registered with and run by sof_core ---------------------------------------------------


def test_a_sam_skill_registers_with_a_valid_core_spec() -> None:
    core = engine()
    core.register_skill(KeywordSkill)
    core.register_skill(RankSkill())
    spec = core.registry.skill("KeywordSkill").spec  # type: ignore[union-attr]
    assert spec.estimated_execution_time == 1.0 and spec.max_execution_time is None
    assert spec.category == "analysis" and spec.optional_inputs == ("stopwords",)
    assert isinstance(core.registry.skill("RankSkill").instance, RankSkill)  # type: ignore[union-attr]


def test_a_sam_skill_runs_under_the_core_coordinator() -> None:
    core = engine(executor="sequential")
    core.register_skills([KeywordSkill, RankSkill])
    report = core.execute_plan(["KeywordSkill", "RankSkill"],
                               SAM_UIF(input_query="Paris France capital"))
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["ranked"] == ["capital", "france", "paris"]
    assert report.uif.executed_skills == ["KeywordSkill", "RankSkill"]


def test_registering_a_name_again_replaces_it() -> None:
    core = engine()
    core.register_skill(KeywordSkill)
    replacement = type("KeywordSkill2", (KeywordSkill,), {
        "skill_name": "KeywordSkill", "skill_version": "2.0.0"})
    core.register_skill(replacement)
    assert core.registry.skill("KeywordSkill").spec.version == "2.0.0"  # type: ignore[union-attr]


def test_the_configured_skill_timeout_stops_a_sam_skill() -> None:
    class Hangs(BaseSkillModule):
        skill_name = "Hangs"
        skill_description = "Never returns in time"

        def execute(self, uif: SAM_UIF) -> SAM_UIF:
            time.sleep(0.5)
            return uif

    core = engine(skill_timeout=0.05, total_timeout=5.0)
    core.register_skill(Hangs)
    report = core.execute_plan(["Hangs"], SAM_UIF(input_query="q"))
    assert report.results[0].status == "timeout" and report.uif.status == "timeout"


def test_a_dependency_error_raised_in_a_run_is_reported_by_type() -> None:
    class NeedsMemory(BaseSkillModule):
        skill_name = "NeedsMemory"
        skill_description = "Fails when memory is offline"

        def execute(self, uif: SAM_UIF) -> SAM_UIF:
            raise SkillDependencyError("memory store offline")

    core = engine()
    core.register_skill(NeedsMemory)
    (result,) = core.execute_plan(["NeedsMemory"], SAM_UIF(input_query="q")).results
    assert result.error_type == "SkillDependencyError"
    assert result.error == "memory store offline"
