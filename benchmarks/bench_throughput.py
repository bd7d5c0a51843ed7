"""Throughput and memory: many queries through a 3-skill plan.

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
import sys
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


def _engine(io_wait: float) -> tuple[Any, list[str]]:
    def parse(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["terms"] = uif.input_query.lower().split()
        return uif

    async def lookup(self: Any, uif: UIF) -> UIF:
        if io_wait:
            await asyncio.sleep(io_wait)
        uif.intermediate_data["hits"] = len(uif.intermediate_data["terms"])
        return uif

    def answer(self: Any, uif: UIF) -> UIF:
        uif.final_response = f"{uif.intermediate_data['hits']} terms"
        return uif

    classes = [
        make_skill("Parse", [], ["terms"], body=parse),
        make_skill("Lookup", ["terms"], ["hits"], body=lookup),
        make_skill("Answer", ["hits"], ["final_response"], body=answer),
    ]
    return make_engine(classes), [c.skill_name for c in classes]


def run(quick: bool) -> Section:
    section = Section("throughput", "Throughput (concurrent queries) and memory (RSS)")
    count = 200 if quick else 1000
    engine, plan = _engine(IO_WAIT)
    queries = [f"query number {i} about SOF" for i in range(count)]
    engine.run_query("warm up", plan)

    sample = queries[:20]
    started = time.perf_counter()
    for query in sample:
        engine.run_query(query, plan)
    sequential = (time.perf_counter() - started) / len(sample) * count

    batch = asyncio.run(arun_batch(engine, queries, plan, concurrency=count))
    assert batch.summary is not None and batch.summary.errors == 0, batch.summary
    section.rows.append(
        Row(f"{count} concurrent queries, asyncio (arun_batch)", batch.summary.duration, "s",
            sequential, "one after another",
            f"{batch.summary.throughput:.0f} q/s, p50 {batch.summary.p50 * 1e3:.0f} ms, "
            f"p95 {batch.summary.p95 * 1e3:.0f} ms")
    )
    threaded = run_batch(engine, queries, plan, concurrency=64)
    assert threaded.summary is not None and threaded.summary.errors == 0
    section.rows.append(
        Row(f"{count} queries, threads (run_batch, concurrency 64)", threaded.summary.duration,
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
