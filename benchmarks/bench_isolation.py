"""What process isolation costs: one skill run isolated (``isolation = "process"``) against
the same skill run in-thread, both through the engine with default settings, in the same run.

Per call an isolated skill pays: pickling the skill and its declared inputs, a round trip
to a worker process, a fork of that worker (hard limits are per call), the call, pickling
back what it wrote, and the replay through its guarded view. Starting a worker is paid
once per worker (on first use, or after a deadline killed one); ``IsolationPool.start()``
pays it ahead of time. The skills are defined here, at module level, so they travel by name
(this module is importable: ``run.py`` puts the benchmarks folder on ``sys.path``); one row
sends the no-op skill's twin, defined inside a function, by value (cloudpickle).
"""

from __future__ import annotations

import time
from typing import Any

from _common import Row, Section, best_of_batches

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine


class NoOp(BaseSkillModule):
    skill_name = "NoOp"
    skill_description = "writes one key"
    required_inputs = ["input_query"]
    output_keys = ["answer"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["answer"] = len(uif.input_query)
        return uif


class Passages(BaseSkillModule):
    skill_name = "Passages"
    skill_description = "reads 20 passages and writes 20 more (a memory skill's payload)"
    required_inputs = ["input_query"]
    optional_inputs = ["passages"]
    output_keys = ["ranked"]

    def execute(self, uif: UIF) -> UIF:
        passages = uif.intermediate_data.get("passages") or []
        uif.intermediate_data["ranked"] = [
            {"id": p["id"], "text": p["text"], "score": 1.0 / (i + 1)}
            for i, p in enumerate(passages)
        ]
        return uif


class Work(BaseSkillModule):
    skill_name = "Work"
    skill_description = "about 20 ms of CPU work"
    required_inputs = ["input_query"]
    output_keys = ["total"]

    def execute(self, uif: UIF) -> UIF:
        deadline = time.perf_counter() + 0.020
        total = 0
        while time.perf_counter() < deadline:
            total += sum(range(1000))
        uif.intermediate_data["total"] = total
        return uif


PASSAGES = [{"id": i, "text": "a passage of retrieved text " * 8, "source": f"doc{i}.md"}
            for i in range(20)]


def _per_call(skill: type[BaseSkillModule], isolated: bool, runs: int, repeat: int,
              data: dict[str, Any] | None = None) -> float:
    config: dict[str, Any] = {"isolate_skills": [skill.skill_name]} if isolated else {}
    engine = make_engine([skill], **config)
    plan = [skill.skill_name]
    for _ in range(5):  # the worker's first calls import what later ones reuse
        engine.execute_plan(plan, UIF(input_query="warm-up", intermediate_data=dict(data or {})))

    def uifs() -> list[UIF]:
        return [UIF(input_query="benchmark", intermediate_data=dict(data or {}))
                for _ in range(runs)]

    def consume(batch: list[UIF]) -> None:
        for uif in batch:
            report = engine.execute_plan(plan, uif)
            assert report.status == "success", report.errors

    return best_of_batches(uifs, consume, repeat)


def _defined_in_a_function() -> type[BaseSkillModule]:
    """``NoOp``'s twin, which no worker can import by name: it travels by value."""

    class NoOpByValue(BaseSkillModule):
        skill_name = "NoOpByValue"
        skill_description = "writes one key; defined inside a function"
        required_inputs = ["input_query"]
        output_keys = ["answer"]

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["answer"] = len(uif.input_query)
            return uif

    return NoOpByValue


def _worker_start() -> float:
    """Seconds from starting a worker to its first answer (a fresh pool, same skill)."""
    from sof_core.execution.isolation import IsolationPool

    engine = make_engine([NoOp], isolate_skills=["NoOp"])
    step = engine.compile(["NoOp"]).steps["NoOp"]
    pool = IsolationPool(1)
    try:
        started = time.perf_counter()
        pool.call(step, UIF(input_query="cold"))
        return time.perf_counter() - started
    finally:
        pool.close()


def run(quick: bool) -> Section:
    section = Section("isolation", "Process isolation: one skill isolated vs in-thread (per call)")
    runs, repeat = (20, 2) if quick else (100, 5)
    cases = [
        ("no-op skill", NoOp, None),
        ("20 passages in, 20 out", Passages, {"passages": PASSAGES}),
        ("~20 ms of CPU work", Work, None),
    ]
    for label, skill, data in cases:
        local = _per_call(skill, False, runs, repeat, data)
        isolated = _per_call(skill, True, runs, repeat, data)
        section.rows.append(
            Row(f"{label}, isolated", isolated * 1e3, "ms", local * 1e3, "same skill in-thread",
                f"+{(isolated - local) * 1e3:.2f} ms per call")
        )
        if skill is NoOp:
            by_value = _per_call(_defined_in_a_function(), True, runs, repeat)
            section.rows.append(
                Row("no-op skill defined in a function (sent by value), isolated",
                    by_value * 1e3, "ms", isolated * 1e3, "the same skill sent by name",
                    f"+{(by_value - isolated) * 1e3:.2f} ms per call for cloudpickle")
            )
    starts = [_worker_start() for _ in range(1 if quick else 3)]
    section.rows.append(
        Row("starting a worker (first call on it)", min(starts) * 1e3, "ms", None, None,
            "once per worker: on first use, or after a deadline killed one")
    )
    section.notes.append(
        "default settings (threads executor, timeouts on); the whole run is timed, so the "
        "in-thread figure includes the engine's own per-run cost"
    )
    return section
