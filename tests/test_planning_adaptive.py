"""Dynamic plan adjustment: skip what empty outputs would feed, let skills join on what a
run found, and re-plan around a failed skill (``continue_on_skill_failure``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sof_core import (
    UIF,
    BaseSkillModule,
    CoordinatorEngine,
    PlanValidationError,
    SOFConfig,
    hookimpl,
)
from sof_core.execution.batch import arun_batch, run_batch
from sof_core.testing import make_engine

PASSAGES: dict[str, list[dict[str, Any]]] = {"found": []}


class Retrieve(BaseSkillModule):
    skill_name = "Retrieve"
    skill_description = "returns the passages the test put in PASSAGES"
    required_inputs = ["input_query"]
    output_keys = [("memory_results", list)]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["memory_results"] = list(PASSAGES["found"])
        return uif


class Conflicts(BaseSkillModule):
    skill_name = "Conflicts"
    skill_description = "counts sources"
    required_inputs = [("memory_results", list)]
    output_keys = [("conflicts", list)]
    triggers: ClassVar[tuple[str, ...]] = (r"\bdisagree",)

    @staticmethod
    def planning_joins(data: Mapping[str, Any]) -> bool:
        return len({p["source"] for p in data.get("memory_results") or []}) > 1

    def execute(self, uif: UIF) -> UIF:
        sources = sorted({p["source"] for p in uif.intermediate_data["memory_results"]})
        uif.intermediate_data["conflicts"] = [{"sources": sources}]
        return uif


class Answer(BaseSkillModule):
    skill_name = "Answer"
    skill_description = "answers from what it got"
    required_inputs = ["input_query"]
    optional_inputs = ["memory_results", "conflicts", "calculation_result"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        data = uif.intermediate_data
        uif.final_response = (f"passages={len(data.get('memory_results') or [])} "
                              f"conflicts={data.get('conflicts')} "
                              f"result={data.get('calculation_result')}")
        return uif


class BrokenCalc(BaseSkillModule):
    skill_name = "BrokenCalc"
    skill_description = "the preferred calculator, down today"
    required_inputs = ["input_query"]
    output_keys = ["calculation_result"]
    triggers: ClassVar[tuple[str, ...]] = (r"\d\s*\+\s*\d",)

    def execute(self, uif: UIF) -> UIF:
        raise RuntimeError("calculator service unavailable")


class SpareCalc(BaseSkillModule):
    skill_name = "SpareCalc"
    skill_description = "a second calculator"
    required_inputs = ["input_query"]
    output_keys = ["calculation_result"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["calculation_result"] = 4
        return uif


def engine(*skills: type[BaseSkillModule], **config: Any) -> CoordinatorEngine:
    config.setdefault("default_plan", ["Retrieve", "Answer"])
    return make_engine(list(skills), total_timeout=None, **config)


@pytest.fixture(autouse=True)
def _no_passages() -> None:
    PASSAGES["found"] = []


def test_empty_retrieval_skips_what_only_it_feeds_and_says_why() -> None:
    report = engine(Retrieve, Conflicts, Answer).run_query("do the notes disagree?")
    assert report.planning["plan"] == ["Retrieve", "Conflicts", "Answer"]
    assert [r.skill for r in report.results] == ["Retrieve", "Answer"]
    assert report.final_response == "passages=0 conflicts=None result=None"
    (change,) = report.planning["changes"]
    assert change["action"] == "skipped" and change["skill"] == "Conflicts"
    assert "Retrieve produced no memory_results" in change["why"]
    assert report.status == "success"
    assert any(e.startswith("plan adjusted: skipped Conflicts") for e in report.uif.log_trace)


def test_with_passages_the_planned_skill_runs() -> None:
    PASSAGES["found"] = [{"source": "a", "text": "x"}]
    report = engine(Retrieve, Conflicts, Answer).run_query("do the notes disagree?")
    assert [r.skill for r in report.results] == ["Retrieve", "Conflicts", "Answer"]
    assert report.stages == [["Retrieve"], ["Conflicts"], ["Answer"]]


def test_conflict_detection_joins_when_passages_come_from_several_sources() -> None:
    PASSAGES["found"] = [{"source": "a", "text": "x"}, {"source": "b", "text": "y"}]
    report = engine(Retrieve, Conflicts, Answer).run_query("tell me about the launch")
    # the planning record says where it joined: the order and stages the run had
    assert report.planning["plan"] == ["Retrieve", "Conflicts", "Answer"] == report.plan
    assert report.planning["stages"] == [["Retrieve"], ["Conflicts"], ["Answer"]]
    assert report.stages == report.planning["stages"]
    assert [r.skill for r in report.results] == ["Retrieve", "Conflicts", "Answer"]
    assert report.final_response == "passages=2 conflicts=[{'sources': ['a', 'b']}] result=None"
    assert report.planning["changes"][0]["action"] == "added"


def test_passages_from_one_source_do_not_bring_conflict_detection() -> None:
    PASSAGES["found"] = [{"source": "a", "text": "x"}, {"source": "a", "text": "y"}]
    report = engine(Retrieve, Conflicts, Answer).run_query("tell me about the launch")
    assert [r.skill for r in report.results] == ["Retrieve", "Answer"]
    assert report.planning["changes"] == []


def test_a_failed_skill_is_replaced_by_another_producer_when_continuing() -> None:
    report = engine(BrokenCalc, SpareCalc, Answer, default_plan=["Answer"],
                    continue_on_skill_failure=True).run_query("what is 2 + 2")
    # the planning record lists the substitute where it belongs: before what reads its output
    assert report.planning["plan"] == ["BrokenCalc", "SpareCalc", "Answer"]
    # ... and in a stage after the failed skill's: it ran after it, never beside it
    assert report.planning["stages"] == [["BrokenCalc"], ["SpareCalc"], ["Answer"]]
    assert report.final_response == "passages=0 conflicts=None result=4"
    substituted = [c for c in report.planning["changes"] if c["action"] == "substituted"]
    assert substituted == [{"action": "substituted", "skill": "SpareCalc", "why":
                            "BrokenCalc failed (RuntimeError: calculator service "
                            "unavailable); SpareCalc produces calculation_result in its place"}]
    assert report.status == "partial"
    assert [r.skill for r in report.results] == ["BrokenCalc", "Answer", "SpareCalc", "Answer"]


def test_without_continue_on_skill_failure_there_is_no_substitution() -> None:
    report = engine(BrokenCalc, SpareCalc, Answer, default_plan=["Answer"]).run_query(
        "what is 2 + 2")
    assert report.status == "failure"
    assert "SpareCalc" not in [r.skill for r in report.results]


class BrokenFeed(BaseSkillModule):
    skill_name = "BrokenFeed"
    skill_description = "the preferred source of feed, down today"
    required_inputs = ["input_query"]
    output_keys = ["feed"]
    triggers: ClassVar[tuple[str, ...]] = (r"\bfeed\b",)

    def execute(self, uif: UIF) -> UIF:
        raise RuntimeError("feed service unavailable")


class SpareFeed(BaseSkillModule):
    skill_name = "SpareFeed"
    skill_description = "a second source of feed"
    required_inputs = ["input_query"]
    output_keys = ["feed"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["feed"] = "spare feed"
        return uif


class ReadFeed(BaseSkillModule):
    skill_name = "ReadFeed"
    skill_description = "answers from the feed, which it requires"
    required_inputs = ["feed"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = f"read: {uif.intermediate_data['feed']}"
        return uif


@pytest.mark.parametrize("on_loop", [False, True])
def test_a_failed_skill_whose_output_is_required_later_is_replaced_first(on_loop: bool) -> None:
    # The reader requires the key: run_query raised PlanValidationError ("no skill in the
    # plan produces it") instead of substituting or reporting.
    built = engine(BrokenFeed, SpareFeed, ReadFeed, default_plan=["ReadFeed"],
                   continue_on_skill_failure=True)
    report = (asyncio.run(built.arun_query("the feed please")) if on_loop
              else built.run_query("the feed please"))
    assert report.status == "partial"
    assert report.final_response == "read: spare feed"
    assert [(r.skill, r.status) for r in report.results] == [
        ("BrokenFeed", "failed"), ("SpareFeed", "success"), ("ReadFeed", "success")]
    (change,) = report.planning["changes"]
    assert change["action"] == "substituted" and change["skill"] == "SpareFeed"


@pytest.mark.parametrize("on_loop", [False, True])
def test_with_no_substitute_the_reader_is_skipped_as_one_run_skips_it(on_loop: bool) -> None:
    built = engine(BrokenFeed, ReadFeed, default_plan=["ReadFeed"],
                   continue_on_skill_failure=True)
    report = (asyncio.run(built.arun_query("the feed please")) if on_loop
              else built.run_query("the feed please"))
    whole = built.execute_plan(["BrokenFeed", "ReadFeed"], UIF(input_query="the feed please"))
    assert report.status == whole.status == "failure"
    assert [r.to_dict() | {"duration_ms": 0} for r in report.results] == \
        [r.to_dict() | {"duration_ms": 0} for r in whole.results]
    assert report.results[1].error_type == "SkillDependencyError"
    assert report.errors == whole.errors
    assert report.plan == whole.plan and report.stages == whole.stages


def test_installed_memory_and_conflict_plugins_adapt_to_what_memory_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sof_memory import MemoryDocument, SQLiteMemoryBackend

    path = tmp_path / "memory.db"
    monkeypatch.setenv("SOF_MEMORY_PATH", str(path))
    store = SQLiteMemoryBackend(path)
    store.add_many([
        MemoryDocument("The launch is on 3 May 2025.", source="plan.md"),
        MemoryDocument("The launch is on 9 June 2025.", source="email.txt"),
    ])
    store.close()
    installed = CoordinatorEngine(config=SOFConfig())
    report = installed.run_query("When is the launch?")
    assert [r.skill for r in report.results] == [
        "MemoryRetrievalSkill", "ConflictDetectorSkill", "ResponseGenerationSkill"]
    assert "conflicts" in report.uif.intermediate_data
    assert report.planning["changes"][0]["skill"] == "ConflictDetectorSkill"


class PlanWatcher:
    """Records the plan-level notifications, as a metrics or tracing observer sees them."""

    def __init__(self) -> None:
        self.before: list[list[str]] = []
        self.after: list[Any] = []
        self.skills: list[str] = []
        self.planning_seen: list[tuple[Any, Any]] = []

    @hookimpl
    def sof_before_plan(self, plan: list[str], uif: UIF) -> None:
        self.before.append(list(plan))

    @hookimpl
    def sof_after_skill(self, skill: Any, result: Any) -> None:
        self.skills.append(skill.name)

    @hookimpl
    def sof_after_plan(self, report: Any) -> None:
        self.after.append(report)
        # What it says when told (the report is final then: a metrics observer reads it
        # at once, not after run_query returns).
        self.planning_seen.append((report.planning, report.timings.get("planning")))


def watched(*skills: type[BaseSkillModule], **config: Any) -> tuple[CoordinatorEngine,
                                                                    PlanWatcher]:
    built = engine(*skills, **config)
    watcher = PlanWatcher()
    built.plugins.register(watcher, name="watcher")
    return built, watcher


def test_a_query_run_in_segments_is_one_plan_to_observers() -> None:
    """Retrieve runs first (Conflicts needs its output), then the rest: two engine runs,
    one sof_before_plan with the whole plan, one sof_after_plan with the merged report."""
    PASSAGES["found"] = [{"source": "a", "text": "x"}]
    built, watcher = watched(Retrieve, Conflicts, Answer)
    report = built.run_query("do the notes disagree?")
    assert [r.skill for r in report.results] == ["Retrieve", "Conflicts", "Answer"]
    assert watcher.before == [["Retrieve", "Conflicts", "Answer"]]
    assert len(watcher.after) == 1
    told = watcher.after[0]
    assert [r.skill for r in told.results] == ["Retrieve", "Conflicts", "Answer"]
    assert told.status == "success" and told.uif is report.uif
    assert watcher.skills == ["Retrieve", "Conflicts", "Answer"]  # per skill, as before
    # The same engine's plain runs are still one notification each.
    built.execute_plan(["Retrieve", "Answer"], UIF(input_query="q"))
    assert len(watcher.before) == len(watcher.after) == 2


@pytest.mark.parametrize("asynchronous", [False, True])
def test_observers_are_told_how_the_query_was_planned(asynchronous: bool) -> None:
    # sof_after_plan got the report of run_query / arun_query with planning None (it was
    # set after observers were told): the monitor never counted planner choices, planner
    # fallbacks or plan-cache lookups for a host calling the engine directly.
    PASSAGES["found"] = [{"source": "a", "text": "x"}]
    built, watcher = watched(Retrieve, Conflicts, Answer)
    query = "do the notes disagree?"
    report = (asyncio.run(built.arun_query(query)) if asynchronous
              else built.run_query(query))
    ((planning, planning_time),) = watcher.planning_seen
    assert planning is not None and planning == report.planning
    assert planning["planner"] == "rules"
    assert planning_time == report.timings["planning"]


def test_a_re_planned_query_is_one_plan_to_observers() -> None:
    built, watcher = watched(BrokenCalc, SpareCalc, Answer, default_plan=["Answer"],
                             continue_on_skill_failure=True)
    report = built.run_query("what is 2 + 2")
    assert [r.skill for r in report.results] == ["BrokenCalc", "Answer", "SpareCalc", "Answer"]
    assert len(watcher.before) == 1 and len(watcher.after) == 1
    assert watcher.after[0].status == "partial"
    assert "plan adjusted: substituted SpareCalc" in " ".join(watcher.after[0].uif.log_trace)


def test_runs_a_skill_starts_inside_a_segment_are_plans_of_their_own() -> None:
    """A skill that runs a plan of its own (inline, in the query's thread) is observed as
    its own plan, not swallowed by the segmented query around it."""

    class Nested(BaseSkillModule):
        skill_name = "Nested"
        skill_description = "runs a sub-plan on the same engine"
        required_inputs = [("memory_results", list)]
        output_keys = [("conflicts", list)]
        inner: ClassVar[list[CoordinatorEngine]] = []

        def execute(self, uif: UIF) -> UIF:
            self.inner[0].execute_plan(["Answer"], UIF(input_query="inner"))
            uif.intermediate_data["conflicts"] = []
            return uif

    PASSAGES["found"] = [{"source": "a", "text": "x"}]
    built, watcher = watched(Retrieve, Nested, Answer, skill_timeout=None,
                             default_plan=["Retrieve", "Nested", "Answer"])
    Nested.inner.append(built)
    report = built.run_query("q")
    assert report.status == "success", report.errors
    assert watcher.before == [["Retrieve", "Nested", "Answer"], ["Answer"]]
    assert [len(r.results) for r in watcher.after] == [1, 3]  # the inner run ends first


def test_segmented_plan_for_a_host_running_a_plan_in_parts() -> None:
    built, watcher = watched(Retrieve, Answer)
    uif = UIF(input_query="q")
    with built.segmented_plan(["Retrieve", "Answer"]) as finish:
        built.execute_plan(["Retrieve"], uif)
        second = built.execute_plan(["Answer"], uif)
        assert watcher.before == [["Retrieve", "Answer"]] and watcher.after == []
        finish(second)
        finish(second)  # once only
    assert watcher.after == [second]
    built.execute_plan(["Retrieve"], UIF(input_query="q"))  # outside: plain again
    assert len(watcher.before) == len(watcher.after) == 2


def test_ctrl_c_in_a_segment_ends_the_observed_plan_with_that_segment() -> None:
    class Interrupted(BaseSkillModule):
        skill_name = "Interrupted"
        skill_description = "Ctrl-C while retrieving"
        required_inputs = ["input_query"]
        output_keys = [("memory_results", list)]

        def execute(self, uif: UIF) -> UIF:
            raise KeyboardInterrupt

    built, watcher = watched(Interrupted, Conflicts, Answer,
                             default_plan=["Interrupted", "Conflicts", "Answer"])
    with pytest.raises(KeyboardInterrupt):
        built.run_query("do the notes disagree?")
    assert len(watcher.before) == 1 and len(watcher.after) == 1
    (told,) = watcher.after
    assert [(r.skill, r.error_type) for r in told.results] == [
        ("Interrupted", "KeyboardInterrupt")]


def test_ctrl_c_in_a_later_segment_tells_observers_the_whole_query_so_far() -> None:
    """Before: sof_after_plan got only the interrupted segment's report, so a trace or a
    metrics observer lost the skills the earlier segments ran."""

    class InterruptedConflicts(Conflicts):
        skill_name = "InterruptedConflicts"

        def execute(self, uif: UIF) -> UIF:
            raise KeyboardInterrupt

    PASSAGES["found"] = [{"source": "a", "text": "x"}]
    built, watcher = watched(Retrieve, InterruptedConflicts, Answer,
                             default_plan=["Retrieve", "InterruptedConflicts", "Answer"])
    with pytest.raises(KeyboardInterrupt):
        built.run_query("do the notes disagree?")
    (told,) = watcher.after
    assert [(r.skill, r.status) for r in told.results] == [
        ("Retrieve", "success"), ("InterruptedConflicts", "failed"), ("Answer", "skipped")]
    assert told.results[-1].error == (
        "not run: the run stopped when 'InterruptedConflicts' raised KeyboardInterrupt")
    assert told.status == "failure"
    assert told.plan == ["Retrieve", "InterruptedConflicts", "Answer"]


def test_an_error_after_two_segments_tells_observers_both() -> None:
    built, watcher = watched(Retrieve, Answer)
    uif = UIF(input_query="q")
    with pytest.raises(LookupError), built.segmented_plan(["Retrieve", "Answer"]):
        built.execute_plan(["Retrieve"], uif)
        built.execute_plan(["Answer"], uif)
        raise LookupError("the host broke")
    (told,) = watcher.after
    assert [r.skill for r in told.results] == ["Retrieve", "Answer"]
    assert [r.stage for r in told.results] == [0, 1]
    assert told.status == "failure"
    assert told.errors[-1] == "the query ended by LookupError: the host broke"


def test_an_error_between_segments_still_ends_the_observed_plan() -> None:
    """Every sof_before_plan gets its sof_after_plan: a host's own error (or a later
    segment's invalid plan) after the first segment ends the plan for observers with the
    segments' reports merged, marked failure and naming the error, then propagates."""
    built, watcher = watched(Retrieve, Answer)
    uif = UIF(input_query="q")
    with pytest.raises(RuntimeError, match="the host broke"), \
            built.segmented_plan(["Retrieve", "Answer"]):
        first = built.execute_plan(["Retrieve"], uif)
        raise RuntimeError("the host broke")
    assert len(watcher.before) == len(watcher.after) == 1
    (told,) = watcher.after
    assert told.status == "failure" and told.plan == ["Retrieve", "Answer"]
    assert [r.skill for r in told.results] == ["Retrieve"]
    assert told.errors[-1] == "the query ended by RuntimeError: the host broke"
    assert first.status == "success" and first.errors == []  # the segment's report is kept
    with pytest.raises(PlanValidationError), built.segmented_plan(["Retrieve", "Nope"]):
        built.execute_plan(["Retrieve"], UIF(input_query="q"))
        built.execute_plan(["Nope"], UIF(input_query="q"))  # an invalid later segment
    assert len(watcher.before) == len(watcher.after) == 2
    assert "PlanValidationError" in watcher.after[1].errors[-1]
    with pytest.raises(RuntimeError), built.segmented_plan(["Retrieve"]):
        raise RuntimeError("before any run")  # nothing began: nothing to end
    assert len(watcher.before) == len(watcher.after) == 2


class SlowRetrieve(Retrieve):
    skill_name = "SlowRetrieve"
    pause: ClassVar[float] = 0.5

    def execute(self, uif: UIF) -> UIF:
        time.sleep(self.pause)
        return super().execute(uif)


class SlowConflicts(Conflicts):
    skill_name = "SlowConflicts"
    pause: ClassVar[float] = 0.9

    def execute(self, uif: UIF) -> UIF:
        time.sleep(self.pause)
        return super().execute(uif)


def test_total_timeout_bounds_the_whole_query_not_each_segment() -> None:
    """The producer runs as its own segment (0.5 s), then the rest: the query's 1 s
    total_timeout ends the second segment at 1 s from the query's start, not 1 s from the
    segment's (it ran 1.4 s and was reported a success)."""
    PASSAGES["found"] = [{"source": "a", "text": "x"}]
    built = make_engine([SlowRetrieve, SlowConflicts, Answer], total_timeout=1.0,
                        skill_timeout=None,
                        default_plan=["SlowRetrieve", "SlowConflicts", "Answer"])
    started = time.monotonic()
    report = built.run_query("do the notes disagree?")
    elapsed = time.monotonic() - started
    outcomes = {r.skill: r.status for r in report.results}
    assert outcomes["SlowRetrieve"] == "success"
    assert outcomes["SlowConflicts"] == "timeout"
    assert report.status == "timeout"
    assert any("total_timeout of 1.0s" in e for e in report.errors)
    assert elapsed < 1.35  # a hang bound: the second segment did not get a second 1 s


# --- the same on an event loop: arun_query, arun_batch -------------------------------------


def _summary(report: Any) -> tuple[Any, ...]:
    return (report.status, [(r.skill, r.status) for r in report.results],
            report.final_response, report.planning["plan"], report.planning["changes"],
            [e for e in report.uif.log_trace if e.startswith("plan adjusted")])


@pytest.mark.parametrize(("found", "config"), [
    ([], {}),  # empty retrieval: Conflicts skipped
    ([{"source": "a", "text": "x"}, {"source": "b", "text": "y"}], {}),  # Conflicts joins
    ([{"source": "a", "text": "x"}], {"default_plan": ["Answer"],  # BrokenCalc re-planned
                                      "continue_on_skill_failure": True}),
])
def test_arun_query_adjusts_the_plan_as_run_query_does(found: list[Any],
                                                       config: dict[str, Any]) -> None:
    """Before: async hosts had aexecute_plan only, and arun_batch ran the planner's plan
    unadjusted: the same query got another plan, and another answer, on an event loop."""
    PASSAGES["found"] = found
    skills = (Retrieve, Conflicts, BrokenCalc, SpareCalc, Answer)
    query = "do the notes disagree? what is 2 + 2"
    expected = _summary(engine(*skills, **config).run_query(query))
    got = asyncio.run(engine(*skills, **config).arun_query(query))
    assert _summary(got) == expected
    assert "planning" in got.timings


def test_an_async_query_run_in_segments_is_one_plan_to_observers() -> None:
    PASSAGES["found"] = [{"source": "a", "text": "x"}]
    built, watcher = watched(Retrieve, Conflicts, Answer)
    report = asyncio.run(built.arun_query("do the notes disagree?"))
    assert [r.skill for r in report.results] == ["Retrieve", "Conflicts", "Answer"]
    assert watcher.before == [["Retrieve", "Conflicts", "Answer"]]
    assert len(watcher.after) == 1 and watcher.after[0].status == "success"
    assert [r.skill for r in watcher.after[0].results] == ["Retrieve", "Conflicts", "Answer"]


def test_an_async_segmented_query_on_a_hosted_executor_is_one_plan_too() -> None:
    """An executor that cannot walk a plan on a loop runs each segment in a runner thread:
    the segmented plan goes with it (the caller's context), so observers still see one."""

    class Hosted:
        name = "hosted"
        concurrent = False

        def run_stage(self, run: Any, steps: Any) -> list[Any]:
            return [run.call_inline(step) for step in steps]

    class Plugin:
        @hookimpl
        def sof_register_executors(self) -> list[Any]:
            return [Hosted()]

    PASSAGES["found"] = [{"source": "a", "text": "x"}]
    built, watcher = watched(Retrieve, Conflicts, Answer, plugins=[("hosted", Plugin())],
                             executor="hosted")
    report = asyncio.run(built.arun_query("do the notes disagree?"))
    assert report.status == "success", report.errors
    assert [r.skill for r in report.results] == ["Retrieve", "Conflicts", "Answer"]
    assert watcher.before == [["Retrieve", "Conflicts", "Answer"]]
    assert len(watcher.after) == 1


def test_an_async_query_error_between_segments_still_ends_the_observed_plan() -> None:
    PASSAGES["found"] = [{"source": "a", "text": "x"}]
    built, watcher = watched(Retrieve, Conflicts, Answer)

    async def main() -> None:
        async with built.asegmented_plan(["Retrieve", "Answer"]):
            await built.aexecute_plan(["Retrieve"], UIF(input_query="q"))
            raise LookupError("host gave up")

    with pytest.raises(LookupError):
        asyncio.run(main())
    assert watcher.before == [["Retrieve", "Answer"]]
    (told,) = watcher.after
    assert told.status == "failure"
    assert "the query ended by LookupError: host gave up" in told.errors


def test_total_timeout_bounds_the_whole_async_query() -> None:
    PASSAGES["found"] = [{"source": "a", "text": "x"}]
    built = make_engine([SlowRetrieve, SlowConflicts, Answer], total_timeout=1.0,
                        skill_timeout=None,
                        default_plan=["SlowRetrieve", "SlowConflicts", "Answer"])
    started = time.monotonic()
    report = asyncio.run(built.arun_query("do the notes disagree?"))
    elapsed = time.monotonic() - started
    outcomes = {r.skill: r.status for r in report.results}
    assert outcomes["SlowRetrieve"] == "success"
    assert outcomes["SlowConflicts"] == "timeout"
    assert report.status == "timeout"
    assert elapsed < 1.35  # a hang bound: the second segment did not get a second 1 s


def test_arun_batch_gives_each_query_run_batchs_adjusted_plan() -> None:
    PASSAGES["found"] = [{"source": "a", "text": "x"}, {"source": "b", "text": "y"}]
    queries = ["tell me about the launch", "and the budget?"]
    sync = run_batch(engine(Retrieve, Conflicts, Answer), queries)
    async_ = asyncio.run(arun_batch(engine(Retrieve, Conflicts, Answer), queries))
    for one, other in zip(sync.items, async_.items, strict=True):
        assert other.report is not None and one.report is not None
        assert _summary(other.report) == _summary(one.report)
        assert other.plan == one.plan
        assert [r.skill for r in other.report.results] == ["Retrieve", "Conflicts", "Answer"]


# --- a query run in parts reports what one run of the whole plan reports ----------------------


def _chain_skill(name: str, required: tuple[str, ...], output: str, *, fail: bool = False,
                 sleep: float = 0.0) -> type[BaseSkillModule]:
    def execute(self: Any, uif: UIF) -> UIF:
        time.sleep(sleep)
        if fail:
            raise RuntimeError(f"{name} is down")
        if output == "final_response":
            uif.final_response = f"{name} answered"
        else:
            uif.intermediate_data[output] = f"{name} wrote {output}"
        return uif

    return type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": name, "required_inputs": list(required),
        "output_keys": [output], "execute": execute})


