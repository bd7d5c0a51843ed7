"""SAM's CoordinatorEngine on sof_core: SAM callers, SAM-style skills, SAM's flags."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sof_sam.coordinator as coordinator_module
from sof_sam.config import SOFConfig
from sof_sam.coordinator import CoordinatorEngine, ExecutionReport, ExecutionResult
from sof_sam.skills.base import BaseSkillModule, SkillExecutionError
from sof_sam.uif import SAM_UIF, UIFStatus

import sof_core
from sof_core.testing import make_engine

# --- SAM-style skills ----------------------------------------------------------------------


class QueryAnalyzerSkill(BaseSkillModule):
    skill_name = "QueryAnalyzerSkill"
    skill_description = "Splits the query into keywords"
    skill_category = "analysis"
    required_inputs = ["input_query"]
    output_keys = ["keywords"]
    estimated_execution_time = 0.5

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.intermediate_data["keywords"] = uif.input_query.lower().split()
        uif.add_log_entry("keywords extracted", self.skill_name)
        return uif


class KeywordCounterSkill(BaseSkillModule):
    skill_name = "KeywordCounterSkill"
    skill_description = "Counts the keywords"
    required_inputs = ["keywords"]
    output_keys = ["keyword_count"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.intermediate_data["keyword_count"] = len(uif.intermediate_data["keywords"])
        uif.set_skill_output(self.skill_name, {"count": uif.intermediate_data["keyword_count"]})
        return uif


class AnswerSkill(BaseSkillModule):
    skill_name = "AnswerSkill"
    skill_description = "Answers with the keyword count"
    required_inputs = ["keyword_count"]
    output_keys = ["final_response", "confidence_score"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.final_response = f"{uif.intermediate_data['keyword_count']} keywords"
        uif.confidence_score = 0.9
        return uif


class MemoryRetrievalSkill(BaseSkillModule):
    """SAM's safe-plan memory skill, as a SAM deployment writes it."""

    skill_name = "MemoryRetrievalSkill"
    skill_description = "Finds memories for the query"
    required_inputs = ["input_query"]
    output_keys = ["memory_results"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.intermediate_data["memory_results"] = [f"memory about {uif.input_query}"]
        return uif


class ResponseGenerationSkill(BaseSkillModule):
    skill_name = "ResponseGenerationSkill"
    skill_description = "Answers from the memories"
    required_inputs = ["input_query"]
    optional_inputs = ["memory_results"]
    output_keys = ["final_response"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        found = uif.intermediate_data.get("memory_results", [])
        uif.final_response = f"answer from {len(found)} memories"
        return uif


class BrokenMemorySkill(MemoryRetrievalSkill):
    skill_description = "A memory skill whose store is down"

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        raise SkillExecutionError("vector store unreachable")


def sam_config(**flags: Any) -> SOFConfig:
    """SAM's configuration with the given flags (retries off unless a test wants them)."""
    flags.setdefault("max_retry_attempts", 0)
    return SOFConfig(**flags)


def coordinator(*skills: BaseSkillModule, **kwargs: Any) -> CoordinatorEngine:
    config = kwargs.pop("config", None) or sam_config()
    engine = CoordinatorEngine(config=config, **kwargs)
    engine.register_skills(list(skills))
    return engine


CHAIN = [QueryAnalyzerSkill(), KeywordCounterSkill(), AnswerSkill()]
PLAN = ["QueryAnalyzerSkill", "KeywordCounterSkill", "AnswerSkill"]


# --- a plan that works ---------------------------------------------------------------------


def test_a_valid_plan_runs_and_reports_as_sam_did() -> None:
    engine = coordinator(*CHAIN)
    uif = SAM_UIF(input_query="How many words are here")
    report = engine.execute_plan(PLAN, uif)
    assert isinstance(report, ExecutionReport)
    assert report.result.value == "success"
    assert report.uif is uif and uif.final_response == "5 keywords"
    assert report.executed_skills == PLAN and report.failed_skills == []
    assert report.fallback_used is False and report.error_details is None
    assert report.execution_time > 0
    assert uif.status == UIFStatus.SUCCESS
    assert uif.get_skill_output("KeywordCounterSkill") == {"count": 5}
    assert report.validation_report is not None and report.validation_report.is_valid
    assert isinstance(report.sof_report, sof_core.ExecutionReport)
    assert report.sof_report.executor == "sequential"
    # SAM's ISO times, start before end
    assert uif.start_time is not None and uif.end_time is not None
    assert uif.start_time <= uif.end_time
    assert any("keywords extracted" in line for line in uif.log_trace)


def test_unknown_keyword_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        CoordinatorEngine(enable_loss_balance=True)  # type: ignore[call-arg]


def test_sams_no_op_switches_are_accepted() -> None:
    engine = CoordinatorEngine(
        None, True, False, False, "config/domain_constraints.yaml", None, config=sam_config()
    )
    assert engine.get_loss_balancer_stats() is None
    assert engine.get_constraint_statistics() is None
    assert engine.get_curriculum_status() is None


# --- plan order and concurrency ------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def note(self, event: str, name: str) -> None:
        with self.lock:
            self.events.append((event, name))


def timed_skill(name: str, reads: list[str], recorder: Recorder, barrier: Any = None
                ) -> BaseSkillModule:
    def execute(self: Any, uif: SAM_UIF) -> SAM_UIF:
        recorder.note("start", name)
        if barrier is not None:
            barrier.wait()  # only passes if the other skill runs at the same time
        time.sleep(0.02)
        uif.intermediate_data[name.lower()] = name
        recorder.note("end", name)
        return uif

    cls = type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"{name} records when it runs",
        "required_inputs": reads, "output_keys": [name.lower()], "execute": execute,
    })
    return cls()  # type: ignore[no-any-return]


