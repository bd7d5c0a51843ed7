"""The step pool grows for sync skills that block, not for a burst of quick ones.

Runs on an event loop hand their sync skills to the engine's step pool. A burst of a
thousand runs must not leave a thread per queued skill behind (they would only contend for
the GIL); skills that block must still get threads of their own soon enough to run
together. A wide stage's steps start at once, as before.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from sof_core import UIF, BaseSkillModule
from sof_core.execution.threads import CORE_THREADS, DaemonPool
from sof_core.testing import make_engine


def skill(name: str, body: Any, requires: Any = (), outputs: Any = (), **extra: Any) -> type:
    return type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"test skill {name}",
        "required_inputs": list(requires), "output_keys": list(outputs), "execute": body,
        **extra,
    })


def _parse(self: Any, uif: UIF) -> UIF:
    uif.intermediate_data["terms"] = uif.input_query.split()
    return uif


async def _lookup(self: Any, uif: UIF) -> UIF:
    await asyncio.sleep(0.01)
    uif.intermediate_data["hits"] = len(uif.intermediate_data["terms"])
    return uif


def _answer(self: Any, uif: UIF) -> UIF:
    uif.final_response = f"{uif.intermediate_data['hits']} terms"
    return uif


def test_a_burst_of_async_runs_with_quick_sync_skills_leaves_no_thread_per_skill() -> None:
    engine = make_engine([
        skill("Parse", _parse, outputs=["terms"]),
        skill("Lookup", _lookup, ["terms"], ["hits"]),
        skill("Answer", _answer, ["hits"], ["final_response"]),
    ])
    plan = ["Parse", "Lookup", "Answer"]
    before = threading.active_count()

    async def burst() -> list[Any]:
        return await asyncio.gather(*(
            engine.aexecute_plan(plan, UIF(input_query=f"query {i} about SOF"))
            for i in range(1000)
        ))

    with engine:
        for _ in range(2):
            reports = asyncio.run(burst())
            assert {r.status for r in reports} == {"success"}
        steps = engine.stats()["threads"]["steps"]
        # 2,000 sync calls per burst: served by the core threads, not one thread each
        # (before, the pool grew to max_workers, 64, and kept them for a minute).
        assert steps["live"] <= CORE_THREADS, steps
        assert threading.active_count() - before <= CORE_THREADS + 2  # + watchdog, runner


def _source(self: Any, uif: UIF) -> UIF:
    uif.intermediate_data["src"] = 1
    return uif


def _wide(index: int) -> type:
    def body(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data[f"w{index}"] = index
        return uif

    return skill(f"Wide{index}", body, ["src"], [f"w{index}"])


def test_a_wide_stage_run_again_and_again_reuses_the_same_threads() -> None:
    # An 8-wide stage: the runner takes one step, the step pool the other seven. Before,
    # a thread that took a job meant for a newly started one left that one uncounted as
    # idle, so every run started more threads (64, max_workers, after 20 runs) and the
    # pool reported one idle thread while dozens were; none of them ever retired.
    engine = make_engine([skill("Source", _source, outputs=["src"])]
                         + [_wide(i) for i in range(8)])
    plan = ["Source", *(f"Wide{i}" for i in range(8))]
    with engine:
        for _ in range(30):
            assert engine.execute_plan(plan, UIF(input_query="q")).status == "success"
        # Seven do; one or two more if a run starts while the last one's threads are
        # between delivering their outcome and waiting again (a loaded machine).
        end = time.monotonic() + 5
        while time.monotonic() < end:  # the last run's threads go back to waiting
            steps = engine.stats()["threads"]["steps"]
            if steps["idle"] == steps["live"]:
                break
            time.sleep(0.01)
        assert steps["live"] <= 9, steps
        assert steps["idle"] == steps["live"], steps  # all of them wait for work
        names = [t.name for t in threading.enumerate() if t.name.startswith("sof-step")]
        assert len(names) <= 9, names


def test_sync_skills_that_block_in_async_runs_still_run_together() -> None:
    gate = threading.Barrier(24, timeout=10)

    def wait_for_all(self: Any, uif: UIF) -> UIF:
        gate.wait()  # only returns once 24 calls are running at the same time
        uif.intermediate_data["met"] = True
        return uif

    engine = make_engine([skill("Meet", wait_for_all, outputs=["met"])])

    async def together() -> list[Any]:
        return await asyncio.gather(*(
            engine.aexecute_plan(["Meet"], UIF(input_query="q")) for _ in range(24)
        ))

    with engine:
        # Each call returns only once all 24 run at once (the barrier): they had a thread
        # each. The loop's shutdown then ended them (test_loop_shutdown_threads.py).
        reports = asyncio.run(together())
        assert {r.status for r in reports} == {"success"}, [r.errors for r in reports]
        assert engine.stats()["threads"]["steps"]["live"] == 0


def test_jobs_that_may_wait_grow_the_pool_only_when_its_queue_stands_still() -> None:
    pool = DaemonPool("sof-test-growth", max_workers=32)
    try:
        done = threading.Semaphore(0)

        def quick() -> None:
            done.release()

        for _ in range(500):
            pool.submit(quick, eager=False)
        for _ in range(500):
            assert done.acquire(timeout=10)
        assert pool.stats()["live"] <= CORE_THREADS

        release = threading.Event()
        started = threading.Semaphore(0)

        def block() -> None:
            started.release()
            release.wait(10)

        for _ in range(12):
            pool.submit(block, eager=False)
        for _ in range(12):  # every blocked job gets a thread of its own, in time
            assert started.acquire(timeout=10)
        assert pool.stats()["live"] >= 12
        release.set()
    finally:
        pool.close()


def test_eager_jobs_start_at_once_and_idle_threads_beyond_four_retire(monkeypatch: Any) -> None:
    # Then what a burst leaves behind: threads idle for IDLE_SECONDS (a minute by default;
    # less here) retire, down to four kept for the next burst.
    from sof_core.execution import threads

    monkeypatch.setattr(threads, "IDLE_SECONDS", 0.2)
    pool = DaemonPool("sof-test-eager", max_workers=32)
    release = threading.Event()
    started = threading.Semaphore(0)

    def block() -> None:
        started.release()
        release.wait(10)

    def names() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("sof-test-eager")]

    try:
        for _ in range(12):
            pool.submit(block)
        began = time.monotonic()
        for _ in range(12):
            assert started.acquire(timeout=10)
        # Not a speed figure: the point is that no grow check (tens of ms) was waited for.
        assert pool.stats()["live"] == 12, time.monotonic() - began
        release.set()
        end = time.monotonic() + 10
        while (pool.stats()["live"] > 4 or len(names()) > 4) and time.monotonic() < end:
            time.sleep(0.05)
        stats = pool.stats()
        assert stats["live"] == 4 and stats["idle"] == 4, stats
        assert len(names()) == 4, names()
    finally:
        release.set()
        pool.close()