def _chain(**config: Any) -> tuple[CoordinatorEngine, list[type[BaseSkillModule]]]:
    """A writes a, C requires a and writes c, R requires c and answers."""
    a_fails = config.pop("a_fails", False)
    sleeps = config.pop("sleeps", (0.0, 0.0))
    skills = [_chain_skill("A", ("input_query",), "a", fail=a_fails, sleep=sleeps[0]),
              _chain_skill("C", ("a",), "c", sleep=sleeps[1]),
              _chain_skill("R", ("c",), "final_response")]
    return make_engine(skills, default_plan=["A", "C", "R"], planner="static",
                       **config), skills


def _as_one_run(report: Any) -> list[tuple[str, str, str | None, str | None]]:
    return [(r.skill, r.status, r.error_type, r.error) for r in report.results]


@pytest.mark.parametrize("on_loop", [False, True])
def test_a_query_stopped_by_a_failure_reports_every_planned_skill(on_loop: bool) -> None:
    # R was missing from the report (and from its plan): the query stopped after its first
    # part and only that part was reported.
    built, _ = _chain(a_fails=True, total_timeout=None)
    report = asyncio.run(built.arun_query("q")) if on_loop else built.run_query("q")
    whole = built.execute_plan(["A", "C", "R"], UIF(input_query="q"))
    assert _as_one_run(report) == _as_one_run(whole)
    assert report.results[-1].error_type == "SkillNotRunError"
    assert (report.status, report.plan, report.errors) == (whole.status, whole.plan,
                                                             whole.errors)