def test_a_plan_runs_in_the_order_written_one_skill_at_a_time() -> None:
    recorder = Recorder()
    # Late reads early's output; Free needs nothing and is listed between them. SOF's
    # generations would be (Early, Free), (Late); SAM runs the list as written.
    skills = [
        timed_skill("Early", ["input_query"], recorder),
        timed_skill("Free", ["input_query"], recorder),
        timed_skill("Late", ["early"], recorder),
    ]
    report = coordinator(*skills).execute_plan(["Early", "Late", "Free"],
                                               SAM_UIF(input_query="q"))
    assert report.result == ExecutionResult.SUCCESS
    assert recorder.events == [
        ("start", "Early"), ("end", "Early"), ("start", "Late"), ("end", "Late"),
        ("start", "Free"), ("end", "Free"),
    ]
    assert report.executed_skills == ["Early", "Late", "Free"]


def optional_reader(name: str, optional: str, recorder: Recorder) -> BaseSkillModule:
    def execute(self: Any, uif: SAM_UIF) -> SAM_UIF:
        recorder.note("start", name)
        uif.intermediate_data[name.lower()] = uif.intermediate_data.get(optional, "absent")
        return uif

    cls = type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"{name} reads {optional} if it is there",
        "required_inputs": ["input_query"], "optional_inputs": [optional],
        "output_keys": [name.lower()], "execute": execute,
    })
    return cls()  # type: ignore[no-any-return]


def test_an_optional_input_listed_later_is_not_waited_for_in_plan_order() -> None:
    # Before: SOF ran the later producer first (and said "reordered"); SAM runs the plan as
    # written and the reader goes without the optional input.
    recorder = Recorder()
    skills = [optional_reader("Reader", "early", recorder),
              timed_skill("Early", ["input_query"], recorder)]
    config = sam_config()
    engine = coordinator(*skills, config=config)
    report = engine.execute_plan(["Reader", "Early"], SAM_UIF(input_query="q"))
    assert report.result == ExecutionResult.SUCCESS
    assert [e for e in recorder.events if e[0] == "start"] == [("start", "Reader"),
                                                                ("start", "Early")]
    assert report.executed_skills == ["Reader", "Early"]
    assert report.uif.intermediate_data["reader"] == "absent"
    assert report.validation_report is not None and report.validation_report.issues == []
    # With enable_parallel_execution SOF orders by the graph: the producer goes first...
    recorder.events.clear()
    config.enable_parallel_execution = True  # the host's config, changed while it runs
    again = engine.execute_plan(["Reader", "Early"], SAM_UIF(input_query="q"))
    assert again.executed_skills == ["Early", "Reader"]
    assert again.uif.intermediate_data["reader"] == "Early"
    # ...and back off, as written again.
    config.enable_parallel_execution = False
    third = engine.execute_plan(["Reader", "Early"], SAM_UIF(input_query="q"))
    assert third.executed_skills == ["Reader", "Early"]


