"""A hung skill is contained: its thread is given up on (a daemon, never joined), its place in
the engine's pools is handed on, it is counted, alerted on and quarantined, and nothing it
does after its timeout reaches the report the run returned (issue 10, item 2 and 3)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sof_test_support import Alerts, wait_until

from sof_core import UIF, CoordinatorEngine
from sof_core.testing import make_engine

Body = Callable[[Any], Any]


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of each test: every hung skill of the test then returns."""
    event = threading.Event()
    yield event
    event.set()


def hang_until(event: threading.Event) -> Body:
    def body(uif: Any) -> None:
        event.wait(30)

    return body


def run(engine: CoordinatorEngine, plan: list[str], **data: Any) -> Any:
    return engine.execute_plan(plan, UIF(input_query="q", intermediate_data=data))


# --- the pools are never exhausted by hung calls -------------------------------------------


def test_600_hung_calls_leave_new_runs_working(make_skill: Any, release: threading.Event) -> None:
    # 20 runs of a wide stage of 30 skills that hang: 600 calls abandoned in the engine's
    # threads (600 different skills, so none is quarantined).
    groups = [[make_skill(f"Hung{g}x{i}", ["input_query"], [f"h{g}x{i}"],
                          body=hang_until(release), max_execution_time=0.05)
               for i in range(30)] for g in range(20)]
    instant = [make_skill(f"Instant{i}", ["input_query"], [f"i{i}"]) for i in range(3)]
    engine = make_engine([*(s for group in groups for s in group), *instant],
                         continue_on_skill_failure=True, total_timeout=10)
    for group in groups:
        report = run(engine, [s.skill_name for s in group])
        assert {r.status for r in report.results} == {"timeout"}
    assert sum(engine.abandoned_calls().values()) == 600
    # A later run, narrow or wide, runs at once: nothing waits for a hung thread's place.
    for plan in (["Instant0"], ["Instant0", "Instant1", "Instant2"]):
        report = run(engine, plan)
        assert report.status == "success", report.errors
        assert report.duration < 5  # a hang bound: ending at total_timeout would be 10 s
    release.set()
    assert wait_until(lambda: not engine.abandoned_calls(), 10)
    assert sum(engine.stats()["abandoned_total"].values()) == 600


def test_hung_calls_give_their_pool_places_back(make_skill: Any, release: threading.Event) -> None:
    # Two pool threads only: two hung skills used to hold both, and the next run's instant
    # skills then queued behind them and were reported as timed out.
    hung = [make_skill(f"Stuck{i}", ["input_query"], [f"s{i}"], body=hang_until(release),
                       max_execution_time=0.1) for i in range(3)]
    quick = [make_skill(f"Quick{i}", ["input_query"], [f"q{i}"], max_execution_time=1.0)
             for i in range(3)]
    engine = make_engine([*hung, *quick], max_workers=2, continue_on_skill_failure=True)
    report = run(engine, ["Stuck0", "Stuck1", "Stuck2"])
    assert [r.status for r in report.results] == ["timeout"] * 3
    report = run(engine, ["Quick0", "Quick1", "Quick2"])
    assert report.status == "success", report.errors


def test_a_steps_deadline_starts_when_it_starts_not_while_it_queues(make_skill: Any) -> None:
    # One pool thread runs three 0.25 s steps one after another: the last starts at 0.5 s,
    # past a 0.4 s limit counted from the stage's start, but within its own.
    def nap(uif: Any) -> None:
        time.sleep(0.25)

    steps = [make_skill(f"Nap{i}", ["input_query"], [f"n{i}"], body=nap, max_execution_time=0.4)
             for i in range(4)]
    engine = make_engine(steps, max_workers=1)
    report = run(engine, [s.skill_name for s in steps])
    assert report.status == "success", report.errors