@pytest.mark.parametrize("continuing", [False, True])
def test_a_query_past_its_total_timeout_reports_the_rest_as_one_run_does(
        continuing: bool) -> None:
    # R was missing (continue off), or skipped as if C had failed to write c (continue on),
    # where one run reports it skipped with RunTimeoutError.
    built, _ = _chain(sleeps=(0.2, 1.5), total_timeout=1.0, skill_timeout=None,
                      continue_on_skill_failure=continuing)
    report = built.run_query("q")
    assert [(r.skill, r.status, r.error_type) for r in report.results] == [
        ("A", "success", None), ("C", "timeout", "RunTimeoutError"),
        ("R", "skipped", "RunTimeoutError")]
    assert report.status == "timeout"
    assert report.results[-1].error == "run exceeded total_timeout of 1.0s"


def test_a_second_substitute_brings_every_skill_downstream_of_it_again() -> None:
    # The first substitute failed too; the second wrote a and C ran again, but R (which
    # reads C's output, not a) stayed skipped and the query had no answer.
    spare1 = _chain_skill("Spare1", ("input_query",), "a", fail=True)
    spare2 = _chain_skill("Spare2", ("input_query",), "a")
    built, _ = _chain(a_fails=True, total_timeout=None, continue_on_skill_failure=True)
    built.register_skills([spare1, spare2], plugin_name="spares")
    report = built.run_query("q")
    assert report.final_response == "R answered"
    assert report.status == "partial"
    assert [c["skill"] for c in report.planning["changes"]] == ["Spare1", "Spare2"]
    # the "missing input" lines of skills that ran once the input came are gone
    assert not any("SkillDependencyError" in e for e in report.errors), report.errors