def test_enable_parallel_execution_lets_independent_skills_run_together() -> None:
    recorder = Recorder()
    # Generous: it only passes once both run at once, and a loaded CI machine may take
    # seconds to start the second thread (a real failure still fails, only later).
    barrier = threading.Barrier(2, timeout=20)
    skills = [timed_skill(n, ["input_query"], recorder, barrier) for n in ("Left", "Right")]
    engine = coordinator(*skills, config=sam_config(enable_parallel_execution=True))
    report = engine.execute_plan(["Left", "Right"], SAM_UIF(input_query="q"))
    assert report.result == ExecutionResult.SUCCESS, report.uif.error_details
    assert report.sof_report is not None and report.sof_report.stages == [["Left", "Right"]]


def test_a_consumer_listed_before_its_producer_is_invalid_when_order_is_kept() -> None:
    engine = coordinator(*CHAIN, config=sam_config(enable_fallback_plans=False))
    report = engine.execute_plan(["KeywordCounterSkill", "QueryAnalyzerSkill"],
                                 SAM_UIF(input_query="a b"))
    assert report.result.value == "failure"
    assert report.error_details == "Plan validation failed: 1 errors"
    assert report.executed_skills == []
    assert report.failed_skills == ["KeywordCounterSkill", "QueryAnalyzerSkill"]


def test_with_parallel_execution_sof_orders_the_plan_by_its_graph() -> None:
    engine = coordinator(*CHAIN, config=sam_config(enable_parallel_execution=True))
    report = engine.execute_plan(["AnswerSkill", "KeywordCounterSkill", "QueryAnalyzerSkill"],
                                 SAM_UIF(input_query="a b"))
    assert report.result == ExecutionResult.SUCCESS
    assert report.executed_skills == PLAN
    assert report.validation_report is not None
    assert report.validation_report.warnings_count == 2  # two skills moved, each said once


# --- fallbacks -----------------------------------------------------------------------------


def test_an_invalid_plan_runs_the_safe_plan_and_says_so() -> None:
    engine = coordinator(MemoryRetrievalSkill(), ResponseGenerationSkill(), *CHAIN)
    uif = SAM_UIF(input_query="Tell me about Paris")
    report = engine.execute_plan(["QueryAnalyzerSkill", "NonExistentSkill"], uif)
    assert report.result.value == "success"
    assert report.fallback_used is True
    assert report.executed_skills == ["MemoryRetrievalSkill", "ResponseGenerationSkill"]
    assert report.failed_skills == []
    assert uif.final_response == "answer from 1 memories"
    assert uif.status == UIFStatus.SUCCESS and uif.error_details is None
    assert report.execution_time > 0  # measured (SAM reported 0.0 for a fallback)
    stats = engine.get_execution_stats()
    assert stats["fallback_usage_rate"] == 1.0 and stats["successful_executions"] == 1


def test_the_safe_plan_uses_only_skills_registered_on_the_coordinator() -> None:
    # The installed sof-memory/sof-response plugins provide both safe-plan skills, but this
    # coordinator never registered them: as in SAM, there is no safe plan to fall back on.
    engine = coordinator(*CHAIN)
    assert {"MemoryRetrievalSkill", "ResponseGenerationSkill"} <= set(
        engine.get_registered_skills())
    report = engine.execute_plan(["QueryAnalyzerSkill", "NonExistentSkill"],
                                 SAM_UIF(input_query="q"))
    assert report.result == ExecutionResult.FAILURE and report.fallback_used is False
    assert report.failed_skills == ["QueryAnalyzerSkill", "NonExistentSkill"]
    # Adopting the plugins' skills (what SOFIntegration does, as SAM's registered its core
    # skills) brings the safe plan back.
    assert engine.adopt_installed_skills(["MemoryRetrievalSkill", "ResponseGenerationSkill",
                                          "NotInstalledSkill"]) == [
        "MemoryRetrievalSkill", "ResponseGenerationSkill"]
    again = engine.execute_plan(["QueryAnalyzerSkill", "NonExistentSkill"],
                                SAM_UIF(input_query="q"))
    assert again.fallback_used is True
    assert again.executed_skills == ["MemoryRetrievalSkill", "ResponseGenerationSkill"]


