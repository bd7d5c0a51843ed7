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

#: The arguments a route observer is called with, in order.
_ARGNAMES = ("router", "path", "latency", "details")


class _RouteImpl:
    """A route observer as the engine's bounded observer calls see an implementation
    (``execution/observers.py``): its function, arguments, and the names logs and
    ``observer_hung`` alerts give it, worked out once when it is added."""

    __slots__ = ("argnames", "function", "hook_name", "plugin_name")

    def __init__(self, observer: RouteObserver) -> None:
        self.function = observer
        self.argnames = _ARGNAMES
        self.plugin_name = str(getattr(observer, "__module__", None)
                               or type(observer).__module__)
        self.hook_name = str(getattr(observer, "__qualname__", None)
                             or type(observer).__qualname__)


_route_observers: list[_RouteImpl] = []


def add_route_observer(observer: RouteObserver) -> None:
    """Register ``observer`` for every router's recorded queries (idempotent)."""
    if all(impl.function != observer for impl in _route_observers):
        _route_observers.append(_RouteImpl(observer))


def remove_route_observer(observer: RouteObserver) -> None:
    """Stop calling ``observer``; unknown observers are ignored."""
    _route_observers[:] = [impl for impl in _route_observers if impl.function != observer]


def has_route_observers() -> bool:
    return bool(_route_observers)


def tell_route_observers(router: Any, path: str, latency: float, details: dict[str, Any]) -> None:
    """Call every observer; one that raises is logged and never breaks the answer.

    Each call goes through the router's engine (``engine._notify_one``): it runs in the
    engine's observer pool and is waited for at most ``observer_timeout``, unless the
    observer is marked ``@inline_observer`` (it records in memory), like the engine's own
    observer hooks; one that hangs is given up on and skipped until it returns, never
    holding the query that told it.
    """
    notify_one = getattr(getattr(router, "engine", None), "_notify_one", None)
    kwargs = {"router": router, "path": path, "latency": latency, "details": details}
    for impl in list(_route_observers):
        if notify_one is not None:
            try:
                notify_one(impl, impl.hook_name, kwargs)
            except Exception:  # the engine's own failure (its calls never raise)
                log.exception("route observer %r could not be told", impl.function)
            continue
        try:
            impl.function(router, path, latency, details)
        except Exception:
            log.exception("route observer %r failed", impl.function)
