"""Prometheus metrics for SOF, fed by observer hooks and the router's route observers.

One module-level registry (not prometheus-client's global one, so a host's own metrics never
clash with ours) holds every series; ``render_latest()`` is what ``GET /metrics`` serves.
Values that are state rather than events (rollout percentage, alert gauges, process memory)
are read when the exposition is rendered, so they are never stale.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

#: Buckets (s) from a cached plan (~1 ms) to the seed's 10 s alert limit and beyond.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class SOFMetrics:
    """Every SOF series in one registry; methods are what the observer hooks call."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.queries = Counter("sof_queries", "Queries answered, by path and status.",
                               ["path", "status"], registry=r)
        self.shadow = Counter("sof_shadow_runs", "Shadow comparisons, by outcome.",
                              ["outcome"], registry=r)
        self.fallbacks = Counter("sof_fallbacks", "SOF runs answered by legacy, by reason.",
                                 ["reason"], registry=r)
        self.query_latency = Histogram("sof_query_duration_seconds",
                                       "Query latency by path.", ["path"], buckets=_BUCKETS,
                                       registry=r)
        self.query_plan_latency = Histogram("sof_query_plan_duration_seconds",
                                            "SOF query latency, by the plan that ran.",
                                            ["plan"], buckets=_BUCKETS, registry=r)
        # Engine runs (sof_after_plan): a planner's adaptive run that re-plans is one per
        # segment, and a host's legacy pipeline on the engine counts too.
        self.runs = Counter("sof_runs", "Engine plan runs, by status.", ["status"], registry=r)
        self.run_errors = Counter("sof_run_errors", "Errors reported by SOF runs.", registry=r)
        self.run_latency = Histogram("sof_run_duration_seconds", "Plan run latency, by plan.",
                                     ["plan"], buckets=_BUCKETS, registry=r)
        self.skills = Counter("sof_skill_runs", "Skill runs, by skill, plugin and status.",
                              ["skill", "plugin", "status"], registry=r)
        self.skill_latency = Histogram("sof_skill_duration_seconds", "Skill latency, by skill.",
                                       ["skill"], buckets=_BUCKETS, registry=r)
        self.planner = Counter("sof_planner_choices", "Plans chosen, by planner.",
                               ["planner"], registry=r)
        self.planner_fallbacks = Counter("sof_planner_fallbacks",
                                         "Planner fallbacks, from planner to planner.",
                                         ["planner", "to"], registry=r)
        self.plan_cache = Counter("sof_plan_cache_lookups", "Planned runs, by plan-cache result.",
                                  ["result"], registry=r)
        self.abandoned = Counter("sof_skill_abandoned", "Skill calls abandoned after timeout.",
                                 ["skill"], registry=r)
        self.quarantined = Counter("sof_skill_quarantined",
                                   "Skills quarantined for too many hung calls.", ["skill"],
                                   registry=r)
        self.alerts_raised = Counter("sof_alerts_raised", "sof_alert notifications, by kind.",
                                     ["kind"], registry=r)
        self.rollbacks = Counter("sof_auto_rollbacks", "Automatic rollbacks performed.",
                                 registry=r)
        self.rollout = Gauge("sof_rollout_percentage", "Configured SOF rollout percentage.",
                             registry=r)
        self.enabled = Gauge("sof_enabled", "1 when use_sof_framework is on.", registry=r)
        self.auto_rollback = Gauge("sof_auto_rollback_enabled", "1 when auto_rollback is on.",
                                   registry=r)
        self.alert_active = Gauge("sof_alert_active", "1 while an alert's threshold is breached.",
                                  ["alert"], registry=r)
        self.alert_value = Gauge("sof_alert_value", "Current value of each alert's measure.",
                                 ["alert"], registry=r)
        self.alert_threshold = Gauge("sof_alert_threshold", "Threshold of each alert.",
                                     ["alert"], registry=r)
        self.memory_percent = Gauge("sof_process_memory_percent",
                                    "Resident memory of this process, percent of the machine's.",
                                    registry=r)
        ProcessCollector(registry=r)  # process_resident_memory_bytes, cpu, open fds
        self._skill_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._refreshers: list[Callable[[SOFMetrics], None]] = []
        self._lock = threading.Lock()

    # --- fed by the router ---------------------------------------------------------------

    def on_route(self, path: str, latency: float, details: dict[str, Any]) -> None:
        """One recorded query (or shadow comparison) from a ``QueryRouter``."""
        if path == "shadow":
            outcome = "error" if details.get("error") else (
                "differs" if details.get("differs") else "same")
            self.shadow.labels(outcome).inc()
            return
        status = "error" if details.get("error") else "ok"
        self.queries.labels(path, status).inc()
        self.query_latency.labels(path).observe(latency)
        plan = details.get("plan")
        if path == "sof" and plan is not None:
            self.query_plan_latency.labels(",".join(plan) or "-").observe(latency)
        # The router sets report.planning after sof_after_plan: it arrives here instead.
        self.on_planning(details.get("planning"))
        reason = details.get("fallback_reason")
        if reason:
            self.fallbacks.labels(str(reason)).inc()

    # --- fed by the lifecycle hooks ------------------------------------------------------

    def on_skill(self, skill: str, plugin: str | None, status: str, duration: float) -> None:
        key = (skill, plugin or "", status)
        children = self._skill_children.get(key)
        if children is None:  # labels() takes a lock and builds a key: once per label set
            children = (self.skills.labels(*key), self.skill_latency.labels(skill))
            self._skill_children[key] = children
        children[0].inc()
        if status != "skipped":
            children[1].observe(duration)

    def on_plan(self, report: Any) -> None:
        """A finished ``ExecutionReport`` (attributes read defensively: planners evolve)."""
        self.runs.labels(str(report.status)).inc()
        errors = len(getattr(report, "errors", ()) or ())
        if errors:
            self.run_errors.inc(errors)
        self.run_latency.labels(",".join(report.plan) or "-").observe(report.duration)
        self.on_planning(getattr(report, "planning", None))

    def on_planning(self, planning: Any) -> None:
        """How a plan was chosen (``PlanResult.to_dict()``); anything else is ignored."""
        if isinstance(planning, dict):
            planner = planning.get("planner")
            if planner:
                self.planner.labels(str(planner)).inc()
            if "cache_hit" in planning:
                self.plan_cache.labels("hit" if planning["cache_hit"] else "miss").inc()
            for fallback in planning.get("fallbacks") or ():
                if isinstance(fallback, dict):
                    self.planner_fallbacks.labels(str(fallback.get("planner", "")),
                                                  str(fallback.get("to", ""))).inc()

    def on_alert(self, kind: str, details: dict[str, Any]) -> None:
        self.alerts_raised.labels(kind).inc()
        skill = str(details.get("skill", ""))
        if kind == "skill_abandoned":
            self.abandoned.labels(skill).inc()
        elif kind == "skill_quarantined":
            self.quarantined.labels(skill).inc()

    # --- rendering -----------------------------------------------------------------------

    def add_refresher(self, refresh: Callable[[SOFMetrics], None]) -> None:
        """``refresh(metrics)`` runs before each render to set gauges from live state."""
        with self._lock:
            if refresh not in self._refreshers:
                self._refreshers.append(refresh)

    def refresh(self) -> None:
        self.memory_percent.set(process_memory_percent())
        with self._lock:
            refreshers = list(self._refreshers)
        for refresh in refreshers:
            refresh(self)

    def render(self) -> tuple[bytes, str]:
        self.refresh()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def process_memory_percent() -> float:
    """Resident memory of this process as a percent of the machine's (0 when unknown)."""
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * page
        with open("/proc/self/statm", encoding="ascii") as handle:
            resident = int(handle.read().split()[1]) * page
    except (OSError, ValueError, IndexError):
        return 0.0
    return 100.0 * resident / total if total else 0.0


_metrics: SOFMetrics | None = None
_metrics_lock = threading.Lock()


def get_metrics() -> SOFMetrics:
    """The process's SOF metrics (created on first use)."""
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            _metrics = SOFMetrics()
        return _metrics


def set_metrics(metrics: SOFMetrics | None) -> None:
    """Replace the process's metrics (tests start from zero; None: a fresh set on next use)."""
    global _metrics
    with _metrics_lock:
        _metrics = metrics


def render_latest() -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type (what ``GET /metrics`` serves)."""
    return get_metrics().render()


__all__ = ["SOFMetrics", "get_metrics", "process_memory_percent", "render_latest", "set_metrics"]
