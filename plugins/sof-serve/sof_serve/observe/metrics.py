"""Prometheus metrics for SOF, fed by observer hooks and the router's route observers.

One module-level registry (not prometheus-client's global one, so a host's own metrics never
clash with ours) holds every series; ``render_latest()`` is what ``GET /metrics`` serves.
Values that are state rather than events (rollout percentage, alert gauges, process memory)
are read when the exposition is rendered, so they are never stale.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString as _untyped_go_string

from sof_serve.observe import ledger
from sof_serve.observe.memory import process_memory_percent

#: prometheus-client's own bucket-label format ("0.001", "30.0"), so labels match its Histogram.
_go_string = cast(Callable[[float], str], _untyped_go_string)

#: Buckets (s) from a cached plan (~1 ms) to the seed's 10 s alert limit and beyond.
_BUCKETS = ledger.BUCKETS
#: Runs the observer hooks keep before the hook's own thread folds them (``ledger``).
TALLY_AT = ledger.TALLY_AT
#: Distinct ``plan`` label values the plan series keep, ``OTHER_PLAN`` included: a client
#: may send any plan to ``POST /v1/query``, and each label value is a series kept for the
#: life of the process. The first ``MAX_PLAN_LABELS - 1`` plans seen get their own.
MAX_PLAN_LABELS = 100
#: The ``plan`` label of every plan first seen after ``MAX_PLAN_LABELS`` others.
OTHER_PLAN = "other"


class SkillSeries(ledger.SkillTally):
    """``sof_skill_runs_total`` and ``sof_skill_duration_seconds``, tallied from finished runs.

    Why not a prometheus-client ``Counter`` and ``Histogram`` fed per skill: every skill of
    every run on every engine pays for an observer that is installed, and a child's
    ``inc()``/``observe()`` (a lock each, the buckets walked in Python) plus a hook call per
    skill cost more than the coordinator itself (about 8 us a skill). The hook tallies each
    run's ``results`` into plain dicts as the run ends (``ledger.skills``); a fold (the
    exposition is rendered, or ``TALLY_AT`` runs wait) merges that tally into this one,
    exposed through a custom collector (prometheus-client's documented way for values kept
    elsewhere). The series, labels and bucket bounds are the same as the standard types
    would give.
    """

    def __init__(self, buckets: Sequence[float] = _BUCKETS) -> None:
        super().__init__(buckets)
        self._labels = _bucket_labels(self._bounds)

    # --- the collector protocol (prometheus_client.registry.Collector) -------------------

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        return self._families(*self.snapshot())

    def _families(self, runs: dict[tuple[str, str, str], int] | None = None,
                  latency: dict[str, list[float]] | None = None) -> list[Metric]:
        counter = CounterMetricFamily("sof_skill_runs", "Skill runs, by skill, plugin and status.",
                                      labels=["skill", "plugin", "status"])
        for key, runs_of_key in (runs or {}).items():
            counter.add_metric(list(key), runs_of_key)
        return [counter, _histogram("sof_skill_duration_seconds", "Skill latency, by skill.",
                                    "skill", self._labels, latency or {})]


def _bucket_labels(bounds: Sequence[float]) -> list[str]:
    """The ``le`` labels of ``bounds`` as prometheus-client writes them, ``+Inf`` last."""
    return [_go_string(b) for b in bounds] + ["+Inf"]


def _histogram(name: str, documentation: str, label: str, bucket_labels: Sequence[str],
               counts_by_value: dict[str, list[float]]) -> HistogramMetricFamily:
    """A histogram family from counts per bucket (``+Inf`` last) then the sum, by label
    value: what prometheus-client's ``Histogram`` exposes for the same observations."""
    histogram = HistogramMetricFamily(name, documentation, labels=[label])
    for value, counts in counts_by_value.items():
        cumulative = 0.0
        buckets: list[tuple[str, float]] = []
        for bucket, count in zip(bucket_labels, counts[:-1], strict=True):
            cumulative += count
            buckets.append((bucket, cumulative))
        histogram.add_metric([value], buckets, counts[-1])
    return histogram


