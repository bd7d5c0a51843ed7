"""The seed's alert thresholds over a sliding time window, and alerts that act.

Every query a ``QueryRouter`` records reaches ``AlertMonitor.on_route``. The monitor keeps
the queries of the last ``alert_window_seconds`` per path and, after each one, evaluates the
seed's thresholds (config keys ``alert_*``): error rate, p95 response time and skill failure
rate per path, and this process's memory. A threshold newly crossed is raised once through
``sof_alert`` (kind ``threshold_<name>``) and shown as a gauge in ``/metrics``; it can be
raised again after the value has come back under it.

With ``auto_rollback`` on, a breach of the error-rate or response-time threshold on the SOF
path lowers ``sof_rollout_percentage`` by ``auto_rollback_step`` through
``SOFConfigManager.set_rollout_percentage`` (the atomic write ``sof config rollout`` uses),
records who/what/why/when, and clears the SOF window, so the rollout stays where it was set
until a person raises it and a fresh window is judged from then on.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sof_serve.observe.memory import process_memory_percent

if TYPE_CHECKING:  # prometheus-client is imported only when metrics are rendered
    from sof_serve.observe.metrics import SOFMetrics

log = logging.getLogger("sof.alerts")

#: Alerts whose breach on the SOF path rolls the rollout back.
ROLLBACK_ON = ("error_rate", "response_time")
#: "Response time > limit" means the window's p95 is above it: more than 5 % slower.
SLOW_SHARE = 0.05
_PATHS = ("sof", "legacy")


@dataclass(frozen=True)
class _Sample:
    at: float
    latency: float
    error: bool
    fallback: bool
    skills_run: int
    skills_failed: int


class _Window:
    """One path's samples in the window, with running sums so judging a query is O(1)
    (plus the samples leaving the window), whatever the traffic."""

    __slots__ = ("errors", "failed", "items", "runs", "slow", "slow_limit")

    def __init__(self) -> None:
        self.items: deque[_Sample] = deque()
        self.errors = self.runs = self.failed = self.slow = 0
        self.slow_limit = math.inf

    def add(self, sample: _Sample) -> None:
        self.items.append(sample)
        self._count(sample, 1)

    def _count(self, sample: _Sample, sign: int) -> None:
        self.errors += sign * sample.error
        self.runs += sign * sample.skills_run
        self.failed += sign * sample.skills_failed
        self.slow += sign * (sample.latency > self.slow_limit)

    def prune(self, oldest: float) -> None:
        items = self.items
        while items and items[0].at < oldest:
            self._count(items.popleft(), -1)

    def slow_share(self, limit: float) -> float:
        """Share of the window's queries slower than ``limit`` (recounted if it changed)."""
        if limit != self.slow_limit:
            self.slow_limit = limit
            self.slow = sum(1 for s in self.items if s.latency > limit)
        return self.slow / len(self.items) if self.items else 0.0

    def clear(self) -> None:
        self.items.clear()
        self.errors = self.runs = self.failed = self.slow = 0