# --- a joiner whose output a skill of the first part reads -----------------------------------


class Summarise(BaseSkillModule):
    """Reads what the joiner (Conflicts) writes, and is itself required by Answer2."""

    skill_name = "Summarise"
    skill_description = "summarises the passages, noting conflicts when there are any"
    required_inputs = ["input_query"]
    optional_inputs = ["conflicts"]
    output_keys = ["summary"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["summary"] = f"conflicts={uif.intermediate_data.get('conflicts')}"
        return uif


class Answer2(BaseSkillModule):
    skill_name = "Answer2"
    skill_description = "answers from the summary"
    required_inputs = [("summary", str)]
    optional_inputs = ["memory_results"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = uif.intermediate_data["summary"]
        return uif


@pytest.mark.parametrize("on_loop", [False, True])
def test_a_joiner_is_asked_before_a_skill_of_the_first_part_that_reads_it(
        on_loop: bool) -> None:
    # Summarise was in the first part (Answer2 requires its output) and ran beside Retrieve
    # before Conflicts' planning_joins was ever asked: the conflicts never reached it.
    PASSAGES["found"] = [{"source": "a", "text": "x"}, {"source": "b", "text": "y"}]
    built = engine(Retrieve, Conflicts, Summarise, Answer2,
                   default_plan=["Retrieve", "Summarise", "Answer2"])
    parts: list[list[str]] = []
    if not on_loop:  # the engine runs it is made of, each decision made where it falls
        run_part = built.execute_plan

        def counted(plan: list[str], uif: UIF, **kwargs: Any) -> Any:
            parts.append(list(plan))
            return run_part(plan, uif, **kwargs)

        built.execute_plan = counted  # type: ignore[method-assign]
    report = (asyncio.run(built.arun_query("tell me about the launch")) if on_loop
              else built.run_query("tell me about the launch"))
    if not on_loop:
        assert parts == [["Retrieve"], ["Conflicts", "Summarise"], ["Answer2"]]
    assert report.final_response == "conflicts=[{'sources': ['a', 'b']}]"
    assert [r.skill for r in report.results] == ["Retrieve", "Conflicts", "Summarise",
                                                 "Answer2"]
    assert report.planning["plan"] == ["Retrieve", "Conflicts", "Summarise", "Answer2"]
    assert [c["action"] for c in report.planning["changes"]] == ["added"]
    assert report.status == "success"


def test_a_joiner_saying_no_leaves_the_first_part_as_planned() -> None:
    PASSAGES["found"] = [{"source": "a", "text": "x"}]
    built = engine(Retrieve, Conflicts, Summarise, Answer2,
                   default_plan=["Retrieve", "Summarise", "Answer2"])
    report = built.run_query("tell me about the launch")
    assert report.final_response == "conflicts=None"
    assert [r.skill for r in report.results] == ["Retrieve", "Summarise", "Answer2"]
    assert report.planning["changes"] == []


def test_a_part_stopped_by_a_failure_after_a_joiner_decision_reports_the_rest() -> None:
    # three parts now (Retrieve; Conflicts and Summarise; Answer2): a failure in the second
    # still reports the third as one run of the whole plan would
    PASSAGES["found"] = [{"source": "a", "text": "x"}, {"source": "b", "text": "y"}]

    class BrokenSummary(Summarise):
        def execute(self, uif: UIF) -> UIF:
            raise RuntimeError("summariser down")

    built = engine(Retrieve, Conflicts, BrokenSummary, Answer2,
                   default_plan=["Retrieve", "Summarise", "Answer2"])
    report = built.run_query("tell me about the launch")
    assert [(r.skill, r.status, r.error_type) for r in report.results] == [
        ("Retrieve", "success", None), ("Conflicts", "success", None),
        ("Summarise", "failed", "RuntimeError"),
        ("Answer2", "skipped", "SkillNotRunError")]
    whole = built.execute_plan(report.plan, UIF(input_query="q"))
    assert _as_one_run(report) == _as_one_run(whole)
    assert (report.status, report.errors, report.stages) == (whole.status, whole.errors,
                                                             whole.stages)
