"""SAM's SOFIntegration: process_query dicts, routed by sof_core's QueryRouter.

The configuration is SAM's own file (``SOF_CONFIG``), changed with SAM's functions, so the
rollout and rollback a SAM deployment performs are what decide each query's path.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sof_sam.config as sam_config
import sof_sam.sof_integration as integration
from sof_sam.coordinator import ExecutionResult
from sof_sam.skills.base import BaseSkillModule, SkillExecutionError
from sof_sam.sof_integration import (
    SOFIntegration,
    get_sof_integration,
    is_sof_available,
    process_query_with_sof,
    reset_sof_integration,
)
from sof_sam.uif import SAM_UIF

from sof_core.config import reset_sof_config_managers

SAM_KEYS = {"success", "response", "confidence", "processing_time", "execution_result",
            "executed_skills", "failed_skills", "fallback_used", "warnings", "metadata"}
METADATA_KEYS = {"task_id", "execution_plan", "skill_timings", "log_trace", "route"}


@pytest.fixture(autouse=True)
def sam_file(clean_env: Path) -> Iterator[Path]:
    """SAM's config file in tmp_path, with SOF on for everybody (as after a full rollout);
    the environment and config managers are the conftest's ``clean_env``."""
    path = clean_env
    reset_sof_integration()
    sam_config.get_sof_config_manager().update_config(
        use_sof_framework=True, sof_rollout_percentage=100, max_retry_attempts=0
    )
    yield path
    reset_sof_integration()
    sam_config.reset_sof_config_managers()
    reset_sof_config_managers()


# --- SAM-style skills ----------------------------------------------------------------------


