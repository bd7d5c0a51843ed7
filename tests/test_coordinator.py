"""The coordinator runs a plan in dependency order, concurrently where allowed, and reports
every failure, timeout and undeclared access by skill name instead of crashing."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from sof_core import UIF, PlanValidationError, UIFStatus
from sof_core.testing import make_engine


def hang_until(event: threading.Event) -> Any:
    def body(uif: Any) -> None:
        event.wait(30)

    return body


def run(engine: Any, plan: list[str], query: str = "q", **data: Any) -> Any:
    return engine.execute_plan(plan, UIF(input_query=query, intermediate_data=data))


def test_plan_order_is_a_hint_the_graph_decides(make_skill: Any) -> None:
    order: list[str] = []

    def record(name: str, key: str) -> Any:
        def body(uif: Any) -> None:
            order.append(name)
            uif.intermediate_data[key] = name

        return body

    a = make_skill("A", ["input_query"], ["a"], body=record("A", "a"))
    b = make_skill("B", ["a"], ["b"], body=record("B", "b"))
    c = make_skill("C", ["b"], ["final_response"], body=lambda u: setattr(u, "final_response", "done"))
    engine = make_engine([a, b, c])
    report = run(engine, ["C", "B", "A"])
    assert report.status == "success", report.errors
    assert order == ["A", "B"]
    assert report.stages == [["A"], ["B"], ["C"]]
    assert report.final_response == "done"
    assert report.uif.status is UIFStatus.SUCCESS
    assert report.uif.executed_skills == ["A", "B", "C"]
    assert set(report.uif.skill_timings) == {"A", "B", "C"}
    assert report.uif.start_time is not None and report.uif.end_time >= report.uif.start_time


@pytest.mark.parametrize("executor", ["threads", "asyncio"])
def test_independent_skills_really_run_concurrently(make_skill: Any, executor: str) -> None:
    # Both skills wait on one barrier: it only opens if they run at the same time.
    barrier = threading.Barrier(2, timeout=10)

    def meet(key: str) -> Any:
        def body(uif: Any) -> None:
            barrier.wait()
            uif.intermediate_data[key] = True

        return body

    left = make_skill("Left", ["input_query"], ["left"], body=meet("left"))
    right = make_skill("Right", ["input_query"], ["right"], body=meet("right"))
    join = make_skill("Join", ["left", "right"], ["joined"])
    engine = make_engine([left, right, join], executor=executor)
    report = run(engine, ["Left", "Right", "Join"])
    assert report.status == "success", report.errors
    assert report.stages == [["Left", "Right"], ["Join"]]


def test_async_skills_are_first_class(make_skill: Any) -> None:
    class Fetch(make_skill("Fetch", ["input_query"], ["page"])):  # type: ignore[misc]
        skill_name = "AsyncFetch"

        async def execute(self, uif: UIF) -> UIF:
            await asyncio.sleep(0)
            uif.intermediate_data["page"] = f"<{uif.input_query}>"
            return uif

    use = make_skill("Use", ["page"], ["final_response"],
                     body=lambda u: setattr(u, "final_response", u.intermediate_data["page"]))
    for executor in ("sequential", "threads", "asyncio"):
        report = run(make_engine([Fetch, use], executor=executor), ["AsyncFetch", "Use"], "hi")
        assert report.status == "success", (executor, report.errors)
        assert report.final_response == "<hi>"


def test_skill_sees_only_declared_inputs(make_skill: Any) -> None:
    def peek(uif: Any) -> None:
        uif.intermediate_data["secret"]

    producer = make_skill("Producer", ["input_query"], ["public", "secret"])
    nosy = make_skill("Nosy", ["public"], ["out"], body=peek)
    report = run(make_engine([producer, nosy]), ["Producer", "Nosy"])
    result = report.result("Nosy")
    assert result.status == "failed" and result.error_type == "UndeclaredReadError"
    assert "'secret'" in result.error and "required_inputs" in result.error


def test_undeclared_write_is_an_error_naming_the_key(make_skill: Any) -> None:
    sneaky = make_skill("Sneaky", ["input_query"], ["mine"],
                        body=lambda u: u.intermediate_data.__setitem__("yours", 1))
    report = run(make_engine([sneaky]), ["Sneaky"])
    result = report.result("Sneaky")
    assert result.status == "failed" and result.error_type == "UndeclaredWriteError"
    assert "'yours'" in result.error
    assert "yours" not in report.uif.intermediate_data
    field_writer = make_skill("FieldWriter", ["input_query"], ["x"],
                              body=lambda u: setattr(u, "final_response", "hijack"))
    report = run(make_engine([field_writer]), ["FieldWriter"])
    assert report.result("FieldWriter").error_type == "UndeclaredWriteError"
    assert report.final_response is None


def test_outputs_merge_in_plan_order_whatever_finishes_first(make_skill: Any) -> None:
    gate = threading.Event()

    def slow(uif: Any) -> None:
        gate.wait(5)
        uif.add_log_entry("slow done")
        uif.intermediate_data["s"] = 1

    def fast(uif: Any) -> None:
        uif.add_log_entry("fast done")
        uif.intermediate_data["f"] = 1
        gate.set()

    engine = make_engine([
        make_skill("Slow", ["input_query"], ["s"], body=slow),
        make_skill("Fast", ["input_query"], ["f"], body=fast),
    ])
    report = run(engine, ["Slow", "Fast"])
    assert report.uif.log_trace == ["slow done", "fast done"]
    assert [r.skill for r in report.results] == ["Slow", "Fast"]


def test_hung_skill_times_out_and_the_run_goes_on(make_skill: Any) -> None:
    release = threading.Event()
    hang = make_skill("Hang", ["input_query"], ["h"], body=hang_until(release),
                      max_execution_time=0.2)
    after = make_skill("After", ["input_query"], ["a"])
    try:
        engine = make_engine([hang, after], continue_on_skill_failure=True, executor="sequential")
        report = run(engine, ["Hang", "After"])
        assert report.result("Hang").status == "timeout"
        assert report.result("Hang").error_type == "SkillTimeoutError"
        assert report.result("After").status == "success"
        assert report.status == "partial"
        stop = make_engine([hang, after], executor="sequential")
        report = run(stop, ["Hang", "After"])
        assert report.status == "timeout"
        assert "After" not in report.uif.intermediate_data.get("a", "")
    finally:
        release.set()


def test_hung_skill_in_a_concurrent_stage_times_out(make_skill: Any) -> None:
    release = threading.Event()
    hang = make_skill("Hang2", ["input_query"], ["h"], body=hang_until(release),
                      max_execution_time=0.2)
    ok = make_skill("Ok2", ["input_query"], ["o"])
    try:
        report = run(make_engine([hang, ok], continue_on_skill_failure=True), ["Hang2", "Ok2"])
        assert report.result("Hang2").status == "timeout"
        assert report.result("Ok2").status == "success"
    finally:
        release.set()


def test_total_timeout_bounds_the_whole_run(make_skill: Any) -> None:
    release = threading.Event()
    hang = make_skill("Forever", ["input_query"], ["f"], body=hang_until(release))
    after = make_skill("Later", ["f"], ["l"])
    try:
        report = run(make_engine([hang, after], total_timeout=0.3), ["Forever", "Later"])
        assert report.status == "timeout"
        assert report.result("Forever").status == "timeout"
        assert report.result("Later").status == "skipped"
        assert report.errors == ["run exceeded total_timeout of 0.3s while Forever was running"]
        assert report.uif.error_details == "Forever: run exceeded total_timeout of 0.3s"
        assert report.uif.status is UIFStatus.TIMEOUT
    finally:
        release.set()


def test_a_step_cut_by_the_total_timeout_reports_the_time_it_ran(make_skill: Any) -> None:
    # Before, a step that had started and was cut by total_timeout said it ran 0.0 s in 0
    # attempts, as if it had never started. Every path: the runner's own step, a wide
    # stage's pool step, an async step on the run's loop, and a run on the caller's loop.
    # The time it ran is measured against when it really began (on a loaded machine a
    # step may start well after its run did).
    release = threading.Event()
    began: dict[str, float] = {}

    def hang_as(name: str) -> Any:
        def body(uif: Any) -> None:
            began[name] = time.perf_counter()
            release.wait(30)

        return body

    async def await_release(self: Any, uif: Any) -> Any:
        began["CutAsync"] = time.perf_counter()
        await asyncio.sleep(5)
        return uif

    skills = [
        make_skill("Cut", ["input_query"], ["c"], body=hang_as("Cut")),
        make_skill("CutToo", ["input_query"], ["c2"], body=hang_as("CutToo")),
        make_skill("CutAsync", ["input_query"], ["c3"], execute=await_release),
    ]
    # (each plan leaves its calls hung: not quarantined here, so that every plan runs them)
    engine = make_engine(skills, total_timeout=0.3, max_hung_calls_per_skill=100)
    calls = (lambda plan: run(engine, plan),
             lambda plan: asyncio.run(engine.aexecute_plan(plan, UIF(input_query="q"))))
    try:
        for plan in (["Cut"], ["Cut", "CutToo"], ["Cut", "CutAsync"]):
            for call in calls:
                began.clear()
                started = time.perf_counter()
                report = call(plan)
                assert report.status == "timeout"
                assert report.errors[-1] == (  # the line names what the run waited for
                    f"run exceeded total_timeout of 0.3s while {', '.join(plan)} "
                    f"{'was' if len(plan) == 1 else 'were'} running")
                for name in plan:
                    result = report.result(name)
                    assert result.status == "timeout", (plan, result)
                    assert result.attempts == 1, (plan, result)
                    # from when it began to the run's deadline (0.3 s after the run began)
                    ran_at_least = started + 0.3 - began[name]
                    assert 0 < result.duration < 2.0, (plan, result)
                    assert result.duration > ran_at_least - 0.05, (plan, result, ran_at_least)
    finally:
        release.set()


def test_retries_recover_from_transient_failures(make_skill: Any) -> None:
    calls = {"n": 0}

    def flaky(uif: Any) -> None:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("try again")
        uif.intermediate_data["v"] = calls["n"]

    engine = make_engine([make_skill("Flaky", ["input_query"], ["v"], body=flaky)], skill_retries=2)
    report = run(engine, ["Flaky"])
    assert report.status == "success"
    assert report.result("Flaky").attempts == 3
    calls["n"] = -10
    report = run(engine, ["Flaky"])
    assert report.status == "failure" and report.result("Flaky").attempts == 3
    assert "ConnectionError" in report.errors[0]


def test_failure_stops_the_run_unless_continue_is_set(make_skill: Any) -> None:
    def boom(uif: Any) -> None:
        raise ValueError("bad data")

    skills = [
        make_skill("Boom", ["input_query"], ["b"], body=boom),
        make_skill("NeedsB", ["b"], ["n"]),
        make_skill("Independent", ["input_query"], ["i"]),
    ]
    report = run(make_engine(skills), ["Boom", "NeedsB", "Independent"])
    assert report.status == "failure"
    assert report.failed_skills == ["Boom", "NeedsB"]  # Independent ran beside Boom
    assert "Boom: ValueError: bad data" in report.errors[0]
    assert report.uif.error_details == "Boom: bad data"
    report = run(make_engine(skills, continue_on_skill_failure=True), ["Boom", "NeedsB", "Independent"])
    assert report.status == "partial"
    assert report.result("Independent").status == "success"
    skipped = report.result("NeedsB")
    assert skipped.status == "skipped" and "'b'" in skipped.error and "'Boom'" in skipped.error


@pytest.mark.parametrize("executor", ["threads", "sequential", "asyncio"])
def test_a_stopped_run_reports_every_planned_skill(make_skill: Any, executor: str) -> None:
    """Before: the skills after a failure were missing from ``report.results`` although
    the docs promise one result per skill; they are ``skipped`` with ``SkillNotRunError``
    (in ``failed_skills``; ``errors`` names only the failure that stopped the run)."""

    def boom(uif: Any) -> None:
        raise ValueError("bad data")

    skills = [
        make_skill("Boom", ["input_query"], ["b"], body=boom),
        make_skill("NeedsB", ["b"], ["n"]),
        make_skill("Last", ["n"], ["l"]),
    ]
    report = make_engine(skills).execute_plan(["Boom", "NeedsB", "Last"], UIF(input_query="q"),
                                              executor=executor)
    assert [(r.skill, r.status, r.error_type, r.stage) for r in report.results] == [
        ("Boom", "failed", "ValueError", 0),
        ("NeedsB", "skipped", "SkillNotRunError", 1),
        ("Last", "skipped", "SkillNotRunError", 2),
    ]
    assert report.result("Last").error == (
        "not run: the run stopped when 'Boom' failed (continue_on_skill_failure is off)")
    assert report.failed_skills == ["Boom", "NeedsB", "Last"]  # as SAM counts them
    assert report.errors == ["Boom: ValueError: bad data"]
    assert report.status == "failure"


def test_set_error_inside_a_skill_fails_that_skill(make_skill: Any) -> None:
    def refuse(uif: Any) -> None:
        uif.set_error("quota exceeded", "Refuse")

    report = run(make_engine([make_skill("Refuse", ["input_query"], ["r"], body=refuse)]), ["Refuse"])
    assert report.status == "failure"
    assert "quota exceeded" in report.result("Refuse").error


def test_invalid_plan_raises_before_any_skill_runs(make_skill: Any) -> None:
    ran: list[str] = []
    a = make_skill("A1", ["missing_key"], ["x"], body=lambda u: ran.append("A1"))
    with pytest.raises(PlanValidationError) as info:
        run(make_engine([a]), ["A1", "Ghost"])
    codes = sorted(p.code for p in info.value.problems)
    assert codes == ["missing_producer", "unknown_skill"]
    assert ran == []


def test_keys_present_in_the_initial_uif_count_as_produced(make_skill: Any) -> None:
    use = make_skill("UsesSeed", ["seed"], ["out"])
    report = run(make_engine([use]), ["UsesSeed"], seed=1)
    assert report.status == "success"


def test_observers_see_each_skill_and_cannot_break_a_run(make_skill: Any) -> None:
    from sof_core import hookimpl

    events: list[str] = []

    class Observer:
        @hookimpl
        def sof_before_skill(self, skill: Any) -> None:
            events.append(f"before {skill.name}")
            raise RuntimeError("observer bug")

        @hookimpl
        def sof_after_skill(self, result: Any) -> None:
            events.append(f"after {result.skill} {result.status}")

        @hookimpl
        def sof_after_plan(self, report: Any) -> None:
            events.append(f"plan {report.status}")

    engine = make_engine([make_skill("Seen", ["input_query"], ["s"])], plugins=[("obs", Observer())])
    report = run(engine, ["Seen"])
    assert report.status == "success"
    assert events == ["before Seen", "after Seen success", "plan success"]
    assert engine.plugins.observer_errors == 1


def test_compiled_plans_are_cached_until_the_registry_changes(make_skill: Any) -> None:
    engine = make_engine([make_skill("K1", ["input_query"], ["k"])])
    first = engine.compile(["K1"])
    assert engine.compile(["K1"]) is first
    engine.register_skill(make_skill("K2", ["k"], ["k2"]))
    assert engine.compile(["K1"]) is not first


def test_can_run_parallel_false_gets_its_own_stage(make_skill: Any) -> None:
    skills = [
        make_skill("P1", ["input_query"], ["p1"]),
        make_skill("Solo", ["input_query"], ["solo"], can_run_parallel=False),
        make_skill("P2", ["input_query"], ["p2"]),
    ]
    report = run(make_engine(skills), ["P1", "Solo", "P2"])
    assert report.stages == [["P1", "P2"], ["Solo"]]


def test_report_json_is_stable_for_scripts(make_skill: Any) -> None:
    import json

    engine = make_engine([make_skill("J", ["input_query"], ["j"])])
    data = json.loads(run(engine, ["J"]).to_json())
    assert data["schema"] == "sof.run/1"  # the keys scripts read are all still there:
    assert {"status", "final_response", "confidence_score", "plan", "stages", "executor"} <= set(data)
    assert data["skills"][0]["skill"] == "J" and data["skills"][0]["status"] == "success"
    assert data["uif"]["intermediate_data"] == {"j": "J:j"}


def test_skill_returning_a_copy_is_still_write_checked(make_skill: Any) -> None:
    def copy_and_write(uif: Any) -> Any:
        uif.intermediate_data["ok"] = 1
        return uif.model_copy(update={"final_response": "sneaky"})

    report = run(make_engine([make_skill("Copier", ["input_query"], ["ok"], body=copy_and_write)]),
                 ["Copier"])
    assert report.result("Copier").error_type == "UndeclaredWriteError"
    assert "final_response" in report.result("Copier").error


def test_goal_driven_plan(make_skill: Any) -> None:
    engine = make_engine([
        make_skill("Mem", ["input_query"], ["memory_results"]),
        make_skill("Conf", ["memory_results"], ["conflicts"]),
        make_skill("Resp", ["memory_results"], ["final_response"], optional=["conflicts"],
                   body=lambda u: setattr(u, "final_response", "r")),
        make_skill("Unrelated", ["input_query"], ["other"]),
    ])
    assert engine.resolve_goal(["final_response"]) == ["Mem", "Resp"]
    assert engine.resolve_goal(["final_response"], include_optional=True) == ["Mem", "Conf", "Resp"]
    # Keys the caller already has need no producer.
    assert engine.resolve_goal(["final_response"], available=["memory_results"]) == ["Resp"]
    report = engine.run_query("q", goal=["final_response"])
    assert report.status == "success" and report.final_response == "r"


@pytest.mark.parametrize("on_loop", [False, True])
def test_an_empty_plan_or_a_goal_already_met_is_never_read_as_plan_it(
        make_skill: Any, on_loop: bool) -> None:
    # [] was read like None: the configured planner's plan ran instead
    from sof_core import GoalResolutionError, PlanValidationError

    engine = make_engine([make_skill("Resp", ["input_query"], ["final_response"])],
                         default_plan=["Resp"])

    def run(**kwargs: Any) -> Any:
        if on_loop:
            return asyncio.run(engine.arun_query("q", **kwargs))
        return engine.run_query("q", **kwargs)

    assert engine.resolve_goal(["input_query"]) == []
    with pytest.raises(GoalResolutionError, match=r"needs no skill"):
        run(goal=["input_query"])
    with pytest.raises(PlanValidationError, match="plan is empty"):
        run(plan=[])
    with pytest.raises(GoalResolutionError, match="no goal keys"):
        run(goal=[])
    assert run().plan == ["Resp"]
