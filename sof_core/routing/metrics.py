"""A/B comparison metrics for the migration: SOF against the legacy pipeline, per path.

For each path the router records count, errors, fallbacks (SOF runs that handed the query to
legacy, by reason), latency percentiles and, for SOF, skill outcomes. Memory is bounded: the
latencies are a ring buffer of the last ``latency_window`` queries, alert windows are fixed
size, and shadow-mode keeps only the last ``max_examples`` differing answers.

Alerts follow the seed's thresholds (error rate > 5 %, response time > 10 s, skill failure
rate > 10 %), each evaluated over a sliding window of recent queries once it holds
``min_samples``. "Response time > 10 s" means the window's p95 is above 10 s, i.e. more than
5 % of recent queries took longer. An alert is returned once when its threshold is crossed
and again only after the value has come back under it; the router sends it as ``sof_alert``.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

PATHS = ("sof", "legacy")


@dataclass(frozen=True)
class AlertThresholds:
    """When ``sof_alert`` fires. Rates are fractions (0.05 is 5 %), times are seconds."""

    error_rate: float = 0.05
    response_time: float = 10.0
    skill_failure_rate: float = 0.10
    #: Share of queries allowed above ``response_time`` (0.05: the p95 must stay under it).
    slow_share: float = 0.05
    #: Recent queries (or skill runs) each rate is computed over.
    window: int = 1000
    #: No alert until the window holds this many samples (one early error is not 100 %).
    min_samples: int = 20


@dataclass(frozen=True)
class Alert:
    """One crossed threshold: what, on which path, the value and the limit."""

    kind: str
    path: str
    #: The measure compared with ``threshold``: a rate, or for ``response_time`` the p95
    #: latency in seconds of the window's queries.
    value: float
    threshold: float
    samples: int
    #: ``response_time`` only: the share of the window's queries above ``threshold``.
    slow_share: float | None = None

    @property
    def message(self) -> str:
        if self.kind == "response_time":
            return (
                f"{self.path}: p95 latency {self.value:.2f}s over the last {self.samples} "
                f"queries is above {self.threshold:g}s ({self.slow_share or 0:.0%} of them "
                "took longer)"
            )
        what = self.kind.replace("_", " ")
        return (
            f"{self.path}: {what} {self.value:.1%} over the last {self.samples} "
            f"exceeds {self.threshold:.0%}"
        )

    def details(self) -> dict[str, Any]:
        details = {
            "path": self.path,
            "value": self.value,
            "threshold": self.threshold,
            "samples": self.samples,
        }
        if self.slow_share is not None:
            details["slow_share"] = self.slow_share
        return details


class _Window:
    """A fixed-size window of booleans with a running count of the true ones."""

    __slots__ = ("hits", "items")

    def __init__(self, size: int) -> None:
        self.items: deque[bool] = deque(maxlen=size)
        self.hits = 0

    def add(self, value: bool) -> None:
        items = self.items
        if len(items) == items.maxlen and items[0]:
            self.hits -= 1
        items.append(value)
        if value:
            self.hits += 1

    def __len__(self) -> int:
        return len(self.items)

    @property
    def rate(self) -> float:
        return self.hits / len(self.items) if self.items else 0.0


class _PathStats:
    def __init__(self, latency_window: int, alert_window: int) -> None:
        self.count = 0
        self.errors = 0
        self.fallbacks = 0
        self.fallback_reasons: dict[str, int] = {}
        self.latencies: deque[float] = deque(maxlen=latency_window)
        self.skill_runs = 0
        self.skill_failures = 0
        self.recent_errors = _Window(alert_window)
        self.recent_slow = _Window(alert_window)
        self.recent_skills = _Window(alert_window)

    def snapshot(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "count": self.count,
            "errors": self.errors,
            "error_rate": self.errors / self.count if self.count else 0.0,
            "fallbacks": self.fallbacks,
            "fallback_reasons": dict(self.fallback_reasons),
            "latency_ms": {
                "p50": _percentile(ordered, 50),
                "p95": _percentile(ordered, 95),
                "p99": _percentile(ordered, 99),
                "samples": len(ordered),
            },
            "skill_runs": self.skill_runs,
            "skill_failures": self.skill_failures,
            "skill_failure_rate": (
                self.skill_failures / self.skill_runs if self.skill_runs else 0.0
            ),
        }


def _percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted seconds, in milliseconds (None when empty)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1000, 3)


class ABMetrics:
    """Thread-safe per-path metrics, shadow-mode comparisons and threshold alerts."""

    def __init__(
        self,
        *,
        latency_window: int = 10_000,
        max_examples: int = 50,
        thresholds: AlertThresholds | None = None,
    ) -> None:
        if latency_window < 1 or max_examples < 0:
            raise ValueError("latency_window must be >= 1 and max_examples >= 0")
        self.latency_window = latency_window
        self.max_examples = max_examples
        self.thresholds = thresholds or AlertThresholds()
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start counting from zero (e.g. after changing the rollout)."""
        window = self.thresholds.window
        with self._lock:
            self._paths = {p: _PathStats(self.latency_window, window) for p in PATHS}
            self._shadow_runs = 0
            self._shadow_differences = 0
            self._shadow_errors = 0
            self._shadow_dropped = 0
            self._examples: deque[dict[str, Any]] = deque(maxlen=self.max_examples)
            self._active: set[tuple[str, str]] = set()
            self._alerts_fired = 0

    # --- recording -----------------------------------------------------------------------

    def record(
        self,
        path: str,
        latency: float,
        *,
        error: bool = False,
        fallback_reason: str | None = None,
        skills_run: int = 0,
        skills_failed: int = 0,
    ) -> list[Alert]:
        """Record one query on ``path``; returns the alerts whose threshold it just crossed."""
        if path not in PATHS:
            raise ValueError(f"unknown path {path!r}; expected one of {PATHS}")
        limits = self.thresholds
        with self._lock:
            stats = self._paths[path]
            stats.count += 1
            stats.latencies.append(latency)
            if error:
                stats.errors += 1
            if fallback_reason is not None:
                stats.fallbacks += 1
                stats.fallback_reasons[fallback_reason] = (
                    stats.fallback_reasons.get(fallback_reason, 0) + 1
                )
            stats.skill_runs += skills_run
            stats.skill_failures += skills_failed
            stats.recent_errors.add(error)
            stats.recent_slow.add(latency > limits.response_time)
            for index in range(skills_run):
                stats.recent_skills.add(index < skills_failed)
            checks = [
                ("error_rate", stats.recent_errors, limits.error_rate, limits.error_rate),
                ("response_time", stats.recent_slow, limits.slow_share, limits.response_time),
            ]
            if skills_run:
                checks.append(("skill_failure_rate", stats.recent_skills,
                               limits.skill_failure_rate, limits.skill_failure_rate))
            return [self._as_p95(alert, stats.latencies) if alert.kind == "response_time"
                    else alert for alert in self._crossed(path, checks)]

    @staticmethod
    def _as_p95(alert: Alert, latencies: deque[float]) -> Alert:
        """A ``response_time`` alert as the p95 of the window's latencies (seconds), which
        ``threshold`` is in; the slow share that crossed is kept beside it."""
        recent = sorted(list(latencies)[-alert.samples:])
        p95 = _percentile(recent, 95)
        value = p95 / 1000 if p95 is not None else alert.threshold
        return dataclasses.replace(alert, value=value, slow_share=alert.value)

    def _crossed(self, path: str, checks: list[tuple[str, _Window, float, float]]) -> list[Alert]:
        alerts: list[Alert] = []
        for kind, window, limit, reported in checks:
            key = (path, kind)
            rate = window.rate
            if len(window) >= self.thresholds.min_samples and rate > limit:
                if key not in self._active:
                    self._active.add(key)
                    self._alerts_fired += 1
                    alerts.append(Alert(kind, path, rate, reported, len(window)))
            else:
                self._active.discard(key)
        return alerts

    def record_shadow(
        self,
        query: str,
        primary_path: str,
        primary_response: str | None,
        shadow_response: str | None,
        *,
        shadow_error: str | None = None,
    ) -> bool:
        """Record a shadow comparison; returns whether the two answers differ."""
        differs = shadow_error is not None or _normalise(primary_response) != _normalise(
            shadow_response
        )
        with self._lock:
            self._shadow_runs += 1
            if shadow_error is not None:
                self._shadow_errors += 1
            if differs:
                self._shadow_differences += 1
                if self.max_examples:
                    self._examples.append(
                        {
                            "query": _clip(query),
                            "primary_path": primary_path,
                            "primary_response": _clip(primary_response),
                            "shadow_response": _clip(shadow_response),
                            "shadow_error": _clip(shadow_error),
                        }
                    )
        return differs

    def record_shadow_dropped(self) -> None:
        """A shadow run was skipped because too many were already in flight."""
        with self._lock:
            self._shadow_dropped += 1

    # --- reading -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything as plain data (JSON-ready); latencies in milliseconds."""
        with self._lock:
            runs = self._shadow_runs
            return {
                "paths": {name: stats.snapshot() for name, stats in self._paths.items()},
                "shadow": {
                    "runs": runs,
                    "differences": self._shadow_differences,
                    "difference_rate": self._shadow_differences / runs if runs else 0.0,
                    "errors": self._shadow_errors,
                    "dropped": self._shadow_dropped,
                    "examples": list(self._examples),
                },
                "alerts": {
                    "active": sorted(f"{path}:{kind}" for path, kind in self._active),
                    "fired": self._alerts_fired,
                },
            }


def _normalise(text: str | None) -> str | None:
    return None if text is None else " ".join(text.split())


def _clip(text: str | None, limit: int = 500) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


__all__ = ["PATHS", "ABMetrics", "Alert", "AlertThresholds"]