@dataclass(frozen=True)
class Thresholds:
    """The live thresholds (read from the config on every evaluation)."""

    error_rate: float = 0.05
    response_time: float = 10.0
    memory_percent: float = 80.0
    skill_failure_rate: float = 0.10
    window_seconds: float = 60.0
    min_samples: int = 20

    @classmethod
    def from_config(cls, config: Any) -> Thresholds:
        if config is None:
            return cls()
        return cls(
            error_rate=float(getattr(config, "alert_error_rate", cls.error_rate)),
            response_time=float(getattr(config, "alert_response_time", cls.response_time)),
            memory_percent=float(getattr(config, "alert_memory_percent", cls.memory_percent)),
            skill_failure_rate=float(
                getattr(config, "alert_skill_failure_rate", cls.skill_failure_rate)),
            window_seconds=float(getattr(config, "alert_window_seconds", cls.window_seconds)),
            min_samples=int(getattr(config, "alert_min_samples", cls.min_samples)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "response_time": self.response_time,
            "memory_percent": self.memory_percent,
            "skill_failure_rate": self.skill_failure_rate,
            "window_seconds": self.window_seconds,
            "min_samples": self.min_samples,
        }


def _p95(latencies: list[float]) -> float | None:
    if not latencies:
        return None
    ordered = sorted(latencies)
    return ordered[max(1, math.ceil(0.95 * len(ordered))) - 1]


class AlertMonitor:
    """Sliding-window thresholds, ``sof_alert`` on crossings, and automatic rollback.

    ``clock`` (monotonic seconds) and ``wall`` (epoch seconds) are injectable so tests move
    time instead of sleeping; ``memory`` returns the process's memory percent.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        memory: Callable[[], float] = process_memory_percent,
        manager: Any = None,
        notify: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.clock = clock
        self.wall = wall
        self.memory = memory
        self.manager = manager
        self._notify = notify
        #: Given ones stay; otherwise the last router seen lends its manager and plugins.
        self._own_manager = manager is not None
        self._own_notify = notify is not None
        self._plugins: Any = None
        self._lock = threading.RLock()
        self._start_window()
        self.thresholds = Thresholds()
        self._config: Any = None

    def _start_window(self) -> None:
        """What the monitor judges one config file on, empty (at start, and for another
        config file: ``_judge_through``)."""
        self._samples: dict[str, _Window] = {p: _Window() for p in _PATHS}
        self._active: set[str] = set()
        #: Active SOF alerts a rollback was tried for (one per breach; see ``evaluate``).
        self._acted: set[str] = set()
        self._values: dict[str, float | None] = {}
        #: Queries in the window behind each path's value (what ``min_samples`` counts).
        self._counts: dict[str, int] = {}
        self.rollbacks: list[dict[str, Any]] = []
        #: (what overrides it, the rollout in effect, the alert, why) after a rollback that
        #: an environment variable or argument kept from taking effect: not repeated while
        #: that holds, tried again (the alert still breached) as soon as it changes.
        self._overridden: tuple[str, float, str, str] | None = None

    # --- input ---------------------------------------------------------------------------

    def on_route(self, router: Any, path: str, latency: float, details: dict[str, Any]) -> None:
        """A router recorded one query (route observer; shadow comparisons are ignored)."""
        if path not in _PATHS:
            return
        if router is not None:
            self._adopt(router)
        sample = _Sample(self.clock(), latency, bool(details.get("error")),
                         bool(details.get("fallback_reason")),
                         int(details.get("skills_run") or 0),
                         int(details.get("skills_failed") or 0))
        with self._lock:
            self._samples[path].add(sample)
        self.evaluate()

    def adopt(self, router: Any) -> None:
        """Judge and roll back through the config of ``router`` (the router that sent the
        query, or a service's router as it starts, so that its config is read before its
        first query)."""
        self._adopt(router)

    def _adopt(self, router: Any) -> None:
        if not self._own_manager:
            manager = getattr(router, "manager", None)
            if manager is not None:
                self._judge_through(manager)
        if not self._own_notify:
            engine = getattr(router, "engine", None)
            plugins = getattr(engine, "plugins", None)
            if plugins is not None and self._plugins is not plugins:
                self._plugins = plugins
                # Through the engine when it can: each alert observer gets at most its
                # observer_timeout there, so a hung one cannot hold the query that alerted.
                tell = getattr(engine, "notify_observers", None) or plugins.notify
                self._notify = lambda kind, message, data: tell(
                    "sof_alert", kind=kind, message=message, details=data)

    def _judge_through(self, manager: Any) -> None:
        """Use ``manager``'s config from now on. Another config file than the one judged so
        far is another deployment (a new service, a test with its own ``SOF_CONFIG``): its
        window starts empty, with no alert active, no rollback on record and no masked
        rollback, so it is never judged, or rolled back, on the queries of the one before."""
        with self._lock:
            previous = self.manager
            if manager is previous:
                return
            self.manager = manager
            if previous is not None and _path_of(previous) != _path_of(manager):
                self._start_window()

    # --- evaluation ----------------------------------------------------------------------

    def _live_config(self) -> Any:
        """The config to judge by: the given manager's, the last router's, else (before any
        query: a fresh server scraped by Prometheus) the host's, as the page reads it."""
        manager = self.manager
        try:
            if manager is None:
                from sof_core.config import get_sof_config_manager

                manager = get_sof_config_manager()
            return manager.state().config
        except Exception:  # a broken config must not stop the alerts
            log.debug("reading the config for alerts failed", exc_info=True)
            return None

    def _prune(self, now: float, window: float) -> None:
        for samples in self._samples.values():
            samples.prune(now - window)

    def _measure(self, limits: Thresholds) -> dict[str, tuple[float | None, float, int]]:
        """Per alert name: (current value, threshold, samples).

        "Response time > limit" is judged as the window's p95 above the limit, i.e. more
        than 5 % of its queries slower than the limit (a running count); the p95 itself is
        computed for display only (``state``)."""
        out: dict[str, tuple[float | None, float, int]] = {}
        for path in _PATHS:
            window = self._samples[path]
            count = len(window.items)
            out[f"{path}:error_rate"] = (window.errors / count if count else None,
                                         limits.error_rate, count)
            # judged on the share slower than the limit: the p95 is above the limit exactly
            # when more than 5 % are
            out[f"{path}:response_time"] = (
                window.slow_share(limits.response_time) if count else None, SLOW_SHARE, count)
            out[f"{path}:skill_failure_rate"] = (
                window.failed / window.runs if window.runs else None,
                limits.skill_failure_rate, count)
        out["process:memory_percent"] = (self.memory(), limits.memory_percent, 1)
        return out

    def evaluate(self) -> list[str]:
        """Re-judge every threshold now; returns the alerts newly raised."""
        config = self._live_config()
        limits = Thresholds.from_config(config)
        raised: list[tuple[str, str, dict[str, Any]]] = []
        rollback: tuple[str, str] | None = None
        auto_rollback = bool(getattr(config, "auto_rollback", False))
        with self._lock:
            self.thresholds, self._config = limits, config
            now = self.clock()
            self._prune(now, limits.window_seconds)
            measured = self._measure(limits)
            for name, (value, threshold, samples) in measured.items():
                self._values[name] = value if not name.endswith(":response_time") else None
                if not name.startswith("process:"):
                    self._counts[name] = samples
                enough = name.startswith("process:") or samples >= limits.min_samples
                breached = value is not None and enough and value > threshold
                if not breached:
                    self._active.discard(name)
                    self._acted.discard(name)
                    continue
                path, kind = name.split(":")
                eligible = (path == "sof" and kind in ROLLBACK_ON and rollback is None
                            and auto_rollback and name not in self._acted)
                if name in self._active and not eligible:
                    continue
                if kind == "response_time":  # report the p95 against the limit in seconds
                    value = self._p95(path) or 0.0
                    threshold = limits.response_time
                message = (f"{path}: {kind.replace('_', ' ')} {value:.4g} over the last "
                           f"{limits.window_seconds:g}s exceeds {threshold:g}")
                if name not in self._active:
                    self._active.add(name)
                    raised.append((f"threshold_{kind}", message, {
                        "path": path, "value": value, "threshold": threshold,
                        "samples": samples, "window_seconds": limits.window_seconds}))
                if eligible:
                    # Newly crossed, or crossed while auto_rollback was off and still
                    # breached now that it is on: one rollback per breach.
                    rollback = (name, message)
                    self._acted.add(name)
        for kind, message, details in raised:
            log.warning("SOF alert %s: %s", kind, message)
            self._send(kind, message, details)
        masked = self._overridden
        if rollback is None and masked is not None and config is not None:
            with self._lock:
                still = masked[2] in self._active
            if still and not self._still_overridden(masked, config):
                rollback = (masked[2], masked[3])
        if rollback is not None and config is not None and getattr(config, "auto_rollback",
                                                                   False):
            self._roll_back(config, *rollback)
        return [kind for kind, _, _ in raised]

    def _p95(self, path: str) -> float | None:
        return _p95([sample.latency for sample in self._samples[path].items])

    def _override(self) -> str | None:
        """What overrides the config file's ``sof_rollout_percentage`` ("environment
        SOF_ROLLOUT_PERCENTAGE", "argument"), or None."""
        overridden = getattr(self.manager, "overridden", None)
        if overridden is None:
            return None
        try:
            source = overridden("sof_rollout_percentage")
        except Exception:
            log.debug("reading where the rollout comes from failed", exc_info=True)
            return None
        return str(source) if source else None

    def _still_overridden(self, masked: tuple[str, float, str, str], config: Any) -> bool:
        """Whether the override that masked the last rollback still holds the rollout."""
        return (self._override(), float(config.sof_rollout_percentage)) == masked[:2]

    def _roll_back(self, config: Any, name: str, why: str) -> None:
        masked = self._overridden
        if masked is not None:
            if self._still_overridden(masked, config):
                return  # already rolled back in the file and reported as overridden
            self._overridden = None  # the override changed: judge it afresh
        current = float(config.sof_rollout_percentage)
        if current <= 0 or self.manager is None:
            return
        step = float(getattr(config, "auto_rollback_step", 100.0))
        target = max(0.0, current - step)
        try:
            self.manager.set_rollout_percentage(target)
        except Exception as exc:
            log.error("automatic rollback failed: %s", exc)
            self._send("auto_rollback_failed", f"automatic rollback failed: {exc}",
                       {"alert": name, "error": str(exc)})
            return
        record: dict[str, Any] = {
            "who": f"sof auto_rollback (pid {os.getpid()} on {socket.gethostname()})",
            "what": f"sof_rollout_percentage {current:g} -> {target:g}",
            "why": why,
            "when": _dt.datetime.fromtimestamp(self.wall(), _dt.timezone.utc).isoformat(),
            "alert": name,
            "from": current,
            "to": target,
        }
        effective = self._effective_rollout()
        source = self._override() if effective is not None and effective > target else None
        if source is not None and effective is not None:
            variable = source.removeprefix("environment").strip()
            unset = (f"unset {variable} in the server's environment" if variable
                     else f"remove the {source} that sets it")
            note = (f"written to the config file but not in effect: {source} overrides it "
                    f"and keeps the rollout at {effective:g}; {unset} to let the file decide")
            record.update(what=f"{record['what']} in the config file (overridden by {source}:"
                               f" still {effective:g} in effect)",
                          note=note, overridden_by=source, in_effect=effective)
            self._overridden = (source, effective, name, why)
        with self._lock:
            self.rollbacks.append(record)
            del self.rollbacks[:-50]
            self._samples["sof"].clear()  # judge the new rollout on fresh queries
            self._active.difference_update({f"sof:{k}" for k in ROLLBACK_ON})
            self._acted.difference_update({f"sof:{k}" for k in ROLLBACK_ON})
        if source is not None:
            log.error("automatic rollback: %s because %s; %s", record["what"], why,
                      record["note"])
            self._send("auto_rollback", f"rolled back: {record['what']} ({why}); "
                                        f"{record['note']}", dict(record))
        else:
            log.warning("automatic rollback: %s because %s", record["what"], why)
            self._send("auto_rollback", f"rolled back: {record['what']} ({why})", dict(record))
        from sof_serve.observe.metrics import get_metrics

        get_metrics().rollbacks.inc()

    def _effective_rollout(self) -> float | None:
        """The rollout in effect now (the manager's effective config), None if unknown."""
        config = self._live_config()
        try:
            return None if config is None else float(config.sof_rollout_percentage)
        except (AttributeError, TypeError, ValueError):
            return None

    def _send(self, kind: str, message: str, details: dict[str, Any]) -> None:
        notify = self._notify
        if notify is None:
            return
        try:
            notify(kind, message, details)
        except Exception:
            log.exception("could not send sof_alert %s", kind)

    # --- output --------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Thresholds, values over the window, active alerts, rollback state and KPIs."""
        self.evaluate()
        with self._lock:
            config = self._config
            values = dict(self._values)
            counts = dict(self._counts)
            active = sorted(self._active)
            limits = self.thresholds
            for path in _PATHS:  # the p95 is computed for display only
                values[f"{path}:response_time"] = self._p95(path)
            sof = list(self._samples["sof"].items)
            legacy = list(self._samples["legacy"].items)
            last = dict(self.rollbacks[-1]) if self.rollbacks else None
        alerts = []
        for name, value in sorted(values.items()):
            path, kind = name.split(":")
            alert = {"name": name, "path": path, "kind": kind, "value": value,
                     "threshold": getattr(limits, kind), "active": name in active}
            if name in counts:  # a path's alert is judged from min_samples queries on
                alert["samples"] = counts[name]
            alerts.append(alert)
        return {
            "window_seconds": limits.window_seconds,
            "thresholds": limits.to_dict(),
            "values": values,
            "alerts": alerts,
            "active": active,
            "auto_rollback": bool(getattr(config, "auto_rollback", False)),
            "auto_rollback_step": float(getattr(config, "auto_rollback_step", 100.0)),
            "rollout_percentage": (float(config.sof_rollout_percentage)
                                   if config is not None else None),
            "last_rollback": last,
            "kpis": _kpis(sof, legacy, limits),
        }

    def refresh_metrics(self, metrics: SOFMetrics) -> None:
        """Set the alert and rollout gauges in ``/metrics`` from the live state."""
        state = self.state()
        for alert in state["alerts"]:
            metrics.alert_active.labels(alert["name"]).set(1 if alert["active"] else 0)
            metrics.alert_threshold.labels(alert["name"]).set(alert["threshold"])
            if alert["value"] is not None:
                metrics.alert_value.labels(alert["name"]).set(alert["value"])
        config = self._config
        if config is not None:
            metrics.rollout.set(float(config.sof_rollout_percentage))
            metrics.enabled.set(1 if config.use_sof_framework else 0)
        metrics.auto_rollback.set(1 if state["auto_rollback"] else 0)


def _kpis(sof: list[_Sample], legacy: list[_Sample], limits: Thresholds) -> list[dict[str, Any]]:
    """The seed's KPIs over the window: response time <= legacy, errors <= 1 %, 99.9 % up."""
    # p95, as the page's KPI table (``health.kpi_rows``) compares them: one definition.
    def p95(samples: list[_Sample]) -> float | None:
        if not samples:
            return None
        ordered = sorted(s.latency for s in samples)
        return ordered[max(1, math.ceil(0.95 * len(ordered))) - 1]

    sof_p95, legacy_p95 = p95(sof), p95(legacy)
    sof_errors = sum(1 for s in sof if s.error)
    fallbacks = sum(1 for s in sof if s.fallback)
    unanswered = sum(1 for s in sof if s.error and not s.fallback)
    unanswered += sum(1 for s in legacy if s.error)
    queries = len(sof) + len(legacy) - fallbacks
    error_rate = sof_errors / len(sof) if sof else None
    availability = (queries - unanswered) / queries if queries > 0 else None

    def state(value: float | None, ok: bool) -> str:
        return "no data" if value is None else ("ok" if ok else "breached")

    return [
        {"name": "response_time", "target": "SOF p95 <= legacy p95", "value": sof_p95,
         "legacy": legacy_p95,
         "state": state(sof_p95 if legacy_p95 is not None else None,
                        sof_p95 is not None and legacy_p95 is not None
                        and sof_p95 <= legacy_p95)},
        {"name": "error_rate", "target": "<= 0.01", "value": error_rate,
         "state": state(error_rate, error_rate is not None and error_rate <= 0.01)},
        {"name": "availability", "target": ">= 0.999", "value": availability,
         "state": state(availability, availability is not None and availability >= 0.999)},
    ]


_monitor: AlertMonitor | None = None
_monitor_lock = threading.Lock()


def _path_of(manager: Any) -> str | None:
    """The config file a manager reads (what makes two managers one deployment)."""
    path = getattr(manager, "path", None)
    return None if path is None else str(path)


def get_monitor() -> AlertMonitor:
    """The process's alert monitor (created on first use)."""
    global _monitor
    with _monitor_lock:
        if _monitor is None:
            _monitor = AlertMonitor()
        return _monitor


def set_monitor(monitor: AlertMonitor | None) -> None:
    """Replace the process's monitor (tests inject one with a fake clock)."""
    global _monitor
    with _monitor_lock:
        _monitor = monitor


def alert_state() -> dict[str, Any]:
    """What the monitoring page shows: see ``AlertMonitor.state``."""
    return get_monitor().state()


__all__ = ["AlertMonitor", "Thresholds", "alert_state", "get_monitor", "set_monitor"]
