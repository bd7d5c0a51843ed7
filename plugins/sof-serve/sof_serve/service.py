"""What the HTTP routes do, without HTTP: answer, plan, validate, list, administer.

``SOFService`` holds one engine and one ``QueryRouter`` for the life of the server, so every
query goes through the router's rollout, legacy fallback, shadow runs and A/B metrics, as it
would in any host. Everything here is synchronous and thread-safe: the app calls it from
worker threads. Expected problems raise ``RequestError`` carrying the HTTP status to answer
with and a message naming the field at fault.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from sof_core import UIF as UIFModel
from sof_core import (
    ABMetrics,
    ConfigError,
    CoordinatorEngine,
    ExecutionReport,
    QueryRouter,
    RouteResult,
    SOFConfigManager,
    SOFError,
    UIFError,
)
from sof_core.config import get_sof_config_manager
from sof_serve.health import alert_rows, kpi_rows
from sof_serve.runs import RunStore
from sof_serve.settings import ServeSettings
from sof_serve.trace import SkillStats, TimelineObserver, plan_graph, timeline

log = logging.getLogger("sof.serve")

#: Most recent admin changes kept for ``GET /v1/admin/config``.
AUDIT_SIZE = 50


#: A lone surrogate (U+D800..U+DFFF alone): a Python string may hold one, UTF-8 cannot.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class RequestError(Exception):
    """A request SOF cannot answer as asked: ``status`` (4xx/5xx), a code, one clear line."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class FixedPlanLegacy:
    """The legacy pipeline when the host gives none: the configured ``default_plan``, run
    as a fixed pipeline (no planner), as SAM ran queries before SOF chose plans.

    Its report is kept per thread so the service can return the legacy answer in the same
    run schema as a SOF answer (the router calls the legacy pipeline on the caller's thread).
    """

    def __init__(self, engine: CoordinatorEngine, manager: SOFConfigManager) -> None:
        self.engine = engine
        self.manager = manager
        self._local = threading.local()

    def __call__(self, query: str, **context: Any) -> str | None:
        live = self.manager.state().config
        if live is not None:  # the settings the router would run SOF with, for this query
            self.engine.refresh_config(live)
        config = live or self.engine.config
        fields = {k: v for k, v in context.items() if k in ("session_id", "user_id")}
        extra = {k: v for k, v in context.items() if k not in fields}
        uif = UIFModel.for_query(query, user_context=extra, **fields) if extra else \
            UIFModel.for_query(query, **fields)
        report = self.engine.execute_plan(list(config.default_plan), uif)
        self._local.report = report
        if report.status not in ("success", "partial"):
            raise RuntimeError("; ".join(report.errors) or f"default plan {report.status}")
        return report.final_response

    def take_report(self) -> ExecutionReport | None:
        report: ExecutionReport | None = getattr(self._local, "report", None)
        self._local.report = None
        return report


def load_legacy(path: str) -> Callable[..., Any]:
    """``module:callable`` as the legacy pipeline; ``ConfigError`` naming the setting."""
    module_name, _, attr = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:
        raise ConfigError(
            f"plugin_settings.serve.legacy = {path!r} cannot be loaded "
            f"({type(exc).__name__}: {exc}); give 'module:callable' of an importable callable",
            key="plugin_settings.serve.legacy",
        ) from exc
    if not callable(target):
        raise ConfigError(f"plugin_settings.serve.legacy = {path!r} is not callable",
                          key="plugin_settings.serve.legacy")
    return target  # type: ignore[no-any-return]


