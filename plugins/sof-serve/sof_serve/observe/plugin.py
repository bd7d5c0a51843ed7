"""The `monitor` entry point: the metrics, tracing and alert observers.

Loaded with the other plugins (with or without ``sof serve``), it feeds the Prometheus
metrics from the lifecycle hooks and the router's route observer, emits OpenTelemetry spans
when the extra is installed, and runs the alert monitor (automatic rollback).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from sof_core import add_route_observer, hookimpl, inline_observer
from sof_serve.observe import ledger, tracing

if TYPE_CHECKING:
    from sof_core import QueryRouter

_THIS = sys.modules[__name__]


def _observes(router: QueryRouter) -> bool:
    """Whether this plugin is loaded on the router's engine: like any observer, it sees
    only the engines that loaded it (a router on a bare engine is none of its business)."""
    try:
        impls = router.engine.plugins.observers("sof_after_plan")
    except Exception:
        return False
    return any(impl.plugin is _THIS or impl.function is sof_after_plan for impl in impls)


# Inline (called in the router's thread, no hand-off): it records in memory; the alerts it
# may raise go through the engine's bounded notifications (``alerts.AlertMonitor._adopt``).
@inline_observer
def _on_route(router: QueryRouter, path: str, latency: float, details: dict[str, Any]) -> None:
    if not _observes(router):
        return
    ledger.record("route", (path, latency, dict(details)))
    from sof_serve.observe.alerts import get_monitor

    get_monitor().on_route(router, path, latency, details)


def _refresh(metrics: Any) -> None:
    from sof_serve.observe.alerts import get_monitor

    get_monitor().refresh_metrics(metrics)


def install() -> None:
    """Connect the routers' route observer and the gauges refresher (idempotent).

    ``add_route_observer`` lives apart from the router (``sof_core`` exports it lazily), so
    loading this plugin, which every ``sof`` command does, does not import the router, its
    A/B metrics or the alert monitor; those load with the first router or metrics read.
    """
    ledger.add_refresher(_refresh)
    add_route_observer(_on_route)


install()


def record_metrics(report: Any) -> None:
    """Tally what the metrics need of a finished run (folded when ``/metrics`` is read).

    The skills' series come from the report's results, not from ``sof_after_skill``: one
    hook call per run instead of one per skill. The run and its skills are tallied now
    rather than kept (see ``ledger``, ``SkillSeries`` and ``RunSeries``). ``planning`` is
    read now: a router sets it later.
    """
    results = getattr(report, "results", None)
    if results:
        ledger.skills.add(results)
    ledger.add_run(report)
    planning = getattr(report, "planning", None)
    if planning is not None:
        ledger.record("planning", planning)


# Inline (called in the notifying thread, no hand-off) while it only records in memory;
# once spans are made, a span processor may export them before it returns.
@hookimpl
@inline_observer(unless=tracing.emitting)
def sof_after_plan(report: Any) -> None:
    record_metrics(report)
    tracing.record_run(report)


@hookimpl
@inline_observer
def sof_alert(kind: str, message: str, details: dict[str, Any]) -> None:
    ledger.record("alert", (kind, details))
