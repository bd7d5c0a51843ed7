"""The `monitor` entry point: the metrics, tracing and alert observers.

Loaded with the other plugins (with or without ``sof serve``), it feeds the Prometheus
metrics from the lifecycle hooks and the router's route observer, emits OpenTelemetry spans
when the extra is installed, and runs the alert monitor (automatic rollback).
"""

from __future__ import annotations

import logging
import sys
from importlib.abc import Loader
from typing import TYPE_CHECKING, Any

from sof_core import hookimpl
from sof_serve.observe import ledger, tracing

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    from sof_core import QueryRouter

log = logging.getLogger("sof.monitor")

_THIS = sys.modules[__name__]
#: The module of ``sof_core.QueryRouter`` and ``sof_core.add_route_observer``. Only a router
#: calls route observers, and none exists before this module is imported; a process that
#: never routes (``sof run``, ``sof plugins``) need not import it (and ``concurrent.futures``
#: and the A/B metrics with it) just to register one. ``install`` registers the observer when
#: the module is first imported (``_RouterWatch``), or at once if it already is.
_ROUTER_MODULE = "sof_core.routing.router"


def _observes(router: QueryRouter) -> bool:
    """Whether this plugin is loaded on the router's engine: like any observer, it sees
    only the engines that loaded it (a router on a bare engine is none of its business)."""
    try:
        impls = router.engine.plugins.observers("sof_after_plan")
    except Exception:
        return False
    return any(impl.plugin is _THIS or impl.function is sof_after_plan for impl in impls)


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
    """Connect the router's route observer and the gauges refresher (idempotent): the route
    observer now if the router module is imported, else as soon as it is."""
    ledger.add_refresher(_refresh)
    if _ROUTER_MODULE in sys.modules:
        _connect()
    elif not any(isinstance(finder, _RouterWatch) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RouterWatch())


def _connect() -> None:
    from sof_core import add_route_observer

    add_route_observer(_on_route)


class _RouterWatch:
    """A ``sys.meta_path`` entry that finds no module itself: it hands the import of
    ``_ROUTER_MODULE`` to the other finders, with a loader that connects the route observer
    once the module has run, and then leaves ``sys.meta_path``."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != _ROUTER_MODULE:
            return None
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None) if finder is not self else None
            spec: ModuleSpec | None = (
                find_spec(name, path, target) if find_spec is not None else None
            )
            if spec is not None:
                if spec.loader is None or not hasattr(spec.loader, "exec_module"):
                    return None  # not a loader this can wrap: the import goes on unwatched
                spec.loader = _ConnectAfter(spec.loader)
                return spec
        return None


class _ConnectAfter(Loader):
    """The router module's own loader, run as is; then the route observer is connected."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The module keeps its real loader (reloads, tracebacks, resources), not this one.
        module.__loader__ = self.loader
        if module.__spec__ is not None and module.__spec__.loader is self:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        for finder in [f for f in sys.meta_path if isinstance(f, _RouterWatch)]:
            sys.meta_path.remove(finder)
        try:
            _connect()
        except Exception:  # an exporter never breaks the host's import of the router
            log.exception("connecting the monitor's route observer failed")


install()


def record_metrics(report: Any) -> None:
    """Keep what the metrics need of a finished run (folded when ``/metrics`` is read).

    The skills' series come from the report's results, not from ``sof_after_skill``: one
    hook call per run instead of one per skill (see ``ledger`` and ``SkillSeries``).
    ``planning`` is read now: a router sets it later.
    """
    ledger.record("plan", ledger.RunRecord(
        str(report.status), list(getattr(report, "errors", ()) or ()), report.plan,
        report.duration, list(getattr(report, "results", None) or ()),
        getattr(report, "planning", None)))


@hookimpl
def sof_after_plan(report: Any) -> None:
    record_metrics(report)
    tracing.record_run(report)


@hookimpl
def sof_alert(kind: str, message: str, details: dict[str, Any]) -> None:
    ledger.record("alert", (kind, details))
