"""Route observers: how exporters (sof-serve's Prometheus metrics, automatic rollback) see
every router's recorded queries without the core importing them.

Kept apart from ``router.py`` so that registering an observer (every ``sof`` command loads
the plugins that do) does not import the router, its A/B metrics and its thread pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("sof.router")

#: Called after each recorded query as ``observer(router, path, latency, details)``:
#: ``router`` is the ``QueryRouter`` that recorded it (typed ``Any`` here: this module must
#: not import the router, even for type checkers); ``path`` is "sof", "legacy" or "shadow";
#: ``details`` the ``ABMetrics.record`` keywords (``error``, ``fallback_reason``,
#: ``skills_run``, ``skills_failed``), plus the SOF run's ``plan`` and ``planning`` (the
#: report's, set only after ``sof_after_plan``) when there was a run; shadow: ``error``,
#: ``differs``.
RouteObserver = Callable[[Any, str, float, dict[str, Any]], None]

_route_observers: list[RouteObserver] = []


def add_route_observer(observer: RouteObserver) -> None:
    """Register ``observer`` for every router's recorded queries (idempotent)."""
    if observer not in _route_observers:
        _route_observers.append(observer)


def remove_route_observer(observer: RouteObserver) -> None:
    """Stop calling ``observer``; unknown observers are ignored."""
    if observer in _route_observers:
        _route_observers.remove(observer)


def has_route_observers() -> bool:
    return bool(_route_observers)


def tell_route_observers(router: Any, path: str, latency: float, details: dict[str, Any]) -> None:
    """Call every observer; one that raises is logged and never breaks the answer."""
    for observer in list(_route_observers):
        try:
            observer(router, path, latency, details)
        except Exception:
            log.exception("route observer %r failed", observer)