class SOFService:
    """One engine, one router, the recent runs and the admin actions of one server."""

    def __init__(
        self,
        *,
        engine: CoordinatorEngine | None = None,
        legacy: Callable[..., Any] | None = None,
        manager: SOFConfigManager | None = None,
        settings: ServeSettings | None = None,
        metrics: ABMetrics | None = None,
        shadow_sample_rate: float | None = None,
    ) -> None:
        self.manager = manager if manager is not None else get_sof_config_manager()
        self.engine = engine if engine is not None else CoordinatorEngine()
        if settings is None:
            settings = ServeSettings.load(self.engine.config.settings_for("serve"))
        self.settings = settings
        self.timelines = TimelineObserver()
        self.engine.plugins.register(self.timelines, f"sof-serve-timeline-{id(self):x}",
                                     raise_errors=True)
        self._fixed_legacy: FixedPlanLegacy | None = None
        if legacy is None and settings.legacy:
            legacy = load_legacy(settings.legacy)
        if legacy is None:
            legacy = self._fixed_legacy = FixedPlanLegacy(self.engine, self.manager)
        if shadow_sample_rate is None:
            shadow_sample_rate = settings.shadow_sample_rate
        self.router = QueryRouter(self.engine, legacy, self.manager, metrics=metrics,
                                  shadow_sample_rate=shadow_sample_rate)
        self._adopt_monitor()
        self.runs = RunStore(settings.recent_runs)
        self.skills_seen = SkillStats()
        self.audit: deque[dict[str, Any]] = deque(maxlen=AUDIT_SIZE)
        self.started = time.time()
        #: Set when the server stops: open event streams end instead of holding it up.
        self.closing = threading.Event()
        self._counts_lock = threading.Lock()
        #: Queries taken and queries answered (by either path), for the availability KPI.
        self.requests = 0
        self.answered = 0

    def _adopt_monitor(self) -> None:
        """Point the process's alert monitor at this service's config now, not at its first
        query: ``/metrics`` and ``/v1/alerts`` of a fresh server show its own rollout and
        thresholds, and the queries of an earlier service with another config file are not
        judged against this one (``AlertMonitor.adopt``)."""
        try:  # the observer is built apart from the service; the service works without it
            monitor = importlib.import_module("sof_serve.observe.alerts").get_monitor()
        except (ImportError, AttributeError):
            return
        monitor.adopt(self.router)

    def close(self, timeout: float | None = None) -> None:
        """End event streams and finish shadow runs (waiting ``timeout`` seconds at most;
        None: until they end)."""
        self.closing.set()
        self.router.close(timeout)

    # --- answering -------------------------------------------------------------------------

    def query(
        self,
        query: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        plan: list[str] | None = None,
        planner: str | None = None,
        context: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Answer through the router; the run's ``sof.run/1`` record plus ``route``."""
        context = dict(context or {})
        try:  # bad input is the caller's error (422), not a SOF failure to fall back from
            UIFModel.for_query(query, session_id=session_id, user_id=user_id,
                               user_context=context)
        except UIFError as exc:
            raise RequestError(422, "invalid_query", str(exc)) from None
        if planner is not None:
            self._check_planner(planner)
        run_sof = None
        if plan:
            fixed = list(plan)
            run_sof = lambda uif: self.engine.execute_plan(fixed, uif)  # noqa: E731
        elif planner is not None:
            run_sof = self._planned_by(planner)
        if self._fixed_legacy is not None:
            self._fixed_legacy.take_report()  # nothing stale from an earlier request
        started = time.perf_counter()
        try:
            result = self.router.route(query, session_id=session_id, user_id=user_id,
                                       run_sof=run_sof, **context)
        except BaseException as exc:  # a worker thread's, never the user's
            # KeyboardInterrupt or SystemExit from a skill or the legacy pipeline (signals
            # reach the main thread only): the query failed, the server goes on serving.
            why = f"the query's work raised {_describe(exc)}"
            # Raised by a skill, it carries its run's report (``sof_report``): stored as the
            # run, with the skill it came from; from elsewhere the record says only why.
            report = getattr(exc, "sof_report", None)
            if not isinstance(report, ExecutionReport):
                report = None
            result = RouteResult(path="sof" if report is not None else "none", response=None,
                                 error=why, report=report,
                                 latency=time.perf_counter() - started)
            legacy_report = self._fixed_legacy.take_report() if self._fixed_legacy else None
            record = self._record(query, result, legacy_report, session_id, user_id,
                                  context)
            with self._counts_lock:
                self.requests += 1
            self.runs.add(record)
            log.error("query %s: %s", record["run_id"], why)
            raise RequestError(500, "internal_error",
                               f"{why}; the run is stored as {record['run_id']} "
                               f"(GET /v1/runs/{record['run_id']})") from None
        legacy_report = self._fixed_legacy.take_report() if self._fixed_legacy else None
        record = self._record(query, result, legacy_report, session_id, user_id, context)
        with self._counts_lock:
            self.requests += 1
            self.answered += result.ok
        self.runs.add(record)
        return record

    def _planned_by(self, planner: str) -> Callable[[Any], ExecutionReport]:
        def run(uif: Any) -> ExecutionReport:
            config = self.manager.state().config or self.engine.config  # the live one
            planned = self.engine.planning.plan(uif.input_query, config=config,
                                                planner=planner, profile=uif.active_profile)
            # As a routed query's plan: adjusted while it runs (docs/planning.md).
            return self.engine.run_planned(planned, uif, config=config)

        return run

    def _check_planner(self, planner: str) -> None:
        known = sorted(self.engine.registry.components("planners"))
        if planner not in known:
            raise RequestError(422, "unknown_planner",
                               f"planner {planner!r} is not installed; installed planners: "
                               + ", ".join(known))

    def _record(self, query: str, result: RouteResult, legacy_report: ExecutionReport | None,
                session_id: str | None, user_id: str | None,
                context: dict[str, str]) -> dict[str, Any]:
        sof_report = result.report
        answered = legacy_report if result.path == "legacy" else sof_report
        if answered is None:
            answered = self._synthetic(query, result, session_id, user_id, context)
        record = answered.to_dict()
        record["run_id"] = record["task_id"]
        record["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(
            timespec="milliseconds")
        record["route"] = {
            "path": result.path,
            "ok": result.ok,
            "error": result.error,
            "fallback": result.fallback,
            "fallback_reason": result.fallback_reason,
            "sof_error": result.sof_error,
            "bucket": result.bucket,
            "latency_ms": round(result.latency * 1000, 3),
            "sof_run": _brief(sof_report) if result.fallback and sof_report else None,
        }
        plan_start, starts = self.timelines.pop(answered.uif.task_id)
        record["timeline"] = timeline(record, plan_start, starts)
        record["graph"] = plan_graph(self.engine, list(answered.plan))
        if sof_report is not None and sof_report is not answered:
            self.timelines.pop(sof_report.uif.task_id)
        for report in (sof_report, legacy_report):  # every skill run this query made
            if report is not None:
                self.skills_seen.add([r.to_dict() for r in report.results])
        return record

    def _synthetic(self, query: str, result: RouteResult, session_id: str | None,
                   user_id: str | None, context: dict[str, str]) -> ExecutionReport:
        """The report of an answer no SOF run produced (a host's legacy callable)."""
        uif = UIFModel.for_query(query, session_id=session_id, user_id=user_id,
                                 user_context=context)
        if result.response is not None:
            # A legacy answer may hold a lone surrogate, which a UIF refuses (it has no UTF-8
            # form): kept as U+FFFD, as the API sends it.
            uif.final_response = LONE_SURROGATE.sub("\ufffd", result.response)
            return ExecutionReport(uif=uif, status="success", plan=[], executor=result.path,
                                   duration=result.latency)
        report = ExecutionReport.not_run([], uif, result.error or "no answer", status="error")
        report.duration = result.latency
        return report

    # --- planning --------------------------------------------------------------------------

    def plan(self, query: str, *, planner: str | None = None,
             profile: str | None = None) -> dict[str, Any]:
        if planner is not None:
            self._check_planner(planner)
        try:
            UIFModel.for_query(query)
        except UIFError as exc:
            raise RequestError(422, "invalid_query", str(exc)) from None
        config = self.manager.state().config or self.engine.config
        try:
            planned = self.engine.planning.plan(query, config=config, planner=planner,
                                                profile=profile)
        except SOFError as exc:
            raise RequestError(422, "planning_failed", str(exc)) from None
        data = planned.to_dict()
        data["query"] = query
        problems = self.engine.validate_plan(list(planned.plan)) if planned.plan else []
        data["valid"] = bool(planned.plan) and not problems
        data["problems"] = [p.to_dict() for p in problems]
        data["graph"] = plan_graph(self.engine, list(planned.plan))
        return data

    def validate(self, plan: list[str]) -> dict[str, Any]:
        try:
            compiled = self.engine.compile(plan)
        except SOFError as exc:
            raise RequestError(422, "invalid_plan", str(exc)) from None
        problems = [p.to_dict() for p in compiled.problems]
        return {"valid": not problems, "plan": list(plan), "problems": problems,
                "stages": [list(s) for s in compiled.stages] if not problems else [],
                "graph": plan_graph(self.engine, list(plan)) if not problems else None}

    # --- listing ---------------------------------------------------------------------------

    def skills(self) -> list[dict[str, Any]]:
        """Every skill as ``sof skills --json`` lists it: the available ones by name, then
        the unavailable ones (``available`` false, with ``unavailable_reason``), so a
        client can tell a skill that is missing from one that cannot run yet."""
        registry = self.engine.registry
        listed = [{**entry.describe(), "available": True} for entry in registry.skills()]
        listed += [{"name": name, "available": False, "unavailable_reason": why}
                   for name, why in registry.unavailable().items()]
        return listed

    def plugins(self) -> list[dict[str, Any]]:
        records = self.engine.plugins.records
        return [records[name].to_dict() for name in sorted(records)
                if not name.startswith("sof-serve-timeline-")]

    # --- state for the page ----------------------------------------------------------------

    def rollout(self) -> dict[str, Any]:
        state = self.manager.state()
        config = state.config
        return {
            "use_sof_framework": config.use_sof_framework if config else False,
            "sof_rollout_percentage": config.sof_rollout_percentage if config else 0.0,
            "fallback_to_legacy": state.fallback_to_legacy,
            "config_error": str(state.error) if state.error else None,
            "overridden_by": {key: source for key in ("use_sof_framework",
                                                      "sof_rollout_percentage")
                              if (source := self.manager.overridden(key)) is not None},
        }

    def stats(self) -> dict[str, Any]:
        """What the page shows: A/B comparison, KPIs, alerts, skills, rollout, runs."""
        comparison = self.router.metrics.snapshot()
        alerts = self.alert_state()
        with self._counts_lock:
            requests, answered = self.requests, self.answered
        return {
            "comparison": comparison,
            "kpis": kpi_rows(comparison, requests, answered),
            "alerts": alert_rows(alerts, comparison),
            "alert_source": alerts.get("source"),
            "auto_rollback": _auto_rollback(alerts),
            "requests": {"total": requests, "answered": answered},
            "skills": self.skills_seen.snapshot(),
            "rollout": self.rollout(),
            "runs_total": self.runs.total,
            "uptime_s": round(time.time() - self.started, 3),
            "engine": _engine_stats(self.engine),
        }

    def alert_state(self) -> dict[str, Any]:
        """The alert observer's state (``sof_serve.observe.alerts.alert_state``), or, while
        it is not installed, the router's own threshold alerts."""
        try:  # the observer is built apart from the service; the service works without it
            observed = importlib.import_module("sof_serve.observe.alerts").alert_state
        except (ImportError, AttributeError):
            observed = None
        if observed is not None:
            state = dict(observed())
            state.setdefault("source", "observer")
            return state
        metrics = self.router.metrics
        limits = metrics.thresholds
        snapshot = metrics.snapshot()
        return {
            "source": "router",
            "thresholds": {"error_rate": limits.error_rate,
                           "response_time": limits.response_time,
                           "skill_failure_rate": limits.skill_failure_rate,
                           "window": limits.window, "min_samples": limits.min_samples},
            "active": snapshot["alerts"]["active"],
            "fired": snapshot["alerts"]["fired"],
            "auto_rollback": None,
        }

    def ready(self) -> tuple[bool, str]:
        state = self.manager.state()
        if state.config is None and not state.fallback_to_legacy:
            return False, f"configuration unusable and fallback_to_legacy is off: {state.error}"
        return True, "ready"

    # --- admin -----------------------------------------------------------------------------

    def set_enabled(self, enabled: bool, percentage: float | None, who: str) -> dict[str, Any]:
        try:
            if enabled:
                self.manager.enable_sof_framework(percentage)
            else:
                self.manager.disable_sof_framework()
        except ConfigError as exc:
            raise RequestError(422, "invalid_setting", str(exc)) from None
        what = "enable" if enabled else "disable"
        if percentage is not None:
            what += f" (rollout {percentage:g} %)"
        return self._audited(what, who)

    def set_rollout(self, percentage: float, who: str) -> dict[str, Any]:
        try:
            self.manager.set_rollout_percentage(percentage)
        except ConfigError as exc:
            raise RequestError(422, "invalid_setting", str(exc)) from None
        return self._audited(f"rollout {percentage:g} %", who)

    def _audited(self, what: str, who: str) -> dict[str, Any]:
        entry = {"at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                 "who": who, "what": what, "why": "admin request"}
        self.audit.append(entry)
        log.warning("admin change by %s: %s", who, what)
        return {**self.rollout(), "change": entry, "config_path": str(self.manager.path)}

    def applied_config(self) -> dict[str, Any]:
        try:
            rows = self.manager.explain()
        except ConfigError as exc:
            raise RequestError(503, "config_unusable", str(exc)) from None
        return {"path": str(self.manager.path), "settings": rows,
                "changes": list(self.audit)}


# ``sof skills --json`` builds its items in sof_core.cli.inspect with private helpers
# (``_skill_dict``, ``_unavailable``); these two give the same items from the registry's
# public API, and tests/test_serve_skills_listing.py holds them equal to the command's.


def _auto_rollback(alerts: dict[str, Any]) -> dict[str, Any] | None:
    """The alert source's automatic-rollback state as ``enabled``, ``step``, ``last``."""
    state = alerts.get("auto_rollback")
    if state is None:
        return None
    if isinstance(state, dict):
        return state
    return {"enabled": bool(state), "step": alerts.get("auto_rollback_step"),
            "last": alerts.get("last_rollback")}


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _brief(report: ExecutionReport) -> dict[str, Any]:
    return {"task_id": report.uif.task_id, "status": report.status, "plan": list(report.plan),
            "failed_skills": report.failed_skills, "errors": list(report.errors)}


def _engine_stats(engine: CoordinatorEngine) -> dict[str, Any]:
    try:
        stats = engine.stats()
    except Exception:  # a dashboard figure must not break the page
        return {}
    return {"abandoned_calls": stats.get("abandoned_calls", {}),
            "quarantined": stats.get("quarantined", []),
            "plan_cache": stats.get("plan_cache", {})}
