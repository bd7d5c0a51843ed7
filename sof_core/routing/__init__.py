"""Routing queries between SOF and the legacy pipeline: ``router`` (``QueryRouter``: rollout,
fallback, shadow runs), ``metrics`` (``ABMetrics`` and its alerts) and ``observers`` (who
hears of each routed query).

Names resolve on first use (``sof_core._lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_core._lazy import lazy_exports

if TYPE_CHECKING:
    from sof_core.routing.metrics import ABMetrics, Alert, AlertThresholds
    from sof_core.routing.observers import add_route_observer, remove_route_observer
    from sof_core.routing.router import QueryRouter, RouteResult, rollout_bucket

_LAZY = {
    "ABMetrics": "sof_core.routing.metrics",
    "Alert": "sof_core.routing.metrics",
    "AlertThresholds": "sof_core.routing.metrics",
    "add_route_observer": "sof_core.routing.observers",
    "remove_route_observer": "sof_core.routing.observers",
    "QueryRouter": "sof_core.routing.router",
    "RouteResult": "sof_core.routing.router",
    "rollout_bucket": "sof_core.routing.router",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "ABMetrics",
    "Alert",
    "AlertThresholds",
    "QueryRouter",
    "RouteResult",
    "add_route_observer",
    "remove_route_observer",
    "rollout_bucket",
]
