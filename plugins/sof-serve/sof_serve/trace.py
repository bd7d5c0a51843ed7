"""Where a run's time went: skill start times, the plan graph, per-skill statistics.

``ExecutionReport`` records each skill's duration and stage but not when it started, so the
server registers ``TimelineObserver`` on its engine: ``sof_before_skill`` notes the start of
each skill (by the run's ``task_id``) and ``timeline`` turns those into offsets from the
run's start, for the page's time axis. Runs the observer never saw (a host's own engine)
get a timeline laid out from the stage order and durations, marked ``measured: false``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

from sof_core import hookimpl, inline_observer

#: Runs whose skill start times are kept while they run (a bound, not an expected load).
MAX_RUNS_TRACKED = 4096


class TimelineObserver:
    """Records when each skill of each run started (monotonic seconds)."""

    def __init__(self) -> None:
        self._starts: dict[str, dict[str, float]] = {}
        self._plan_starts: dict[str, float] = {}
        self._lock = threading.Lock()

    @hookimpl
    @inline_observer  # a dict store under a lock held for microseconds
    def sof_before_plan(self, plan: list[str], uif: Any) -> None:
        task = _task_id(uif)
        if task is None:
            return
        with self._lock:
            if len(self._plan_starts) >= MAX_RUNS_TRACKED:  # runs that never reported back
                self._plan_starts.clear()
                self._starts.clear()
            # The first plan of the query: a host may run several plans on one UIF.
            self._plan_starts.setdefault(task, time.perf_counter())

    @hookimpl
    @inline_observer
    def sof_before_skill(self, skill: Any, uif: Any) -> None:
        task = _task_id(uif)
        if task is None:
            return
        now = time.perf_counter()
        with self._lock:
            if task in self._plan_starts:
                self._starts.setdefault(task, {})[skill.name] = now

    def pop(self, task_id: str) -> tuple[float | None, dict[str, float]]:
        """The run's start and its skills' starts, forgotten once taken."""
        with self._lock:
            return self._plan_starts.pop(task_id, None), self._starts.pop(task_id, {})


def _task_id(uif: Any) -> str | None:
    try:
        task = uif.task_id
    except Exception:  # a view that hides it: no timeline for this run, nothing breaks
        return None
    return task if isinstance(task, str) else None


def timeline(report: dict[str, Any], plan_start: float | None,
             starts: dict[str, float]) -> dict[str, Any]:
    """Skills as bars on a time axis, in ms from the run's start; stages as bands."""
    skills = report.get("skills") or []
    bars: list[dict[str, Any]] = []
    measured = plan_start is not None and bool(starts)
    if measured:
        assert plan_start is not None
        for item in skills:
            start = starts.get(item["skill"])
            if start is None:  # skipped: it never started
                continue
            offset = (start - plan_start) * 1000
            bars.append(_bar(item, offset))
        _end_before_next_stage(bars, report.get("duration_ms"))
    else:  # laid out: each stage starts when the slowest skill of the one before ended
        offset = 0.0
        for index, _stage in enumerate(report.get("stages") or []):
            ran = [s for s in skills if s.get("stage") == index and s["status"] != "skipped"]
            for item in ran:
                bars.append(_bar(item, offset))
            offset += max((s["duration_ms"] for s in ran), default=0.0)
    stages = []
    for index, names in enumerate(report.get("stages") or []):
        inside = [b for b in bars if b["stage"] == index]
        if inside:
            stages.append({"stage": index, "skills": list(names),
                           "start_ms": min(b["start_ms"] for b in inside),
                           "end_ms": max(b["end_ms"] for b in inside)})
    return {"measured": measured, "total_ms": report.get("duration_ms"), "stages": stages,
            "skills": bars}


def _end_before_next_stage(bars: list[dict[str, Any]], total_ms: Any) -> None:
    """End each measured bar by the time the next stage began (and within the run).

    A skill's duration is timed from just before SOF builds its view, its start noted just
    after (``sof_before_skill``): start + duration overshoots its real end by that gap,
    which under load (the thread preempted there) can be milliseconds. Stages run one after
    another, so the skill really ended before any skill of a later stage started.
    """
    first_start: dict[int, float] = {}
    for bar in bars:
        stage = bar["stage"]
        first_start[stage] = min(first_start.get(stage, math.inf), bar["start_ms"])
    total = float(total_ms) if isinstance(total_ms, (int, float)) else math.inf
    for bar in bars:
        limit = min([s for stage, s in first_start.items() if stage > bar["stage"]] + [total])
        if bar["end_ms"] > limit:
            bar["end_ms"] = round(max(bar["start_ms"], limit), 3)


def _bar(item: dict[str, Any], offset: float) -> dict[str, Any]:
    return {"skill": item["skill"], "stage": item.get("stage", 0), "status": item["status"],
            "plugin": item.get("plugin"), "start_ms": round(offset, 3),
            "end_ms": round(offset + float(item.get("duration_ms") or 0.0), 3)}


def plan_graph(engine: Any, plan: list[str]) -> dict[str, Any]:
    """The plan's skills and which output of one feeds which other (from the compiled plan)."""
    nodes: list[dict[str, Any]] = [{"skill": name} for name in plan]
    edges: list[dict[str, str]] = []
    if not plan:
        return {"nodes": nodes, "edges": edges, "stages": []}
    try:
        compiled = engine.compile(plan)
    except Exception:  # a plan that does not compile still shows its skills
        return {"nodes": nodes, "edges": edges, "stages": []}
    for name, step in compiled.steps.items():
        for key, producer in sorted(step.producer_of.items()):
            edges.append({"from": producer, "to": name, "key": key})
    stage_of = {n: i for i, stage in enumerate(compiled.stages) for n in stage}
    for node in nodes:
        node["stage"] = stage_of.get(node["skill"])
    return {"nodes": nodes, "edges": edges, "stages": [list(s) for s in compiled.stages]}


class SkillStats:
    """Per skill: runs, failures and recent latencies (a bounded window) for the page."""

    def __init__(self, window: int = 1000) -> None:
        self._window = window
        self._skills: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def add(self, skills: list[dict[str, Any]]) -> None:
        with self._lock:
            for item in skills:
                if item["status"] == "skipped":
                    continue
                stats = self._skills.get(item["skill"])
                if stats is None:
                    stats = self._skills[item["skill"]] = {
                        "runs": 0, "errors": 0, "latencies": deque(maxlen=self._window),
                        "plugin": item.get("plugin")}
                stats["runs"] += 1
                stats["errors"] += item["status"] in ("failed", "timeout")
                stats["latencies"].append(float(item.get("duration_ms") or 0.0))

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = []
            for name, stats in sorted(self._skills.items()):
                ordered = sorted(stats["latencies"])
                rows.append({
                    "skill": name, "plugin": stats["plugin"], "runs": stats["runs"],
                    "errors": stats["errors"],
                    "error_rate": stats["errors"] / stats["runs"] if stats["runs"] else 0.0,
                    "p50_ms": _percentile(ordered, 50), "p95_ms": _percentile(ordered, 95),
                })
            return rows


def _percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (the same rule as the router's A/B metrics)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)
