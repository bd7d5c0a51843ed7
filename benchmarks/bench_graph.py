"""Graph: build and validate plans of 100, 1,000 and 10,000 skills (random DAGs).

Each skill writes one key and reads up to three keys written by earlier skills (some
optional), so every plan is valid and wide. What is timed is ``compile_plan``: graph build,
every validation check, cycle search and the parallel stages, with the plan cache off and
networkx already imported. Time should grow about linearly: the per-skill cost is compared
with the 100-skill plan's.

What a skill's declarations alone imply for its step (the keys it may read and write, the
UIF fields it may set) is worked out at its first compile and kept with its spec, so the
timed compiles reuse it, as every later compile of a registered skill does. The row "first
compile" times one compile of 10,000 skills registered just before (networkx imported),
which pays for that too.
"""

from __future__ import annotations

import random

from _common import Row, Section, Target, best_of, make_skill

from sof_core.graph.compile import compile_plan
from sof_core.testing import make_engine


def _random_dag(n: int, seed: int = 7) -> tuple[list[type], list[str]]:
    rng = random.Random(seed)
    classes = []
    for i in range(n):
        requires = sorted({f"k{rng.randrange(i)}" for _ in range(rng.randint(1, 2))}) if i else []
        optional = [f"k{rng.randrange(i)}"] if i > 1 and rng.random() < 0.3 else []
        optional = [k for k in optional if k not in requires]
        classes.append(make_skill(f"G{i}", requires, [f"k{i}"], optional_inputs=optional))
    return classes, [c.skill_name for c in classes]


def run(quick: bool) -> Section:
    section = Section("graph", "Graph build + validation of random DAGs (compile_plan)")
    sizes = (100, 1000) if quick else (100, 1000, 10_000)
    per_skill: dict[int, float] = {}
    timings: dict[int, float] = {}
    for n in sizes:
        classes, plan = _random_dag(n)
        engine = make_engine(classes, enable_plan_cache=False)
        registry, config = engine.registry, engine.config
        compiled = compile_plan(plan, registry, config)  # also imports networkx
        assert compiled.ok, compiled.problems[:3]
        repeat = 3 if n >= 10_000 else 7
        seconds = best_of(
            lambda plan=plan, registry=registry, config=config: compile_plan(plan, registry, config),
            repeat,
        )
        timings[n] = seconds
        per_skill[n] = seconds / n
        base = per_skill[sizes[0]] * n
        section.rows.append(
            Row(f"{n:,} skills: build + validate", seconds * 1e3, "ms", base * 1e3,
                f"linear from {sizes[0]}",
                f"{per_skill[n] * 1e6:.1f} us/skill, {len(compiled.stages)} stages")
        )
    if 10_000 in timings:
        import gc
        import time

        classes, plan = _random_dag(10_000, seed=11)  # new classes: nothing worked out yet
        engine = make_engine(classes, enable_plan_cache=False)
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            compiled = compile_plan(plan, engine.registry, engine.config)
            first = time.perf_counter() - started
        finally:
            gc.enable()
        assert compiled.ok, compiled.problems[:3]
        section.rows.append(Row("10,000 skills: first compile of newly registered skills",
                                first * 1e3, "ms", timings[10_000] * 1e3, "later compiles",
                                "one try: their declarations are worked out here"))
    largest = sizes[-1]
    section.targets.append(Target("10,000 skills build + validate", 150.0, "ms",
                                  timings[10_000] * 1e3 if 10_000 in timings else None))
    section.targets.append(Target(f"per-skill cost at {largest:,} vs 100 (linear growth)", 2.0,
                                  "x", per_skill[largest] / per_skill[sizes[0]]))
    return section