def test_when_the_safe_plan_fails_the_fallback_generator_answers() -> None:
    asked: list[str] = []

    def fallback(query: str) -> str:
        asked.append(query)
        return f"Fallback response for: {query}"

    engine = coordinator(BrokenMemorySkill(), ResponseGenerationSkill(),
                         fallback_generator=fallback)
    uif = SAM_UIF(input_query="Test query")
    report = engine.execute_plan(["NonExistentSkill1", "NonExistentSkill2"], uif)
    assert report.result == ExecutionResult.SUCCESS
    assert report.fallback_used is True
    assert report.executed_skills == ["fallback_generator"]
    assert uif.final_response == "Fallback response for: Test query"
    assert asked == ["Test query"]


def test_a_skill_requiring_an_empty_uif_field_is_not_run_the_fallback_answers() -> None:
    # the skill ran on session_id None and crashed (no fallback), as SAM never ran it
    class NeedsSession(BaseSkillModule):
        skill_name = "NeedsSession"
        skill_description = "greets the session"
        required_inputs = ["session_id"]
        output_keys = ["final_response"]

        def execute(self, uif: SAM_UIF) -> SAM_UIF:
            uif.final_response = "session " + str(uif.session_id)
            return uif

    engine = coordinator(NeedsSession(), fallback_generator=lambda query: "FALLBACK")
    report = engine.execute_plan(["NeedsSession"], SAM_UIF(input_query="q"))
    assert report.fallback_used and report.executed_skills == ["fallback_generator"]
    assert report.uif.final_response == "FALLBACK"
    ran = engine.execute_plan(["NeedsSession"], SAM_UIF(input_query="q", session_id="s-1"))
    assert ran.executed_skills == ["NeedsSession"] and not ran.fallback_used
    assert ran.uif.final_response == "session s-1"


def test_without_fallback_plans_an_invalid_plan_fails_with_sams_error() -> None:
    engine = coordinator(MemoryRetrievalSkill(), ResponseGenerationSkill(),
                         config=sam_config(enable_fallback_plans=False),
                         fallback_generator=lambda q: "never used")
    uif = SAM_UIF(input_query="q")
    report = engine.execute_plan(["MemoryRetrievalSkill", "NoSuchSkill"], uif)
    assert report.result.value == "failure" and report.fallback_used is False
    assert report.error_details == "Plan validation failed: 1 errors"
    assert uif.error_details == "Plan validation failed: 1 errors"
    assert uif.status == UIFStatus.FAILURE
    assert report.failed_skills == ["MemoryRetrievalSkill", "NoSuchSkill"]
    issue = report.validation_report.issues[0]  # type: ignore[union-attr]
    assert (issue.skill_name, issue.issue_type) == ("NoSuchSkill", "missing_skill")


