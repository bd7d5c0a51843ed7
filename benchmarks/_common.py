"""What every benchmark section shares: timing, result rows, targets and skill factories.

A section returns a ``Section``: rows (each figure with the baseline measured in the same run
and their ratio) and targets (a limit, the measured value, PASS/FAIL). Timing is best-of-k
with the garbage collector paused, like ``timeit``, so one unlucky collection or a busy
neighbour process does not decide the figure.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sof_core import UIF, BaseSkillModule


@dataclass
class Row:
    """One figure: ``value`` against ``baseline`` (same unit), ``ratio`` = value / baseline."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = None if self.ratio is None else round(self.ratio, 3)
        data["value"] = round(self.value, 3)
        if self.baseline is not None:
            data["baseline"] = round(self.baseline, 3)
        return data


@dataclass
class Target:
    """A goal from the issue: ``value`` must be at most ``limit`` (None means not measured)."""

    name: str
    limit: float
    unit: str
    value: float | None

    @property
    def passed(self) -> bool | None:
        return None if self.value is None else self.value <= self.limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "limit": self.limit,
            "unit": self.unit,
            "value": None if self.value is None else round(self.value, 3),
            "passed": self.passed,
            "verdict": {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed],
        }


@dataclass
class Section:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "rows": [r.to_dict() for r in self.rows],
            "targets": [t.to_dict() for t in self.targets],
            "notes": list(self.notes),
        }


def best_of(fn: Callable[[], Any], repeat: int, number: int = 1) -> float:
    """Fastest wall time (s) of ``number`` calls of ``fn``, over ``repeat`` tries, GC paused."""
    best = float("inf")
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            for _ in range(number):
                fn()
            best = min(best, time.perf_counter() - started)
    finally:
        if enabled:
            gc.enable()
    return best / number


def best_of_batches(
    make_inputs: Callable[[], list[Any]], consume: Callable[[list[Any]], None], repeat: int
) -> float:
    """Fastest time (s) per input of ``consume(inputs)``; inputs are built outside the clock."""
    best = float("inf")
    enabled = gc.isenabled()
    try:
        for _ in range(repeat):
            inputs = make_inputs()
            gc.collect()
            gc.disable()
            started = time.perf_counter()
            consume(inputs)
            best = min(best, (time.perf_counter() - started) / len(inputs))
            gc.enable()
    finally:
        if enabled:
            gc.enable()
    return best


def best_of_interleaved(
    cases: dict[str, tuple[Callable[[], list[Any]], Callable[[list[Any]], None]]], repeat: int
) -> dict[str, float]:
    """``best_of_batches`` of several cases at once, their batches taken in turn (a, b, c,
    a, b, c, ...). On a machine whose speed drifts over seconds (a shared VM's CPU steal),
    every case then sees the same slow and fast spells, so ratios between them hold."""
    best = dict.fromkeys(cases, float("inf"))
    enabled = gc.isenabled()
    try:
        for _ in range(repeat):
            for name, (make_inputs, consume) in cases.items():
                inputs = make_inputs()
                gc.collect()
                gc.disable()
                started = time.perf_counter()
                consume(inputs)
                best[name] = min(best[name], (time.perf_counter() - started) / len(inputs))
                gc.enable()
    finally:
        if enabled:
            gc.enable()
    return best


# --- skills to measure with ------------------------------------------------------------------


def make_skill(
    name: str,
    requires: Iterable[str] = (),
    outputs: Iterable[str] = (),
    body: Callable[[Any, Any], Any] | None = None,
    **attrs: Any,
) -> type[BaseSkillModule]:
    """A skill class built at run time (benchmarks need hundreds of distinct ones)."""
    outputs = list(outputs)
    key = outputs[0] if outputs else None

    def noop(self: Any, uif: UIF) -> UIF:
        if key is not None:
            uif.intermediate_data[key] = 1
        return uif

    namespace = {
        "skill_name": name,
        "skill_description": f"benchmark skill {name}",
        "required_inputs": list(requires),
        "output_keys": outputs,
        "max_execution_time": None,
        "execute": body or noop,
        **attrs,
    }
    return type(name, (BaseSkillModule,), namespace)


def chain(n: int, prefix: str = "Step", **attrs: Any) -> list[type[BaseSkillModule]]:
    """``n`` no-op skills, each reading the key the previous one writes."""
    return [
        make_skill(f"{prefix}{i}", [f"{prefix.lower()}{i - 1}"] if i else [],
                   [f"{prefix.lower()}{i}"], **attrs)
        for i in range(n)
    ]


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()
