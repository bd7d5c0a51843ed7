"""The threads a loop's runs used end when the loop shuts down: none is left behind.

Runs on an event loop (``aexecute_plan``) hand their sync skills, and observers that must
be bounded, to the engine's pools. Before, after ``asyncio.run`` of a burst of them the
step pool's four core threads stayed alive, idle, until ``engine.close()`` or a minute
without work: "no threads left behind" held only for a host that closed its engine. Now
the loop's shutdown (``asyncio.run``, or ``loop.shutdown_asyncgens()``) ends them and waits
for them, and never for a busy or hung one.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sof_core import UIF, hookimpl
from sof_core.execution.threads import ABANDONED, DaemonPool
from sof_core.testing import make_engine

# The skills of the step-pool tests (a burst of the same 3-skill plan), from that file.
_spec = importlib.util.spec_from_file_location(
    "_step_pool_growth_skills", Path(__file__).with_name("test_step_pool_growth.py"))
assert _spec is not None and _spec.loader is not None
_growth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_growth)
skill, _parse, _lookup, _answer = _growth.skill, _growth._parse, _growth._lookup, _growth._answer


PLAN = ["Parse", "Lookup", "Answer"]


def _three_skill_engine(**settings: Any) -> Any:
    return make_engine([
        skill("Parse", _parse, outputs=["terms"]),
        skill("Lookup", _lookup, ["terms"], ["hits"]),
        skill("Answer", _answer, ["hits"], ["final_response"]),
    ], **settings)


async def _burst(engine: Any, count: int) -> list[Any]:
    return await asyncio.gather(*(
        engine.aexecute_plan(PLAN, UIF(input_query=f"query {i} about SOF"))
        for i in range(count)
    ))


def _new_threads(before: set[threading.Thread]) -> list[str]:
    """Threads alive now that were not before, but the process-wide watchdog."""
    return sorted(t.name for t in set(threading.enumerate()) - before
                  if t.name != "sof-watchdog")


def test_a_burst_under_asyncio_run_leaves_no_thread_behind() -> None:
    engine = _three_skill_engine()
    before = set(threading.enumerate())  # objects, not idents: an ended thread's is reused
    reports = asyncio.run(_burst(engine, 1000))
    assert {r.status for r in reports} == {"success"}
    assert _new_threads(before) == []  # before: sof-step-1 .. sof-step-4
    assert engine.stats()["threads"]["steps"]["live"] == 0
    # The engine is not closed: the next loop's runs start threads again, and end them.
    reports = asyncio.run(_burst(engine, 50))
    assert {r.status for r in reports} == {"success"}
    assert _new_threads(before) == []
    assert engine.run_query("plain sync query", PLAN).status == "success"
    engine.close()


def test_the_threads_serve_the_loop_for_as_long_as_it_runs() -> None:
    # Ended at the loop's shutdown, not when a burst is over: a host's long-lived loop
    # does not pay thread starts for every query.
    engine = _three_skill_engine()

    async def two_bursts() -> tuple[set[str], set[str]]:
        await _burst(engine, 20)
        first = {t.name for t in threading.enumerate() if t.name.startswith("sof-step")}
        await _burst(engine, 20)
        second = {t.name for t in threading.enumerate() if t.name.startswith("sof-step")}
        return first, second

    with engine:
        first, second = asyncio.run(two_bursts())
        assert first and first == second


def test_a_hung_sync_skill_does_not_hold_the_loops_shutdown() -> None:
    release = threading.Event()

    def hangs(self: Any, uif: UIF) -> UIF:
        release.wait(30)
        return uif

    engine = make_engine([skill("Hangs", hangs, outputs=["never"], max_execution_time=0.2),
                          skill("Parse", _parse, outputs=["terms"])])

    async def main() -> list[Any]:
        return await asyncio.gather(engine.aexecute_plan(["Hangs"], UIF(input_query="q")),
                                    engine.aexecute_plan(["Parse"], UIF(input_query="q")))

    before = set(threading.enumerate())
    try:
        started = time.monotonic()
        hung, parsed = asyncio.run(main())
        took = time.monotonic() - started
        assert hung.status == "timeout" and parsed.status == "success"
        assert took < 10  # a hang bound, not a speed figure: it never waits for the call
        left = _new_threads(before)
        assert len(left) == 1 and left[0].startswith("sof-step"), left  # the hung one only
    finally:
        release.set()
        engine.close()


def test_a_loop_closed_without_shutting_down_is_let_go_by_the_next_one() -> None:
    engine = _three_skill_engine()
    before = set(threading.enumerate())
    loop = asyncio.new_event_loop()
    try:
        reports = loop.run_until_complete(_burst(engine, 20))
    finally:
        loop.close()  # no ``shutdown_asyncgens``: its threads are still there
    assert {r.status for r in reports} == {"success"}
    assert any(name.startswith("sof-step") for name in _new_threads(before))
    asyncio.run(_burst(engine, 5))  # the next loop's first run ends them
    assert _new_threads(before) == []
    engine.close()


class _Observer:
    def __init__(self) -> None:
        self.plans = 0

    @hookimpl
    def sof_after_plan(self, report: Any) -> None:
        self.plans += 1


def test_observer_threads_a_loops_runs_used_end_with_it_too() -> None:
    async def waits(self: Any, uif: UIF) -> UIF:
        await asyncio.sleep(0.01)
        uif.intermediate_data["waited"] = True
        return uif

    observer = _Observer()
    engine = make_engine([skill("Waits", waits, outputs=["waited"])],
                         plugins=[("counting", observer)])

    async def main() -> list[Any]:
        return await asyncio.gather(*(
            engine.aexecute_plan(["Waits"], UIF(input_query="a b")) for _ in range(10)))

    before = set(threading.enumerate())
    reports = asyncio.run(main())
    assert {r.status for r in reports} == {"success"}
    assert observer.plans == 10  # told in a thread of the observer pool
    assert _new_threads(before) == []
    engine.close()


def _pool_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(name)]


def test_retire_ends_idle_threads_now_busy_ones_after_their_job() -> None:
    pool = DaemonPool("sof-test-retire", max_workers=8)
    release = threading.Event()
    done: list[int] = []
    try:
        for _ in range(4):
            pool.submit(done.append, 1)
        pool.submit(release.wait, 10)  # one thread stays busy
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the quick jobs' threads go back to waiting
            stats = pool.stats()
            if len(done) == 4 and stats["idle"] == stats["live"] - 1:
                break
            time.sleep(0.01)
        pool.retire(wait=0.2)  # waits for the idle ones, and for the busy one in vain
        (busy,) = _pool_threads("sof-test-retire")  # the idle ones are gone
        assert pool.stats() == {"live": 1, "idle": 0, "queued": 0, "abandoned": 0}
        # A job right after it runs: the places were given back, a thread starts for it.
        ran = threading.Event()
        pool.submit(ran.set)
        assert ran.wait(5)
        release.set()  # the busy one ends once its job returns, and takes no other
        busy.join(5)
        assert not busy.is_alive()
        assert sum(done) == 4
    finally:
        release.set()
        pool.close()


def test_retire_does_not_wait_for_a_call_given_up_on() -> None:
    pool = DaemonPool("sof-test-retire-hung", max_workers=4)
    release = threading.Event()
    try:
        pool.submit(lambda: (release.wait(30), ABANDONED)[1])  # as a given-up call ends
        deadline = time.monotonic() + 5
        while pool.stats()["idle"] and time.monotonic() < deadline:  # it took the job
            time.sleep(0.01)
        pool.abandon()  # as the watchdog does for a hung skill
        started = time.monotonic()
        pool.retire(wait=5.0)
        assert time.monotonic() - started < 2.5  # a hang bound: it does not wait the 5 s
        release.set()
        deadline = time.monotonic() + 5
        while _pool_threads("sof-test-retire-hung") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.stats() == {"live": 0, "idle": 0, "queued": 0, "abandoned": 0}
    finally:
        release.set()
        pool.close()


def test_a_thread_ending_while_another_imports_the_async_runner_logs_nothing(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A pool thread that ends looks for the async runner module to close its own event
    loop. Found half-imported (another thread importing it at that moment: in
    ``sys.modules`` without ``close_thread_loop`` yet), it logged "closing ... event loop
    failed" with an AttributeError; no async skill ran on the thread, so there is no loop
    to close. The half-imported module is put in place by hand: the import race itself
    cannot be timed from a test."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "sof_core.execution.aio",
                        types.ModuleType("sof_core.execution.aio"))
    caplog.set_level(logging.ERROR, logger="sof.threads")
    pool = DaemonPool("sof-test-half-imported", max_workers=2)
    done = threading.Event()
    pool.submit(done.set)
    assert done.wait(10)
    for thread in pool.close():
        thread.join(10)
    assert not [r for r in caplog.records if "event loop failed" in r.getMessage()]