class PingSkill(BaseSkillModule):
    skill_name = "PingSkill"
    skill_description = "Needs pong"
    required_inputs = ["pong"]
    output_keys = ["ping"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        return uif


class PongSkill(PingSkill):
    skill_name = "PongSkill"
    skill_description = "Needs ping"
    required_inputs = ["ping"]
    output_keys = ["pong"]


def test_an_error_outside_the_skills_falls_back_too() -> None:
    # With validation off nothing stops a cycle before the engine refuses to run it.
    engine = coordinator(PingSkill(), PongSkill(), MemoryRetrievalSkill(),
                         ResponseGenerationSkill(),
                         config=sam_config(enable_plan_validation=False))
    report = engine.execute_plan(["PingSkill", "PongSkill"], SAM_UIF(input_query="q"))
    assert report.result == ExecutionResult.SUCCESS and report.fallback_used is True
    assert report.executed_skills == ["MemoryRetrievalSkill", "ResponseGenerationSkill"]
    without = coordinator(PingSkill(), PongSkill(),
                          config=sam_config(enable_plan_validation=False,
                                            enable_fallback_plans=False))
    failed = without.execute_plan(["PingSkill", "PongSkill"], SAM_UIF(input_query="q"))
    assert failed.result == ExecutionResult.FAILURE
    assert failed.error_details is not None and "cycle" in failed.error_details
    assert failed.uif.error_details == f"Execution error: {failed.error_details}"


def test_a_repeated_skill_runs_once() -> None:
    calls: list[str] = []

    class CountedSkill(QueryAnalyzerSkill):
        def execute(self, uif: SAM_UIF) -> SAM_UIF:
            calls.append(uif.input_query)
            return super().execute(uif)

    engine = coordinator(CountedSkill(), KeywordCounterSkill())
    report = engine.execute_plan(["QueryAnalyzerSkill", "QueryAnalyzerSkill",
                                  "KeywordCounterSkill"], SAM_UIF(input_query="a b"))
    assert report.result == ExecutionResult.SUCCESS and calls == ["a b"]
    assert report.validation_report is not None
    assert [i.issue_type for i in report.validation_report.issues] == ["duplicate_skill"]


# --- failures at run time ------------------------------------------------------------------


class SilentProducerSkill(BaseSkillModule):
    skill_name = "SilentProducerSkill"
    skill_description = "Declares search_hits but writes nothing"
    required_inputs = ["input_query"]
    output_keys = ["search_hits"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        return uif


class HitsReaderSkill(BaseSkillModule):
    skill_name = "HitsReaderSkill"
    skill_description = "Needs search_hits"
    required_inputs = ["search_hits"]
    output_keys = ["final_response"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.final_response = str(uif.intermediate_data["search_hits"])
        return uif


def test_a_missing_input_at_run_time_is_sams_dependency_error() -> None:
    engine = coordinator(SilentProducerSkill(), HitsReaderSkill())
    uif = SAM_UIF(input_query="q")
    report = engine.execute_plan(["SilentProducerSkill", "HitsReaderSkill"], uif)
    assert report.result.value == "failure"
    assert uif.error_details == (
        "Dependency error: Skill HitsReaderSkill missing required inputs: ['search_hits']"
    )
    assert report.executed_skills == ["SilentProducerSkill"]
    assert report.failed_skills == ["HitsReaderSkill"]
    assert uif.status == UIFStatus.FAILURE
    assert "Skill SilentProducerSkill did not produce expected outputs: ['search_hits']" in (
        uif.warnings
    )


class FailingSkill(BaseSkillModule):
    skill_name = "FailingSkill"
    skill_description = "Skill that always fails"
    required_inputs = ["input_query"]
    output_keys = ["failing_output"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        raise SkillExecutionError("This skill always fails")


class RefusingSkill(BaseSkillModule):
    skill_name = "RefusingSkill"
    skill_description = "Reports its own failure with set_error"
    required_inputs = ["input_query"]
    output_keys = ["refusal"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.set_error("quota exhausted for today", self.skill_name)
        return uif


class CrashingSkill(BaseSkillModule):
    skill_name = "CrashingSkill"
    skill_description = "Divides by zero"
    required_inputs = ["input_query"]
    output_keys = ["ratio"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.intermediate_data["ratio"] = 1 / 0
        return uif


@pytest.mark.parametrize(
    ("skill", "error"),
    [
        (FailingSkill(), "Execution error: This skill always fails"),
        (RefusingSkill(), "quota exhausted for today"),
        (CrashingSkill(), "Unexpected error: division by zero"),
    ],
)
def test_a_failing_skill_fails_the_run_with_sams_words(skill: BaseSkillModule, error: str
                                                       ) -> None:
    engine = coordinator(skill)
    uif = SAM_UIF(input_query="Test query")
    report = engine.execute_plan([skill.skill_name], uif)
    assert report.result == ExecutionResult.FAILURE
    assert report.error_details is not None or report.uif.error_details is not None
    assert uif.error_details == error
    assert uif.status == UIFStatus.FAILURE
    assert report.failed_skills == [skill.skill_name]
    assert report.fallback_used is False  # a skill failure is not a reason to fall back


def test_a_stopped_run_logs_only_the_failure_as_sam_does() -> None:
    """SOF's report lists the skills a stopped run never reached (``SkillNotRunError``);
    SAM's log has a line for the failure only, and its failed_skills has both."""
    engine = coordinator(FailingSkill(), QueryAnalyzerSkill(),
                         config=sam_config(enable_parallel_execution=False))
    uif = SAM_UIF(input_query="a b")
    report = engine.execute_plan(["FailingSkill", "QueryAnalyzerSkill"], uif)
    assert report.result == ExecutionResult.FAILURE
    assert report.failed_skills == ["FailingSkill", "QueryAnalyzerSkill"]
    failed_lines = [line for line in uif.log_trace if " failed: " in line]
    assert len(failed_lines) == 1 and "FailingSkill" in failed_lines[0]
    assert report.sof_report is not None
    assert report.sof_report.result("QueryAnalyzerSkill").error_type == "SkillNotRunError"


def test_continue_on_skill_failure_gives_a_partial_success() -> None:
    engine = coordinator(FailingSkill(), QueryAnalyzerSkill(),
                         config=sam_config(continue_on_skill_failure=True))
    uif = SAM_UIF(input_query="a b")
    report = engine.execute_plan(["FailingSkill", "QueryAnalyzerSkill"], uif)
    assert report.result.value == "partial_success"
    assert report.executed_skills == ["QueryAnalyzerSkill"]
    assert report.failed_skills == ["FailingSkill"]
    assert "Partial execution: 1 skills failed" in uif.warnings
    assert uif.status == UIFStatus.RUNNING  # as SAM leaves a partly failed run


def test_with_validation_off_an_unknown_skill_stops_the_run_where_it_stands() -> None:
    engine = coordinator(*CHAIN, config=sam_config(enable_plan_validation=False))
    uif = SAM_UIF(input_query="a b")
    report = engine.execute_plan(["QueryAnalyzerSkill", "GhostSkill", "KeywordCounterSkill"],
                                 uif)
    assert report.result == ExecutionResult.FAILURE
    assert report.validation_report is None
    assert uif.error_details == "Skill 'GhostSkill' not found during execution"
    assert report.executed_skills == ["QueryAnalyzerSkill"]
    assert report.failed_skills == ["GhostSkill", "KeywordCounterSkill"]


class SlowSkill(BaseSkillModule):
    skill_name = "SlowSkill"
    skill_description = "Takes far longer than the run may"
    required_inputs = ["input_query"]
    output_keys = ["slow_result"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        time.sleep(3)
        uif.intermediate_data["slow_result"] = "late"
        return uif


def test_max_execution_time_bounds_the_whole_run() -> None:
    engine = coordinator(SlowSkill(), config=sam_config(max_execution_time=0.2,
                                                        skill_timeout=0.2))
    uif = SAM_UIF(input_query="q")
    started = time.perf_counter()
    report = engine.execute_plan(["SlowSkill"], uif)
    assert time.perf_counter() - started < 2
    assert report.result.value == "timeout"
    assert "Execution timeout reached" in uif.warnings
    assert uif.status == UIFStatus.RUNNING  # as SAM leaves a timed-out run
    assert report.failed_skills == ["SlowSkill"]


class FlakySkill(BaseSkillModule):
    skill_name = "FlakySkill"
    skill_description = "Fails twice, then works"
    required_inputs = ["input_query"]
    output_keys = ["flaky_result"]
    calls = 0

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        type(self).calls += 1
        if type(self).calls < 3:
            raise SkillExecutionError("try again")
        uif.intermediate_data["flaky_result"] = "ok"
        return uif


def test_max_retry_attempts_retries_a_failing_skill() -> None:
    FlakySkill.calls = 0
    engine = coordinator(FlakySkill(), config=sam_config(max_retry_attempts=2))
    report = engine.execute_plan(["FlakySkill"], SAM_UIF(input_query="q"))
    assert report.result == ExecutionResult.SUCCESS and FlakySkill.calls == 3
    assert report.sof_report is not None and report.sof_report.results[0].attempts == 3


class SloppySkill(BaseSkillModule):
    skill_name = "SloppySkill"
    skill_description = "Writes a key it never declared"
    required_inputs = ["input_query"]
    output_keys = ["declared"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.intermediate_data["declared"] = 1
        uif.intermediate_data["scratch"] = 2
        return uif


def test_an_undeclared_write_fails_as_for_native_skills() -> None:
    uif = SAM_UIF(input_query="q")
    report = coordinator(SloppySkill()).execute_plan(["SloppySkill"], uif)
    assert report.result == ExecutionResult.FAILURE
    assert uif.error_details is not None
    assert uif.error_details.startswith("Execution error: UndeclaredWriteError: wrote 'scratch'")


# --- registration --------------------------------------------------------------------------


class AnswerSkillV2(AnswerSkill):
    skill_version = "2.0.0"

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.final_response = "v2"
        return uif


def test_registering_a_name_again_replaces_the_skill() -> None:
    engine = coordinator(*CHAIN)
    engine.register_skill(AnswerSkillV2())
    report = engine.execute_plan(PLAN, SAM_UIF(input_query="a"))
    assert report.uif.final_response == "v2"
    assert engine.get_registered_skills().count("AnswerSkill") == 1


def test_an_in_code_skill_overrides_an_installed_one_on_its_engine_only() -> None:
    ours = coordinator(MemoryRetrievalSkill())
    other = CoordinatorEngine(config=sam_config())
    ours_entry = ours.sof_engine.registry.skill("MemoryRetrievalSkill")
    assert ours_entry is not None and isinstance(ours_entry.instance, MemoryRetrievalSkill)
    theirs = other.sof_engine.registry.skill("MemoryRetrievalSkill")
    if theirs is not None:  # sof-memory installed: the other engine keeps the plugin's
        assert not isinstance(theirs.instance, MemoryRetrievalSkill)


def test_a_skill_sof_cannot_use_raises_and_changes_nothing() -> None:
    class NoName(BaseSkillModule):
        skill_description = "forgot its name"

        def execute(self, uif: SAM_UIF) -> SAM_UIF:
            return uif

    engine = coordinator()
    before = engine.get_registered_skills()
    with pytest.raises(ValueError):
        engine.register_skill(NoName())
    assert engine.get_registered_skills() == before


# --- history and statistics ----------------------------------------------------------------


def test_statistics_and_history_as_sam_callers_read_them() -> None:
    engine = coordinator(*CHAIN, FailingSkill())
    assert engine.get_execution_stats()["total_executions"] == 0
    assert engine.get_execution_stats()["success_rate"] == 0.0
    for i in range(3):
        engine.execute_plan(PLAN[:2], SAM_UIF(input_query=f"Test query {i}"))
    engine.execute_plan(["FailingSkill"], SAM_UIF(input_query="bad"))
    history = engine.get_execution_history()
    assert [r.result.value for r in history] == ["success"] * 3 + ["failure"]
    stats = engine.get_execution_stats()
    assert stats["total_executions"] == 4
    assert stats["successful_executions"] == 3 and stats["failed_executions"] == 1
    assert stats["success_rate"] == 0.75 and stats["fallback_usage_rate"] == 0.0
    assert stats["average_execution_time"] > 0
    engine.clear_execution_history()
    assert engine.get_execution_history() == []


def test_the_history_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert coordinator_module.MAX_EXECUTION_HISTORY == 1000
    monkeypatch.setattr(coordinator_module, "MAX_EXECUTION_HISTORY", 3)
    engine = coordinator(*CHAIN)
    uifs = [SAM_UIF(input_query=f"q{i}") for i in range(5)]
    for uif in uifs:
        engine.execute_plan(PLAN[:1], uif)
    assert [r.uif for r in engine.get_execution_history()] == uifs[2:]
    assert engine.get_execution_stats()["total_executions"] == 3


# --- dynamic planning, configuration, goals ------------------------------------------------


def test_dynamic_planning_runs_the_graphs_plan_for_the_response() -> None:
    # An engine without the installed plugins, so AnswerSkill is the only producer of
    # final_response and the goal planner has one plan to find.
    engine = coordinator(*CHAIN, engine=make_engine())
    report = engine.execute_with_dynamic_planning(SAM_UIF(input_query="one two three"))
    assert report.result == ExecutionResult.SUCCESS
    assert report.executed_skills == PLAN
    assert report.uif.final_response == "3 keywords"
    assert any("Dynamic plan generated" in line for line in report.uif.log_trace)


def test_sams_flags_come_from_sams_config_file(clean_env: Path) -> None:
    clean_env.write_text(json.dumps({"continue_on_skill_failure": True,
                                     "max_retry_attempts": 0}))
    engine = CoordinatorEngine()
    engine.register_skills([FailingSkill(), QueryAnalyzerSkill()])
    report = engine.execute_plan(["FailingSkill", "QueryAnalyzerSkill"],
                                 SAM_UIF(input_query="a"))
    assert report.result == ExecutionResult.PARTIAL_SUCCESS


def test_the_motivation_engine_hears_about_successful_runs() -> None:
    class Motivation:
        goal_stack = None

        def __init__(self) -> None:
            self.seen: list[str] = []

        def generate_goals_from_uif(self, uif: SAM_UIF) -> list[str]:
            self.seen.append(uif.input_query)
            return ["learn more"]

    motivation = Motivation()
    engine = coordinator(*CHAIN, motivation_engine=motivation)
    report = engine.execute_plan(PLAN, SAM_UIF(input_query="a b"))
    assert motivation.seen == ["a b"]
    assert any("Generated 1 autonomous goals" in line for line in report.uif.log_trace)


def test_a_plain_sof_uif_is_converted() -> None:
    report = coordinator(*CHAIN).execute_plan(PLAN, sof_core.UIF(input_query="x y"))
    assert isinstance(report.uif, SAM_UIF) and report.uif.final_response == "2 keywords"


# --- the plan the caller asked for ---------------------------------------------------------


def test_execution_plan_stays_the_plan_asked_for_after_the_safe_plan_fallback() -> None:
    """SAM sets ``uif.execution_plan`` to the plan given and never changes it: callers (and
    ``process_query``'s ``metadata["execution_plan"]``) see what was asked for, not the safe
    plan that answered."""
    engine = coordinator(MemoryRetrievalSkill(), ResponseGenerationSkill())
    uif = SAM_UIF(input_query="Tell me about Paris")
    report = engine.execute_plan(["NoSuchSkill"], uif)
    assert report.fallback_used is True
    assert report.executed_skills == ["MemoryRetrievalSkill", "ResponseGenerationSkill"]
    assert uif.execution_plan == ["NoSuchSkill"]


def test_execution_plan_keeps_a_repeated_skill_as_written() -> None:
    engine = coordinator(MemoryRetrievalSkill(), ResponseGenerationSkill())
    plan = ["MemoryRetrievalSkill", "MemoryRetrievalSkill", "ResponseGenerationSkill"]
    uif = SAM_UIF(input_query="Tell me about Paris")
    report = engine.execute_plan(plan, uif)
    assert report.result == ExecutionResult.SUCCESS
    assert report.executed_skills == ["MemoryRetrievalSkill", "ResponseGenerationSkill"]
    assert uif.execution_plan == plan


def test_execution_plan_stays_the_plan_asked_for_after_the_fallback_generator() -> None:
    engine = coordinator(fallback_generator=lambda query: f"legacy: {query}")
    uif = SAM_UIF(input_query="q")
    report = engine.execute_plan(["NoSuchSkill", "OtherSkill"], uif)
    assert report.executed_skills == ["fallback_generator"]
    assert uif.execution_plan == ["NoSuchSkill", "OtherSkill"]