def test_a_step_that_never_started_because_the_pool_was_full_is_reported_so(
    make_skill: Any, release: threading.Event
) -> None:
    # No per-skill limit: the two hung skills hold both pool threads until the run's end.
    hung = [make_skill(f"Holder{i}", ["input_query"], [f"h{i}"], body=hang_until(release))
            for i in range(3)]
    waiting = make_skill("Waiting", ["input_query"], ["w"])
    engine = make_engine([*hung, waiting], max_workers=2, skill_timeout=None, total_timeout=0.5,
                         continue_on_skill_failure=True)
    report = run(engine, ["Holder0", "Holder1", "Holder2", "Waiting"])
    assert report.status == "timeout"
    result = report.result("Waiting")
    assert result.status == "skipped"
    assert result.error_type == "SkillNotStartedError"
    assert "never started" in result.error and "max_workers 2" in result.error
    assert "the 2 threads of the engine's step pool" in result.error
    assert result.attempts == 0
    assert {report.result(f"Holder{i}").status for i in range(3)} == {"timeout"}


# --- a late return changes nothing ----------------------------------------------------------


def test_a_late_return_cannot_disarm_another_steps_timeout(make_skill: Any) -> None:
    gate = threading.Event()

    def late(uif: Any) -> None:
        time.sleep(0.5)  # returns while Slow (below) runs

    def slow(uif: Any) -> None:
        gate.wait(3)

    late_skill = make_skill("Late", ["input_query"], ["l"], body=late, max_execution_time=0.2)
    slow_skill = make_skill("Slow", ["input_query"], ["s"], body=slow, max_execution_time=0.6)
    engine = make_engine([late_skill, slow_skill])
    try:
        assert run(engine, ["Late"]).status == "timeout"
        started = time.monotonic()
        report = run(engine, ["Slow"])
        elapsed = time.monotonic() - started
    finally:
        gate.set()
    assert report.result("Slow").status == "timeout"
    assert elapsed < 2.0  # Slow was abandoned at 0.6 s, not when it returned at 3 s


def test_late_return_in_the_same_run_cannot_disarm_the_next_steps_timeout(
    make_skill: Any,
) -> None:
    gate = threading.Event()

    def late(uif: Any) -> None:
        time.sleep(0.4)

    def slow(uif: Any) -> None:
        gate.wait(3)

    late_skill = make_skill("Late2", ["input_query"], ["l"], body=late, max_execution_time=0.2)
    slow_skill = make_skill("Slow2", ["input_query"], ["s"], body=slow, max_execution_time=0.6)
    engine = make_engine([late_skill, slow_skill], executor="sequential",
                         continue_on_skill_failure=True)
    try:
        started = time.monotonic()
        report = run(engine, ["Late2", "Slow2"])
        elapsed = time.monotonic() - started
    finally:
        gate.set()
    assert report.result("Late2").status == "timeout"
    assert report.result("Slow2").status == "timeout"
    assert elapsed < 2.0


def test_nothing_an_abandoned_skill_does_reaches_the_returned_report(make_skill: Any) -> None:
    go_on = threading.Event()
    done = threading.Event()

    def meddle(uif: Any) -> None:
        go_on.wait(10)  # until the run has returned its report
        changes = (
            lambda: uif.intermediate_data.__setitem__("late", "written after the timeout"),
            lambda: setattr(uif, "final_response", "late answer"),
            lambda: uif.add_log_entry("late log"),
            lambda: uif.add_warning("late warning"),
            # in place, on what the report's UIF holds too
            lambda: uif.intermediate_data["docs"].append("late doc"),
            lambda: uif.user_context.__setitem__("late", True),
            lambda: uif.source_documents.append("late source"),
            lambda: uif.security_context.__setitem__("late", True),
        )
        try:
            for change in changes:
                # refused (read-only, undeclared) or not: what matters is the report, below
                with contextlib.suppress(Exception):
                    change()
        finally:
            done.set()

    skill = make_skill("Meddler", ["docs"], ["late", "final_response"], body=meddle,
                       max_execution_time=0.2)
    engine = make_engine([skill])
    for executor in ("threads", "sequential", "asyncio"):
        go_on.clear()
        done.clear()
        uif = UIF(input_query="q", intermediate_data={"docs": ["a doc"]},
                  user_context={"user": "u"}, source_documents=["a source"],
                  security_context={"level": 1})
        report = engine.execute_plan(["Meddler"], uif, executor=executor)
        assert report.status == "timeout"
        before = report.to_json()
        go_on.set()
        assert done.wait(10)
        time.sleep(0.05)
        assert "late" not in report.uif.intermediate_data
        assert report.uif.intermediate_data["docs"] == ["a doc"]
        assert report.uif.final_response is None
        assert report.uif.user_context == {"user": "u"}
        assert report.uif.source_documents == ["a source"]
        assert report.to_json() == before, executor


