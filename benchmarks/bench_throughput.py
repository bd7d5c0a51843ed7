"""Throughput and memory: many queries through a 3-skill plan.

Native async: 1,000 concurrent ``aexecute_plan`` calls on one event loop (``asyncio.gather``),
the middle skill awaiting 10 ms, against the yardstick of a plain ``asyncio.gather`` of the
same three skill bodies called directly (same loop, same UIFs, measured in the same run):
wall time, median latency, and the threads still alive afterwards.

Concurrency: 1,000 queries whose middle skill awaits 10 ms of (simulated) I/O, through
``arun_batch`` on asyncio, against the same queries one after another (baseline: the
sequential time, measured on a sample and scaled). Memory: resident set size after a
warm-up and after 100,000 sequential queries; history inside the engine is bounded, so
it must stay flat.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import threading
import time
from typing import Any

from _common import Row, Section, Target, make_skill

from sof_core import UIF
from sof_core.execution.batch import arun_batch, run_batch
from sof_core.testing import make_engine

IO_WAIT = 0.010


def _rss_bytes() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        pass
    try:  # Linux without psutil
        with open(f"/proc/{os.getpid()}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # elsewhere: peak RSS, which can only grow (still bounds the growth)
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


def _engine(io_wait: float, all_async: bool = False) -> tuple[Any, list[str]]:
    def parse(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["terms"] = uif.input_query.lower().split()
        return uif

    async def aparse(self: Any, uif: UIF) -> UIF:
        return parse(self, uif)

    async def aanswer(self: Any, uif: UIF) -> UIF:
        return answer(self, uif)

    async def lookup(self: Any, uif: UIF) -> UIF:
        if io_wait:
            await asyncio.sleep(io_wait)
        uif.intermediate_data["hits"] = len(uif.intermediate_data["terms"])
        return uif

    def answer(self: Any, uif: UIF) -> UIF:
        uif.final_response = f"{uif.intermediate_data['hits']} terms"
        return uif

    classes = [
        make_skill("Parse", [], ["terms"], body=aparse if all_async else parse),
        make_skill("Lookup", ["terms"], ["hits"], body=lookup),
        make_skill("Answer", ["hits"], ["final_response"], body=aanswer if all_async else answer),
    ]
    return make_engine(classes), [c.skill_name for c in classes]


def _native(engine: Any, plan: list[str], count: int) -> tuple[float, float, float, float]:
    """(SOF wall, SOF p50, yardstick wall, yardstick p50) in seconds, best of 3 each."""
    skills = [engine.registry.skill(name).instance for name in plan]

    async def direct(query: str) -> float:
        began = time.perf_counter()
        uif = UIF.for_query(query)
        for skill in skills:
            result = skill.execute(uif)
            if asyncio.iscoroutine(result):
                await result
        return time.perf_counter() - began

    async def through_sof(query: str) -> float:
        began = time.perf_counter()
        report = await engine.aexecute_plan(plan, UIF.for_query(query))
        assert report.status == "success", report.errors
        return time.perf_counter() - began

    async def gather(one: Any) -> tuple[float, float]:
        began = time.perf_counter()
        latencies = await asyncio.gather(*(one(f"query {i} about SOF") for i in range(count)))
        return time.perf_counter() - began, statistics.median(latencies)

    best: dict[str, tuple[float, float]] = {}
    for _ in range(3):
        for name, one in (("direct", direct), ("sof", through_sof)):
            # Each batch starts from a collected heap: neither side pays for garbage the
            # other left behind (the collector still runs during the batch, as for a host).
            gc.collect()
            wall, p50 = asyncio.run(gather(one))
            if name not in best or wall < best[name][0]:
                best[name] = (wall, p50)
    return best["sof"][0], best["sof"][1], best["direct"][0], best["direct"][1]


def run(quick: bool) -> Section:
    section = Section("throughput", "Throughput (concurrent queries) and memory (RSS)")
    count = 200 if quick else 1000
    engine, plan = _engine(IO_WAIT)
    queries = [f"query number {i} about SOF" for i in range(count)]
    engine.run_query("warm up", plan)

    threads_before = threading.active_count()
    wall, p50, yard_wall, yard_p50 = _native(engine, plan, count)
    left = threading.active_count() - threads_before
    section.rows.append(
        Row(f"{count} concurrent aexecute_plan (asyncio.gather), defaults", wall, "s",
            yard_wall, "asyncio.gather of the 3 bodies",
            f"p50 {p50 * 1e3:.1f} ms (yardstick {yard_p50 * 1e3:.1f} ms); {left} more threads "
            "alive after (the step pool's threads end when each batch's loop shuts down)")
    )
    section.targets.append(Target(f"{count} concurrent aexecute_plan / asyncio.gather", 3.0, "x",
                                  wall / yard_wall))
    section.targets.append(Target(f"{count} concurrent aexecute_plan, p50 latency", 15.0, "ms",
                                  p50 * 1e3))
    async_engine, async_plan = _engine(IO_WAIT, all_async=True)
    async_engine.run_query("warm up", async_plan)
    wall, p50, yard_wall, yard_p50 = _native(async_engine, async_plan, count)
    section.rows.append(
        Row(f"{count} concurrent aexecute_plan, all three skills async (no hand-off)", wall, "s",
            yard_wall, "asyncio.gather of the 3 bodies",
            f"p50 {p50 * 1e3:.1f} ms (yardstick {yard_p50 * 1e3:.1f} ms)")
    )

    sample = queries[:20]
    started = time.perf_counter()
    for query in sample:
        engine.run_query(query, plan)
    sequential = (time.perf_counter() - started) / len(sample) * count

    batch = asyncio.run(arun_batch(engine, queries, plan))
    assert batch.summary is not None and batch.summary.errors == 0, batch.summary
    section.rows.append(
        Row(f"{count} queries, arun_batch (default concurrency {batch.summary.concurrency})",
            batch.summary.duration, "s",
            sequential, "one after another",
            f"{batch.summary.throughput:.0f} q/s, p50 {batch.summary.p50 * 1e3:.0f} ms, "
            f"p95 {batch.summary.p95 * 1e3:.0f} ms")
    )
    threaded = run_batch(engine, queries, plan)
    assert threaded.summary is not None and threaded.summary.errors == 0
    section.rows.append(
        Row(f"{count} queries, run_batch (default concurrency {threaded.summary.concurrency})",
            threaded.summary.duration,
            "s", sequential, "one after another",
            f"{threaded.summary.throughput:.0f} q/s, p95 {threaded.summary.p95 * 1e3:.0f} ms")
    )

    total = 10_000 if quick else 100_000
    engine, plan = _engine(0.0)
    for _ in range(2000):
        engine.run_query("warm up the caches", plan)
    gc.collect()
    before = _rss_bytes()
    started = time.perf_counter()
    for i in range(total):
        report = engine.run_query(f"query {i}", plan)
    elapsed = time.perf_counter() - started
    assert report.status == "success"
    gc.collect()
    growth = (_rss_bytes() - before) / 2**20
    section.rows.append(
        Row(f"RSS after {total:,} sequential queries", (before / 2**20) + growth, "MiB",
            before / 2**20, "after warm-up",
            f"growth {growth:+.2f} MiB; {total / elapsed:,.0f} q/s")
    )
    section.targets.append(Target(f"RSS growth over {total:,} queries", 5.0, "MiB", growth))
    return section
