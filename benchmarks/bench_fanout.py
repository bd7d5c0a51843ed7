"""Fan-out: one source, W independent skills that each wait 50 ms, one sink.

Ideal wall time is one wait (50 ms) however wide the stage; running the skills one after
another costs W waits. Measured with the default configuration (timeouts on) for the
``threads`` executor (blocking ``time.sleep``) and ``asyncio`` (``await asyncio.sleep``, and
blocking skills on asyncio, which go to its pool).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from _common import Row, Section, Target, make_skill

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine

WAIT = 0.050


def _skills(width: int, kind: str) -> tuple[list[type[BaseSkillModule]], list[str]]:
    def blocking(self: Any, uif: UIF) -> UIF:
        time.sleep(WAIT)
        uif.intermediate_data[self.output_keys[0]] = 1
        return uif

    async def awaiting(self: Any, uif: UIF) -> UIF:
        await asyncio.sleep(WAIT)
        uif.intermediate_data[self.output_keys[0]] = 1
        return uif

    body = blocking if kind == "sync" else awaiting
    source = make_skill("Source", [], ["seed"])
    workers = [
        make_skill(f"Wait{i}", ["seed"], [f"w{i}"], body=body, max_execution_time=30.0)
        for i in range(width)
    ]
    sink = make_skill("Sink", [f"w{i}" for i in range(width)], ["done"])
    classes = [source, *workers, sink]
    return classes, [c.skill_name for c in classes]


def _wall(width: int, kind: str, executor: str, repeat: int) -> float:
    classes, plan = _skills(width, kind)
    engine = make_engine(classes, executor=executor)
    best = float("inf")
    for _ in range(repeat + 1):  # the first run also starts the pool's threads
        started = time.perf_counter()
        report = engine.execute_plan(plan, UIF(input_query="fan-out"))
        elapsed = time.perf_counter() - started
        assert report.status == "success", report.errors
        best = min(best, elapsed)
    return best


def run(quick: bool) -> Section:
    section = Section("fanout", "Fan-out: W skills waiting 50 ms each (wall time)")
    widths = (4, 16) if quick else (4, 16, 64)
    repeat = 1 if quick else 3
    results: dict[tuple[str, str, int], float] = {}
    for width in widths:
        sequential = width * WAIT
        if not quick and width <= 16:
            sequential = _wall(width, "sync", "sequential", 0)
        for kind, executor in (("sync", "threads"), ("async", "asyncio"), ("sync", "asyncio")):
            wall = _wall(width, kind, executor, repeat)
            results[(kind, executor, width)] = wall
            section.rows.append(
                Row(f"W={width} {kind} skills on {executor}", wall * 1e3, "ms", WAIT * 1e3,
                    "ideal (one wait)",
                    f"{sequential / wall:.1f}x faster than sequential ({sequential * 1e3:.0f} ms)")
            )
    section.targets.append(Target("W=16 x 50 ms, threads (default config)", 55.0, "ms",
                                  results[("sync", "threads", 16)] * 1e3))
    section.targets.append(Target("W=16 x 50 ms, asyncio (async skills)", 55.0, "ms",
                                  results[("async", "asyncio", 16)] * 1e3))
    section.notes.append(
        "sequential = measured with the sequential executor for W <= 16 (full run), "
        "else W x 50 ms"
    )
    return section