# --- counted, alerted, quarantined -----------------------------------------------------------


def test_abandoned_calls_are_counted_in_the_engines_stats_and_alerted(
    make_skill: Any, release: threading.Event
) -> None:
    alerts = Alerts()
    hang = make_skill("Hanger", ["input_query"], ["h"], body=hang_until(release),
                      max_execution_time=0.1)
    engine = make_engine([hang], plugins=[("alerts", alerts)])
    assert run(engine, ["Hanger"]).status == "timeout"
    assert run(engine, ["Hanger"]).status == "timeout"
    assert engine.abandoned_calls() == {"Hanger": 2}
    stats = engine.stats()
    assert stats["abandoned_calls"] == {"Hanger": 2}
    assert stats["abandoned_total"] == {"Hanger": 2}
    abandoned = [a for a in alerts.seen if a[0] == "skill_abandoned"]
    assert len(abandoned) == 2
    assert abandoned[-1][2]["skill"] == "Hanger" and abandoned[-1][2]["still_running"] == 2
    assert "Hanger" in abandoned[-1][1]
    release.set()
    assert wait_until(lambda: engine.abandoned_calls() == {})
    assert engine.stats()["abandoned_total"] == {"Hanger": 2}


def test_a_skill_with_too_many_hung_calls_is_quarantined_until_they_return(
    make_skill: Any, release: threading.Event
) -> None:
    alerts = Alerts()
    calls: list[int] = []

    def body(uif: Any) -> None:
        calls.append(1)
        release.wait(30)
        uif.intermediate_data["h"] = "done"

    hang = make_skill("Sticky", ["input_query"], ["h"], body=body, max_execution_time=0.6)
    engine = make_engine([hang], plugins=[("alerts", alerts)], max_hung_calls_per_skill=1)
    assert run(engine, ["Sticky"]).status == "timeout"
    assert run(engine, ["Sticky"]).status == "timeout"  # 2 hung > 1: quarantined
    assert engine.stats()["quarantined"] == ["Sticky"]
    assert any(kind == "skill_quarantined" for kind, _, _ in alerts.seen)
    started = time.monotonic()
    report = run(engine, ["Sticky"])
    # fails fast: no thread, no wait (a call that ran would hang to its 0.6 s limit)
    assert time.monotonic() - started < 0.3
    result = report.result("Sticky")
    assert result.status == "failed"
    assert result.error_type == "SkillQuarantinedError"
    assert "quarantined" in result.error and "max_hung_calls_per_skill" in result.error
    assert len(calls) == 2  # the quarantined call never ran
    release.set()
    assert wait_until(lambda: engine.stats()["quarantined"] == [])
    report = run(engine, ["Sticky"])
    assert report.status == "success", report.errors


# --- the engine owns its threads ---------------------------------------------------------------


def _sof_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sof")]


def test_engine_threads_are_daemons_and_close_releases_them(make_skill: Any) -> None:
    skills = [make_skill(f"Wide{i}", ["input_query"], [f"w{i}"]) for i in range(4)]
    before = set(threading.enumerate())  # objects, not idents: an ended thread's is reused
    none = {"live": 0, "idle": 0, "queued": 0, "abandoned": 0}
    with make_engine(skills) as engine:
        # Pools not started yet count zero threads (they were None: stats["threads"]["steps"]
        # ["live"] raised TypeError in a health check), as do closed ones below.
        assert engine.stats()["threads"] == {"runners": none, "steps": none, "observers": none}
        assert run(engine, [s.skill_name for s in skills]).status == "success"
        mine = [t for t in _sof_threads() if t not in before]
        assert mine, "a wide stage with timeouts runs in the engine's threads"
        assert all(t.daemon for t in _sof_threads())
    # Gone when close() returns (it waits for its idle threads to end), not moments later:
    # a host or a test counting threads right after closing sees none of them.
    assert not [t.name for t in mine if t.is_alive() and t.name != "sof-watchdog"]
    assert engine.stats()["threads"] == {"runners": none, "steps": none, "observers": none}
    # A closed engine still works: it starts new threads when asked.
    assert run(engine, [s.skill_name for s in skills]).status == "success"
    engine.close()