class MemoryRetrievalSkill(BaseSkillModule):
    skill_name = "MemoryRetrievalSkill"
    skill_description = "Looks the query up in a tiny in-memory store"
    required_inputs = ["input_query"]
    output_keys = ["memory_results"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.intermediate_data["memory_results"] = [{"content": "Paris is in France"}]
        return uif


class ResponseGenerationSkill(BaseSkillModule):
    skill_name = "ResponseGenerationSkill"
    skill_description = "Answers from the memories"
    required_inputs = ["input_query"]
    optional_inputs = ["memory_results"]
    output_keys = ["final_response", "confidence_score"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        memories = uif.intermediate_data.get("memory_results", [])
        uif.final_response = memories[0]["content"] if memories else "I do not know"
        uif.confidence_score = 0.8
        return uif


class ConflictDetectorSkill(BaseSkillModule):
    skill_name = "ConflictDetectorSkill"
    skill_description = "Finds no conflicts"
    required_inputs = ["memory_results"]
    output_keys = ["conflicts"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.intermediate_data["conflicts"] = []
        return uif


class FailingSkill(BaseSkillModule):
    skill_name = "FailingSkill"
    skill_description = "Always fails"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        raise SkillExecutionError("backend down")


class BrokenMemorySkill(MemoryRetrievalSkill):
    skill_description = "A memory skill whose store is down"

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        raise SkillExecutionError("store down")


def generator(query: str) -> str:
    return f"legacy answer to {query}"


def sof(*skills: BaseSkillModule, fallback: Any = generator) -> SOFIntegration:
    made = SOFIntegration(fallback_generator=fallback)
    for skill in skills or (MemoryRetrievalSkill(), ResponseGenerationSkill(),
                            ConflictDetectorSkill()):
        assert made.register_custom_skill(skill)
    return made


PLAN = ["MemoryRetrievalSkill", "ResponseGenerationSkill"]


# --- answered by SOF -----------------------------------------------------------------------


def test_a_query_on_sof_returns_sams_dict() -> None:
    result = sof().process_query("Where is Paris?", user_id="u1", session_id="s1",
                                 user_context={"lang": "en"}, custom_plan=PLAN)
    assert SAM_KEYS | {"validation"} == set(result)
    assert result["success"] is True and result["execution_result"] == "success"
    assert result["response"] == "Paris is in France" and result["confidence"] == 0.8
    assert result["executed_skills"] == PLAN and result["failed_skills"] == []
    assert result["fallback_used"] is False and result["processing_time"] > 0
    assert set(result["metadata"]) == METADATA_KEYS
    assert result["metadata"]["execution_plan"] == PLAN
    assert set(result["metadata"]["skill_timings"]) == set(PLAN)
    assert result["metadata"]["log_trace"]
    assert result["metadata"]["route"]["path"] == "sof"
    assert result["validation"] == {"is_valid": True, "warnings_count": 0, "errors_count": 0,
                                    "execution_estimate": 2.0}


def test_the_callers_ids_and_context_reach_the_skills() -> None:
    seen: list[tuple[Any, ...]] = []

    class WhoSkill(BaseSkillModule):
        skill_name = "WhoSkill"
        skill_description = "Answers with who asked"
        required_inputs = ["input_query", "user_id", "session_id", "user_context"]
        output_keys = ["final_response"]

        def execute(self, uif: SAM_UIF) -> SAM_UIF:
            seen.append((uif.user_id, uif.session_id, uif.user_context, type(uif)))
            uif.final_response = "ok"
            return uif

    sof(WhoSkill()).process_query("q", user_id="u9", session_id="s9",
                                  user_context={"tier": "gold"}, custom_plan=["WhoSkill"])
    assert seen == [("u9", "s9", {"tier": "gold"}, SAM_UIF)]


def test_dynamic_planning_is_the_default() -> None:
    made = sof(MemoryRetrievalSkill(), ResponseGenerationSkill())
    result = made.process_query("Where is Paris?")
    assert result["success"] is True
    assert result["executed_skills"] == PLAN  # the graph's plan for final_response
    assert result["response"] == "Paris is in France"


def test_without_dynamic_planning_sams_default_plan_runs() -> None:
    result = sof().process_query("Where is Paris?", use_dynamic_planning=False)
    assert result["executed_skills"] == ["MemoryRetrievalSkill", "ConflictDetectorSkill",
                                         "ResponseGenerationSkill"]


def test_statistics_count_every_sof_run() -> None:
    made = sof()
    made.process_query("a", custom_plan=PLAN)
    made.process_query("b", custom_plan=PLAN)
    stats = made.get_execution_stats()
    assert stats["total_executions"] == 2 and stats["success_rate"] == 1.0
    assert made.router.metrics.snapshot()["paths"]["sof"]["count"] == 2


# --- rollout, rollback and fallback --------------------------------------------------------


def test_after_a_rollback_the_fallback_generator_answers() -> None:
    made = sof()
    sam_config.disable_sof_framework()
    result = made.process_query("Where is Paris?", custom_plan=PLAN)
    assert result["success"] is True
    assert result["response"] == "legacy answer to Where is Paris?"
    assert result["executed_skills"] == ["fallback_generator"]
    assert result["fallback_used"] is True
    assert result["metadata"]["route"] == {"path": "legacy", "fallback_reason": None,
                                           "bucket": result["metadata"]["route"]["bucket"],
                                           "sof_error": None}
    assert made.get_execution_stats()["total_executions"] == 0  # SOF never ran


def test_a_rollout_of_zero_percent_is_a_rollback_too() -> None:
    made = sof()
    sam_config.get_sof_config_manager().update_config(sof_rollout_percentage=0)
    assert made.process_query("q", custom_plan=PLAN)["metadata"]["route"]["path"] == "legacy"


def test_a_failing_run_falls_back_to_the_legacy_pipeline_with_its_reason() -> None:
    made = sof(FailingSkill())
    result = made.process_query("Where is Paris?", custom_plan=["FailingSkill"])
    assert result["success"] is True and result["fallback_used"] is True
    assert result["response"] == "legacy answer to Where is Paris?"
    assert result["executed_skills"] == ["fallback_generator"]
    assert result["failed_skills"] == ["FailingSkill"]
    route = result["metadata"]["route"]
    assert route["path"] == "legacy" and route["fallback_reason"] == "failure"
    assert "backend down" in route["sof_error"]
    paths = made.router.metrics.snapshot()["paths"]
    assert paths["sof"]["errors"] == 1 and paths["sof"]["fallback_reasons"] == {"failure": 1}


def test_an_invalid_plan_reaches_the_router_as_one(sam_file: Path) -> None:
    sam_config.get_sof_config_manager().update_config(enable_fallback_plans=False)
    made = sof()
    result = made.process_query("q", custom_plan=["NoSuchSkill"])
    assert result["response"] == "legacy answer to q"
    assert result["metadata"]["route"]["fallback_reason"] == "invalid_plan"
    assert "NoSuchSkill" in result["metadata"]["route"]["sof_error"]


def test_with_fallback_to_legacy_off_sams_own_fallbacks_answer() -> None:
    sam_config.get_sof_config_manager().update_config(fallback_to_legacy=False)
    made = sof(BrokenMemorySkill(), ResponseGenerationSkill())
    result = made.process_query("Where is Paris?", custom_plan=["NoSuchSkill"])
    assert result["success"] is True and result["fallback_used"] is True
    assert result["executed_skills"] == ["fallback_generator"]
    assert result["response"] == "legacy answer to Where is Paris?"
    assert result["metadata"]["route"]["path"] == "sof"


def test_with_no_fallback_at_all_the_failure_is_reported() -> None:
    sam_config.get_sof_config_manager().update_config(fallback_to_legacy=False)
    made = sof(FailingSkill(), fallback=None)
    result = made.process_query("q", custom_plan=["FailingSkill"])
    assert result["success"] is False and result["execution_result"] == "failure"
    assert result["error"] == "Execution error: backend down"
    assert result["response"] == "No response generated"
    assert result["failed_skills"] == ["FailingSkill"]


def test_a_legacy_route_without_a_fallback_generator_says_how_to_fix_it() -> None:
    sam_config.disable_sof_framework()
    result = sof(fallback=None).process_query("q", custom_plan=PLAN)
    assert result["success"] is False and result["execution_result"] == "failure"
    assert "fallback_generator" in result["error"]
    assert set(result) == SAM_KEYS | {"error"}


def test_tracing_off_leaves_the_log_out() -> None:
    sam_config.get_sof_config_manager().update_config(enable_execution_tracing=False)
    result = sof().process_query("q", custom_plan=PLAN)
    assert result["metadata"]["log_trace"] == []


# --- skills and lifecycle ------------------------------------------------------------------


def test_skills_are_the_installed_plugins_plus_custom_ones() -> None:
    class CustomSkill(BaseSkillModule):
        skill_name = "CustomSkill"
        skill_description = "A deployment's own skill"
        required_inputs = ["input_query"]
        output_keys = ["custom"]

        def execute(self, uif: SAM_UIF) -> SAM_UIF:
            uif.intermediate_data["custom"] = 1
            return uif

    class Nameless(BaseSkillModule):
        skill_description = "has no name"

        def execute(self, uif: SAM_UIF) -> SAM_UIF:
            return uif

    made = SOFIntegration(generator)
    installed = set(made.get_available_skills())
    assert made.register_custom_skill(CustomSkill()) is True
    assert set(made.get_available_skills()) == installed | {"CustomSkill"}
    with pytest.raises(ValueError):
        Nameless()


def test_lifecycle() -> None:
    made = sof()
    assert made.is_initialized()  # SOF is enabled, so it initialised itself
    made.process_query("q", custom_plan=PLAN)
    made.shutdown()
    assert not made.is_initialized()
    assert made.get_execution_stats()["total_executions"] == 0
    assert made.initialize() is True


def test_the_process_wide_instance_is_created_once() -> None:
    made: list[SOFIntegration] = []
    lock = threading.Lock()

    def grab() -> None:
        instance = get_sof_integration(generator)
        with lock:
            made.append(instance)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(m) for m in made}) == 1
    assert integration.get_sof_integration() is made[0]
    assert is_sof_available() is True
    made[0].register_custom_skill(MemoryRetrievalSkill())
    made[0].register_custom_skill(ResponseGenerationSkill())
    result = process_query_with_sof("Where is Paris?", custom_plan=PLAN)
    assert result["execution_result"] == ExecutionResult.SUCCESS.value
    sam_config.disable_sof_framework()
    assert is_sof_available() is False


class EchoQuerySkill(BaseSkillModule):
    skill_name = "EchoQuerySkill"
    skill_description = "Answers with the query it was given, quoted"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.final_response = f"query {uif.input_query!r}"
        return uif


@pytest.mark.parametrize("query", ["   ", "\t\n"], ids=repr)
def test_a_whitespace_only_query_runs_on_sof_as_in_sam(query: str) -> None:
    seen: list[str] = []
    sof = SOFIntegration(fallback_generator=lambda q: seen.append(q) or "legacy")
    sof.register_custom_skill(EchoQuerySkill())
    response = sof.process_query(query, custom_plan=["EchoQuerySkill"])
    assert response["success"] is True, response.get("error")
    assert response["metadata"]["route"]["path"] == "sof"
    assert response["response"] == f"query {query!r}"  # the query itself, not a stand-in
    assert response["executed_skills"] == ["EchoQuerySkill"] and seen == []


def test_a_whitespace_only_query_reaches_the_legacy_pipeline_as_given() -> None:
    sam_config.get_sof_config_manager().update_config(sof_rollout_percentage=0)
    seen: list[str] = []
    response = SOFIntegration(fallback_generator=lambda q: seen.append(q) or "legacy"
                              ).process_query("   ")
    assert response["success"] is True and response["response"] == "legacy"
    assert seen == ["   "]


def test_metadata_execution_plan_is_the_plan_asked_for_after_a_fallback() -> None:
    sam_config.get_sof_config_manager().update_config(fallback_to_legacy=False)
    result = sof().process_query("Where is Paris?", custom_plan=["NoSuchSkill"])
    assert result["fallback_used"] is True
    assert result["executed_skills"] == PLAN
    assert result["metadata"]["execution_plan"] == ["NoSuchSkill"]


def test_initialize_registers_the_core_skills_through_sams_hook() -> None:
    """SAM's tests patch ``_register_core_skills`` and expect ``initialize()`` to call it
    once; with it patched out, initialization succeeds as in SAM."""
    from unittest.mock import patch

    sam_config.get_sof_config_manager().update_config(use_sof_framework=False)
    made = SOFIntegration()  # SOF off: not initialized on construction, as in SAM
    assert not made.is_initialized()
    with patch.object(made, "_register_core_skills") as register:
        assert made.initialize() is True
    register.assert_called_once_with()
    assert made.is_initialized()


def test_the_process_wide_instance_follows_sams_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test suite gives each test its own $SOF_CONFIG without knowing
    reset_sof_integration: process_query_with_sof and is_sof_available then answer from
    that file, not from the first test's."""
    off = tmp_path / "off.json"
    off.write_text(json.dumps({"use_sof_framework": False}))
    monkeypatch.setenv("SOF_CONFIG", str(off))
    first = process_query_with_sof("q", fallback_generator=generator)
    assert first["metadata"]["route"]["path"] == "legacy"
    assert is_sof_available() is False
    old = get_sof_integration()

    on = tmp_path / "on.json"
    on.write_text(json.dumps({"use_sof_framework": True, "sof_rollout_percentage": 100}))
    monkeypatch.setenv("SOF_CONFIG", str(on))
    assert is_sof_available() is True
    fresh = get_sof_integration()
    assert fresh is not old and fresh is get_sof_integration()  # one per file, kept
    assert fresh._fallback_generator is generator  # the old instance's, when none is given


def test_the_same_file_keeps_the_instance_after_the_managers_are_forgotten() -> None:
    """reset_sof_config_managers() makes a new manager for the same file: the instance, its
    custom skills and its state stay (only another file makes a fresh one)."""
    made = get_sof_integration(generator)
    made.register_custom_skill(MemoryRetrievalSkill())
    sam_config.reset_sof_config_managers()
    assert get_sof_integration() is made
