"""Coordinator overhead: chains of no-op skills through the engine vs called directly.

The baseline calls the same skill instances' ``execute`` in topological order on a plain UIF,
so the difference is what SOF adds per skill: the scoped view, write checks, the merge and
the result record. Validation stays on (the compiled plan is cached, as in production).
"""

from __future__ import annotations

from typing import Any

from _common import Row, Section, Target, best_of_batches, chain

from sof_core import UIF
from sof_core.testing import make_engine

FAST = {"skill_timeout": None, "total_timeout": None}


def _per_skill(n: int, executor: str, repeat: int, timeouts: bool = False) -> tuple[float, float]:
    """(coordinator, direct) seconds per skill for a chain of ``n``."""
    attrs: dict[str, Any] = {} if not timeouts else {"max_execution_time": 30.0}
    classes = chain(n, **attrs)
    config = {} if timeouts else dict(FAST)
    engine = make_engine(classes, executor=executor, max_plan_length=max(n, 32), **config)
    plan = [c.skill_name for c in classes]
    instances = [engine.registry.skill(name).instance for name in plan]
    runs = max(2, min(200, 20_000 // n))

    def uifs() -> list[UIF]:
        return [UIF(input_query="benchmark") for _ in range(runs)]

    def coordinated(batch: list[UIF]) -> None:
        for uif in batch:
            engine.execute_plan(plan, uif)

    def direct(batch: list[UIF]) -> None:
        for uif in batch:
            for skill in instances:
                skill.execute(uif)

    report = engine.execute_plan(plan, UIF(input_query="warm-up"))
    assert report.status == "success", report.errors
    coord = best_of_batches(uifs, coordinated, repeat)
    base = best_of_batches(uifs, direct, repeat)
    return coord / n, base / n


def run(quick: bool) -> Section:
    section = Section("overhead", "Coordinator overhead per skill (chain of no-op skills)")
    repeat = 3 if quick else 9
    per_skill: dict[int, float] = {}
    for n in (10, 100, 1000):
        coord, base = _per_skill(n, "sequential", repeat)
        overhead = (coord - base) * 1e6
        per_skill[n] = overhead
        section.rows.append(Row(f"N={n} sequential, no timeouts: per skill", coord * 1e6, "us",
                                base * 1e6, "direct call", f"overhead {overhead:.2f} us/skill"))
    for executor, timeouts, label in (
        ("threads", False, "threads (default executor), no timeouts"),
        ("threads", True, "threads, default timeouts on (supervised)"),
    ):
        coord, base = _per_skill(100, executor, repeat, timeouts)
        overhead = (coord - base) * 1e6
        section.rows.append(Row(f"N=100 {label}: per skill", coord * 1e6, "us", base * 1e6,
                                "direct call", f"overhead {overhead:.2f} us/skill"))
    section.targets.append(
        Target("overhead per skill, N=100 sequential, views+checks on", 2.0, "us", per_skill[100])
    )
    spread = max(per_skill.values()) / max(min(per_skill.values()), 1e-9)
    section.targets.append(Target("per-skill overhead spread, N=10..1000 (max/min)", 1.5, "x",
                                  spread))
    section.notes.append(
        "overhead = (coordinator - direct) / N; best of "
        f"{repeat} batches, GC paused; plan compiled once and cached"
    )
    return section