@pytest.mark.parametrize("executor", ["threads", "asyncio"])
def test_close_closes_the_event_loops_of_the_threads_it_releases(executor: str) -> None:
    # Async skills run in the engine's threads on each thread's own event loop. Before,
    # close() ended the threads and left their loops open (a selector and a self-pipe each,
    # until the garbage collector found them: a ResourceWarning, and descriptors piling up
    # in a host that made and closed engines).
    import asyncio

    from sof_core import BaseSkillModule

    loops: list[asyncio.AbstractEventLoop] = []

    class Waits(BaseSkillModule):
        skill_description = "awaits a moment on the loop it runs on"
        required_inputs = ["input_query"]

        async def execute(self, uif: UIF) -> UIF:
            loops.append(asyncio.get_running_loop())
            await asyncio.sleep(0.001)
            uif.intermediate_data[self.output_keys[0]] = True
            return uif

    first = type("WaitsA", (Waits,), {"skill_name": "WaitsA", "output_keys": ["a"]})
    second = type("WaitsB", (Waits,), {"skill_name": "WaitsB", "output_keys": ["b"]})
    engine = make_engine([first, second], executor=executor)
    assert run(engine, ["WaitsA", "WaitsB"]).status == "success"
    assert loops and not any(loop.is_closed() for loop in loops)
    engine.close()
    # (a thread still handing its outcome back when close() ran ends a moment later)
    assert wait_until(lambda: all(loop.is_closed() for loop in loops))


def test_the_loop_an_inline_run_made_in_the_callers_thread_is_closed_at_exit() -> None:
    # A run without timeouts awaits its async skills in the caller's thread, on a loop of
    # that thread's own; at exit it was left for the garbage collector ("unclosed event
    # loop" under -X dev).
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import asyncio
        from sof_core import UIF, BaseSkillModule
        from sof_core.testing import make_engine

        class Waits(BaseSkillModule):
            skill_name = "Waits"
            skill_description = "awaits a moment"
            required_inputs = ["input_query"]
            output_keys = ["waited"]

            async def execute(self, uif):
                await asyncio.sleep(0.001)
                uif.intermediate_data["waited"] = True
                return uif

        engine = make_engine([Waits], skill_timeout=None, total_timeout=None)
        print(engine.execute_plan(["Waits"], UIF(input_query="q")).status)
    """)
    done = subprocess.run([sys.executable, "-X", "dev", "-c", script], capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == "success", done.stderr
    assert "unclosed event loop" not in done.stderr, done.stderr


def test_close_never_waits_for_a_busy_thread(make_skill: Any, release: threading.Event) -> None:
    """``close()`` waits for idle threads only: one still running a skill (here one that
    blocks until the test ends) is left to finish on its own."""
    import asyncio

    started = threading.Event()

    def blocks(uif: Any) -> None:
        started.set()
        release.wait(30)

    # Quick is sync: under aexecute_plan it runs on the step pool's threads.
    skills = [make_skill("Blocks", ["input_query"], ["b"], body=blocks),
              make_skill("Quick", ["input_query"], ["q"])]
    # Timeouts on: the run is walked by one of the engine's runner threads.
    engine = make_engine(skills, skill_timeout=60, total_timeout=120)
    earlier = set(threading.enumerate())  # other engines' threads are not this test's
    runner = threading.Thread(target=run, args=(engine, ["Blocks"]), daemon=True)
    runner.start()
    assert started.wait(10)

    async def quick_runs() -> None:  # step-pool threads that end up idle
        await asyncio.gather(*(engine.aexecute_plan(["Quick"], UIF(input_query="q"))
                               for _ in range(20)))

    asyncio.run(quick_runs())
    closed = threading.Thread(target=engine.close, daemon=True)
    closed.start()
    closed.join(10)
    assert not closed.is_alive(), "close() waited for the busy skill"
    assert not release.is_set() and runner.is_alive()  # the skill is still running
    left = [t for t in _sof_threads()
            if t.is_alive() and t.name != "sof-watchdog" and t not in earlier]
    assert len(left) == 1 and left[0].name.startswith("sof-run"), left  # Blocks' runner
    release.set()
    runner.join(10)
    assert wait_until(lambda: not left[0].is_alive())  # it ends once its call returns