class RunSeries:
    """``sof_run_duration_seconds`` by ``plan`` label, from the runs tallied as they ended
    (``ledger.runs``): merged at a fold, a tally of many runs at once, which a
    prometheus-client ``Histogram`` cannot take (it observes one value at a time). Same
    series, labels and bucket bounds as the standard type."""

    def __init__(self, buckets: Sequence[float] = _BUCKETS) -> None:
        self._bounds = tuple(buckets)
        self._labels = _bucket_labels(self._bounds)
        self._lock = threading.Lock()
        #: plan label -> [count per bucket (+Inf last)..., sum of durations]
        self._plans: dict[str, list[float]] = {}

    def merge(self, plan: str, counts: Sequence[float], total: float) -> None:
        """Add runs of ``plan``: their counts per bucket and the sum of their durations."""
        with self._lock:
            kept = self._plans.get(plan)
            if kept is None:
                kept = self._plans[plan] = [0.0] * (len(self._bounds) + 2)
            for index, count in enumerate(counts):
                kept[index] += count
            kept[-1] += total

    def describe(self) -> Iterable[Metric]:
        return self.collect()

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            plans = {plan: list(kept) for plan, kept in self._plans.items()}
        return [_histogram("sof_run_duration_seconds", "Plan run latency, by plan.", "plan",
                           self._labels, plans)]


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
        # Engine runs (sof_after_plan): a query run_query runs in segments counts once,
        # and a host's legacy pipeline on the engine counts too.
        self.runs = Counter("sof_runs", "Engine plan runs, by status.", ["status"], registry=r)
        self.run_errors = Counter("sof_run_errors", "Errors reported by SOF runs, by the run's "
                                  "status.", ["status"], registry=r)
        self.run_latency = RunSeries()
        r.register(self.run_latency)
        self.skills = SkillSeries()
        r.register(self.skills)
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
        #: The plans that have their own ``plan`` label (at most ``MAX_PLAN_LABELS``).
        self._plan_labels: set[str] = set()
        self._plan_labels_lock = threading.Lock()
        self._fold_lock = threading.Lock()

    # --- events the observer hooks left in the ledger ------------------------------------

    def fold(self) -> None:
        """Apply what the hooks recorded (``sof_serve.observe.ledger``) to the series."""
        with self._fold_lock:
            self.skills.merge(*ledger.skills.take())
            for (status, plan), tally in ledger.runs.take().items():
                self._add_runs(status, plan, tally)
            for kind, payload in ledger.drain():
                if kind == "planning":
                    self.on_planning(payload)
                elif kind == "route":
                    self.on_route(*payload)
                elif kind == "alert":
                    self.on_alert(*payload)

    def plan_label(self, plan: Iterable[str]) -> str:
        """The ``plan`` label of a plan: its skills joined by commas for the first
        ``MAX_PLAN_LABELS - 1`` distinct plans seen, ``OTHER_PLAN`` for every later new one
        (so the ``plan`` series never hold more than ``MAX_PLAN_LABELS`` label values)."""
        label = ",".join(plan) or "-"
        if label in self._plan_labels:
            return label
        with self._plan_labels_lock:
            if label in self._plan_labels:
                return label
            if len(self._plan_labels) >= MAX_PLAN_LABELS - 1:
                return OTHER_PLAN
            self._plan_labels.add(label)
            return label

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
            self.query_plan_latency.labels(self.plan_label(plan)).observe(latency)
        # How the plan was chosen is counted once, from the report sof_after_plan gets
        # (``on_plan``): the engine sets its planning before observers are told.
        reason = details.get("fallback_reason")
        if reason:
            self.fallbacks.labels(str(reason)).inc()

    # --- fed by the lifecycle hooks ------------------------------------------------------

    def on_plan(self, report: Any) -> None:
        """A finished ``ExecutionReport`` (attributes read defensively: planners evolve),
        with its skills' results: what ``record_metrics`` tallies, applied at once."""
        tally = ledger.RunTally()
        tally.add_report(report)
        for (status, plan), counts in tally.take().items():
            self._add_runs(status, plan, counts)
        results = getattr(report, "results", None)
        if results:
            self.skills.add(results)
        planning = getattr(report, "planning", None)
        if planning is not None:
            self.on_planning(planning)

    def _add_runs(self, status: str, plan: Sequence[str], tally: list[Any]) -> None:
        """Runs of ``plan`` that ended with ``status``, as ``ledger.RunTally`` keeps them."""
        self.runs.labels(status).inc(tally[0])
        errors = self.run_errors.labels(status)  # a 0 series too: every status has one
        if tally[1]:
            errors.inc(tally[1])
        self.run_latency.merge(self.plan_label(plan), tally[3:], tally[2])

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

    def refresh(self) -> None:
        self.fold()
        self.memory_percent.set(process_memory_percent())
        for refresh in list(ledger.refreshers):
            refresh(self)

    def render(self) -> tuple[bytes, str]:
        self.refresh()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


_metrics: SOFMetrics | None = None
_metrics_lock = threading.Lock()


def get_metrics() -> SOFMetrics:
    """The process's SOF metrics (created on first use)."""
    global _metrics
    metrics = _metrics
    if metrics is not None:  # every run asks: no lock once made
        return metrics
    with _metrics_lock:
        if _metrics is None:
            _metrics = SOFMetrics()
        return _metrics


def set_metrics(metrics: SOFMetrics | None) -> None:
    """Replace the process's metrics (tests start from zero; None: a fresh set on next use);
    events not yet folded into the old ones are dropped with them."""
    global _metrics
    with _metrics_lock:
        _metrics = metrics
        ledger.clear()


def render_latest() -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type (what ``GET /metrics`` serves)."""
    return get_metrics().render()


__all__ = [
    "MAX_PLAN_LABELS",
    "OTHER_PLAN",
    "TALLY_AT",
    "RunSeries",
    "SOFMetrics",
    "SkillSeries",
    "get_metrics",
    "process_memory_percent",
    "render_latest",
    "set_metrics",
]
