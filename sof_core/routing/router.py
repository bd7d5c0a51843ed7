"""Routing between SOF and the host's legacy pipeline: rollout, fallback, shadow mode.

The host hands its legacy pipeline over as a callable and sends every query through
``QueryRouter.route``. Per query the router reads the live configuration (so a rollback or
a new percentage applies to the next query, with no restart), puts the user in a stable
bucket, answers through SOF or legacy, falls back to legacy when SOF fails and
``fallback_to_legacy`` is on, and records A/B metrics. It never raises for a failing SOF
run or a broken config file: the answer is a ``RouteResult`` saying what happened.

Buckets come from SHA-256 of the session id, else the user id, else the query text: one
user always lands on the same side, in every process and on every machine (Python's
``hash()`` is salted per process, so it is not used).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import inspect
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sof_core.config.manager import ConfigState
from sof_core.errors import ConfigError, PlanValidationError
from sof_core.execution.threads import DaemonPool
from sof_core.routing.metrics import ABMetrics, Alert
from sof_core.routing.observers import (
    add_route_observer,
    has_route_observers,
    remove_route_observer,
    tell_route_observers,
)
from sof_core.uif import HOST_FIELDS, UIF, safe_repr

if TYPE_CHECKING:
    from sof_core.config import SOFConfig
    from sof_core.config.manager import SOFConfigManager
    from sof_core.execution.coordinator import CoordinatorEngine
    from sof_core.execution.report import ExecutionReport

log = logging.getLogger("sof.router")

RoutePath = Literal["sof", "legacy"]
LegacyPipeline = Callable[..., Any]
#: A host's own SOF run for one query: given the UIF the router built, return the report.
SOFRun = Callable[[UIF], "ExecutionReport"]

#: UIF fields a caller may pass as context; everything else goes into ``user_context``.
_UIF_CONTEXT_FIELDS = HOST_FIELDS - {"input_query", "task_id"}
_BUCKET_SALT = b"sof-rollout:"


def rollout_bucket(key: str) -> float:
    """The stable bucket of ``key``, in 0.00 .. 99.99 (10,000 equal buckets). Any string
    has one: a lone surrogate (an id decoded from bad bytes) is hashed as its code point
    (``surrogatepass``), valid text exactly as UTF-8, so no bucket moved."""
    digest = hashlib.sha256(_BUCKET_SALT + key.encode("utf-8", "surrogatepass")).digest()
    return (int.from_bytes(digest[:8], "big") % 10_000) / 100


def routing_key(query: str, session_id: object = None, user_id: object = None) -> str:
    """What a query is bucketed by: the session, else the user, else the query text."""
    if session_id is not None and session_id != "":  # 0 is an id; "" is none
        return f"session:{session_id}"
    if user_id is not None and user_id != "":
        return f"user:{user_id}"
    return f"query:{query}"


def choose_path(config: SOFConfig, bucket: float) -> RoutePath:
    """SOF when it is enabled and the bucket is under the rollout percentage (0 and 100 exact)."""
    if config.use_sof_framework and bucket < config.sof_rollout_percentage:
        return "sof"
    return "legacy"


@dataclass
class RouteResult:
    """What the user gets and how it was produced.

    ``path`` is the pipeline that produced ``response`` ("none" when the configuration was
    unusable and falling back was not allowed). ``error`` is set when there is no usable
    answer. On a fallback, ``fallback_reason`` says why SOF was left (``exception``,
    ``invalid_plan``, ``planner``, ``failure``, ``timeout``, ``no_response``, ``config``)
    and ``sof_error`` holds the details.
    """

    path: Literal["sof", "legacy", "none"]
    response: str | None
    error: str | None = None
    report: ExecutionReport | None = None
    fallback: bool = False
    fallback_reason: str | None = None
    sof_error: str | None = None
    bucket: float | None = None
    latency: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.response is not None


class _SOFFailure(Exception):
    def __init__(self, reason: str, message: str, report: ExecutionReport | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.report = report


class QueryRouter:
    """Sends each query to SOF or to the legacy pipeline, per the live configuration.

    ``shadow_sample_rate`` (0..1) runs the other path too for that share of queries while
    SOF is enabled, in the background, and records whether the answers differ; the user
    always gets the primary path's answer. ``max_shadow_in_flight`` bounds the background
    work (extra shadow runs are dropped and counted).
    """

    def __init__(
        self,
        engine: CoordinatorEngine | LegacyPipeline | None = None,
        legacy: LegacyPipeline | None = None,
        manager: SOFConfigManager | None = None,
        *,
        legacy_pipeline: LegacyPipeline | None = None,
        metrics: ABMetrics | None = None,
        shadow_sample_rate: float = 0.0,
        max_shadow_in_flight: int = 8,
        rng: random.Random | None = None,
    ) -> None:
        if legacy is not None and legacy_pipeline is not None:
            raise TypeError("QueryRouter: pass the legacy pipeline once, as legacy or as "
                            "legacy_pipeline, not both")
        legacy = legacy if legacy is not None else legacy_pipeline
        if callable(engine) and not hasattr(engine, "execute_plan"):
            if legacy is not None:
                # Two functions: taking the first as the engine would send every SOF-routed
                # query to a fallback ('function' object has no attribute ...): say it now.
                raise TypeError(
                    f"QueryRouter got two callables ({_name(engine)} and {_name(legacy)}); "
                    "pass the engine and one legacy pipeline: QueryRouter(engine, "
                    "legacy_pipeline), or QueryRouter(legacy_pipeline=fn) for the default "
                    "engine")
            legacy, engine = engine, None  # QueryRouter(legacy_pipeline): the default engine
        if legacy is None or not callable(legacy):
            raise TypeError(
                "QueryRouter needs the host's legacy pipeline, a callable taking the query: "
                "QueryRouter(engine, legacy_pipeline) or QueryRouter(legacy_pipeline=fn)"
                + ("" if legacy is None else f", not {type(legacy).__name__}"))
        if not 0.0 <= shadow_sample_rate <= 1.0:
            raise ConfigError(
                f"shadow_sample_rate must be between 0 and 1, got {shadow_sample_rate!r}",
                key="shadow_sample_rate",
            )
        if manager is None:
            from sof_core.config.manager import get_sof_config_manager

            manager = get_sof_config_manager()
        if engine is None:  # the installed plugins, with the live configuration's settings
            from sof_core.execution.coordinator import CoordinatorEngine

            engine = CoordinatorEngine()
        self.engine: CoordinatorEngine = engine  # type: ignore[assignment]
        self.legacy = legacy
        self._legacy_takes = _keywords_taken(legacy)
        self.manager = manager
        self.metrics = metrics if metrics is not None else ABMetrics()
        self.shadow_sample_rate = shadow_sample_rate
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._shadow_pool: DaemonPool | None = None
        self._shadow_slots = threading.BoundedSemaphore(max(1, max_shadow_in_flight))
        self._shadow_futures: set[concurrent.futures.Future[None]] = set()
        self._shadow_lock = threading.Lock()

    # --- the public call -----------------------------------------------------------------

    def route(
        self,
        query: str,
        *,
        session_id: str | int | None = None,
        user_id: str | int | None = None,
        run_sof: SOFRun | None = None,
        **context: Any,
    ) -> RouteResult:
        """Answer ``query``; never raises for SOF failures or configuration problems.

        ``run_sof`` replaces the planner and ``engine.execute_plan`` for this query, for a
        host that drives the engine its own way (``sof_sam``'s ``SOFIntegration`` runs SAM's
        plans and fallbacks): it gets the UIF the router built and returns an
        ``ExecutionReport``, judged exactly like the engine's. Rollout, fallback to legacy,
        metrics and shadow runs are unchanged; ``PlanValidationError`` from it is the
        ``invalid_plan`` reason, any other exception ``exception``.
        """
        started = time.perf_counter()
        if session_id is not None:
            context["session_id"] = session_id
        if user_id is not None:
            context["user_id"] = user_id
        bucket = rollout_bucket(routing_key(query, session_id, user_id))
        try:
            state = self.manager.state()
        except Exception as exc:  # a custom manager must not take the host down either
            log.exception("reading the SOF configuration failed")
            state = ConfigState(None, ConfigError(f"{type(exc).__name__}: {exc}"))
        config = state.config
        if config is None:
            return self._config_broken(query, context, state.error, state.fallback_to_legacy,
                                       bucket, started)
        collect = config.enable_execution_metrics
        path = choose_path(config, bucket)
        if path == "legacy":
            result = self._run_legacy(query, context, bucket)
            result.latency = time.perf_counter() - started
            if collect:
                self._record("legacy", result.latency, error=result.error is not None)
        else:
            result = self._run_sof_or_fallback(query, context, config, bucket, started, collect,
                                               run_sof)
        if config.use_sof_framework and self._shadow_sampled():
            self._start_shadow(query, context, config, result, run_sof)
        return result

    __call__ = route

    # --- the two paths -------------------------------------------------------------------

    def _run_sof_or_fallback(
        self,
        query: str,
        context: dict[str, Any],
        config: SOFConfig,
        bucket: float,
        started: float,
        collect: bool,
        run_sof: SOFRun | None = None,
    ) -> RouteResult:
        try:
            report = self._run_sof(query, context, config, run_sof)
        except _SOFFailure as failure:
            sof_latency = time.perf_counter() - started
            runs, failed = _skill_counts(failure.report)
            if not config.fallback_to_legacy:
                if collect:
                    self._record("sof", sof_latency, failure.report, error=True,
                                 skills_run=runs, skills_failed=failed)
                return RouteResult("sof", None, error=f"SOF failed ({failure.reason}): {failure}",
                                   report=failure.report, sof_error=str(failure), bucket=bucket,
                                   latency=sof_latency)
            log.warning("SOF failed (%s): %s; answering through the legacy pipeline",
                        failure.reason, failure)
            if collect:
                self._record("sof", sof_latency, failure.report, error=True,
                             fallback_reason=failure.reason, skills_run=runs,
                             skills_failed=failed)
            legacy_started = time.perf_counter()
            result = self._run_legacy(query, context, bucket)
            if collect:
                self._record("legacy", time.perf_counter() - legacy_started,
                             error=result.error is not None)
            result.fallback = True
            result.fallback_reason = failure.reason
            result.sof_error = str(failure)
            result.report = failure.report
            result.latency = time.perf_counter() - started
            if result.error is not None:
                result.error = f"SOF failed ({failure.reason}: {failure}) and {result.error}"
            return result
        latency = time.perf_counter() - started
        if collect:
            runs, failed = _skill_counts(report)
            self._record("sof", latency, report, skills_run=runs, skills_failed=failed)
        return RouteResult("sof", report.final_response, report=report, bucket=bucket,
                           latency=latency)

    def _run_sof(
        self,
        query: str,
        context: Mapping[str, Any],
        config: SOFConfig,
        run_sof: SOFRun | None = None,
    ) -> ExecutionReport:
        """One SOF run; every way it can fail becomes a ``_SOFFailure`` with a reason."""
        plan: list[str] = []
        planned = None
        # An engine made from the host's configuration runs with it as it is now: a changed
        # timeout, retry count or executor applies to this query, with no restart.
        refresh = getattr(self.engine, "refresh_config", None)
        if refresh is not None:
            try:
                refresh(config)
            except Exception as exc:
                raise _SOFFailure("config", _describe(exc)) from exc
        if run_sof is None:
            # The engine's planning with this query's live config: a change of planner,
            # default_plan or planner_options applies now, with no restart.
            try:
                planned = self.engine.planning.plan(
                    query, config=config, profile=context.get("active_profile"))
                plan = list(planned.plan)
            except Exception as exc:
                log.debug("planner raised", exc_info=True)
                raise _SOFFailure("planner", _describe(exc)) from exc
        report: ExecutionReport
        try:
            uif = _uif_for(query, context)
            if planned is not None:  # adaptive choice and re-planning (docs/planning.md)
                report = self.engine.run_planned(planned, uif, config=config)
            else:
                report = (
                    run_sof(uif) if run_sof is not None else self.engine.execute_plan(plan, uif)
                )
        except PlanValidationError as exc:
            raise _SOFFailure("invalid_plan", str(exc)) from exc
        except Exception as exc:
            log.debug("SOF run raised", exc_info=True)
            raise _SOFFailure("exception", _describe(exc)) from exc
        from sof_core.execution.report import ExecutionReport  # loaded by the engine already

        if not isinstance(report, ExecutionReport):  # a host's run_sof gave something else
            raise _SOFFailure("exception", f"run_sof returned {type(report).__name__} "
                              f"({safe_repr(report, 80)}), not an ExecutionReport")
        if report.status in ("failure", "timeout"):
            detail = "; ".join(report.errors) or report.status
            raise _SOFFailure(report.status, detail, report)
        if not report.final_response:
            raise _SOFFailure("no_response", f"plan {report.plan} set no final_response", report)
        return report

    def _run_legacy(self, query: str, context: Mapping[str, Any], bucket: float) -> RouteResult:
        takes = self._legacy_takes
        if takes is not None:  # it does not take **kwargs: only the keywords it names
            context = {key: value for key, value in context.items() if key in takes}
        try:
            answer = self.legacy(query, **context)
        except Exception as exc:
            log.warning("legacy pipeline raised: %r", exc)
            return RouteResult("legacy", None, error=f"legacy pipeline failed: "
                               f"{type(exc).__name__}: {exc}", bucket=bucket)
        response = legacy_response(answer)
        if response is None:  # ok would be False: say why, and count it as an error
            return RouteResult("legacy", None, error="legacy pipeline returned no answer "
                               f"({safe_repr(answer, 80)})", bucket=bucket)
        return RouteResult("legacy", response, bucket=bucket)

    def _config_broken(
        self,
        query: str,
        context: dict[str, Any],
        error: ConfigError | None,
        fallback: bool,
        bucket: float,
        started: float,
    ) -> RouteResult:
        message = f"SOF configuration is unusable: {error}"
        if not fallback:
            return RouteResult("none", None, error=message, bucket=bucket,
                               latency=time.perf_counter() - started)
        log.warning("%s; answering through the legacy pipeline", message)
        result = self._run_legacy(query, context, bucket)
        result.fallback = True
        result.fallback_reason = "config"
        result.sof_error = str(error)
        result.latency = time.perf_counter() - started
        # Counted (the settings that could switch metrics off are what cannot be read): on
        # the legacy path, which answered, as a fallback for "config". Not as a SOF error:
        # SOF never ran, so no SOF alert or rollback is judged on it.
        self._record("legacy", result.latency, error=result.error is not None,
                     fallback_reason="config")
        return result

    # --- metrics and alerts --------------------------------------------------------------

    def _record(self, path: str, latency: float, report: ExecutionReport | None = None,
                **kwargs: Any) -> None:
        for alert in self.metrics.record(path, latency, **kwargs):
            self._alert(alert)
        if has_route_observers():
            details = dict(kwargs)
            if report is not None:
                details["plan"] = list(report.plan)
                if report.planning is not None:
                    details["planning"] = report.planning
            tell_route_observers(self, path, latency, details)

    def _alert(self, alert: Alert) -> None:
        log.warning("SOF alert %s: %s", alert.kind, alert.message)
        try:
            self.engine.notify_observers("sof_alert", kind=alert.kind, message=alert.message,
                                         details=alert.details())
        except Exception:  # notify already isolates observers; this guards the engine itself
            log.exception("could not send sof_alert %s", alert.kind)

    # --- shadow mode ---------------------------------------------------------------------

    def _shadow_sampled(self) -> bool:
        rate = self.shadow_sample_rate
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        with self._rng_lock:
            return self._rng.random() < rate

    def _start_shadow(
        self,
        query: str,
        context: dict[str, Any],
        config: SOFConfig,
        primary: RouteResult,
        run_sof: SOFRun | None = None,
    ) -> None:
        if primary.response is None or primary.fallback:
            return  # nothing to compare: no answer, or SOF already failed on this query
        if not self._shadow_slots.acquire(blocking=False):
            self.metrics.record_shadow_dropped()
            return
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._shadow_lock:
            if self._shadow_pool is None or self._shadow_pool.closed:
                # Daemon threads, never joined at exit: a shadow call that hangs (the legacy
                # pipeline has no timeout) must not keep the host's process from exiting,
                # which a ThreadPoolExecutor's workers would.
                self._shadow_pool = DaemonPool("sof-shadow", max_workers=2)
            self._shadow_futures.add(future)
            self._shadow_pool.submit(self._shadow_job, future, query, dict(context), config,
                                     primary, run_sof)
        future.add_done_callback(self._shadow_done)

    def _shadow_job(self, future: concurrent.futures.Future[None], *args: Any) -> None:
        try:
            self._shadow(*args)
        finally:
            future.set_result(None)

    def _shadow_done(self, future: concurrent.futures.Future[None]) -> None:
        with self._shadow_lock:
            self._shadow_futures.discard(future)
        self._shadow_slots.release()

    def _shadow(
        self,
        query: str,
        context: dict[str, Any],
        config: SOFConfig,
        primary: RouteResult,
        run_sof: SOFRun | None = None,
    ) -> None:
        other: str | None
        error: str | None = None
        try:
            if primary.path == "sof":
                legacy = self._run_legacy(query, context, primary.bucket or 0.0)
                other, error = legacy.response, legacy.error
            else:
                try:
                    other = self._run_sof(query, context, config, run_sof).final_response
                except _SOFFailure as failure:
                    other, error = None, f"{failure.reason}: {failure}"
            differs = self.metrics.record_shadow(query, primary.path, primary.response, other,
                                                 shadow_error=error)
            tell_route_observers(self, "shadow", 0.0, {"error": error is not None,
                                                  "differs": differs})
        except Exception:
            log.exception("shadow comparison failed")

    def flush_shadow(self, timeout: float | None = None) -> None:
        """Wait for shadow runs in flight (tests, or before reading a final snapshot)."""
        with self._shadow_lock:
            pending = list(self._shadow_futures)
        concurrent.futures.wait(pending, timeout=timeout)

    def close(self, timeout: float | None = None) -> None:
        """Finish shadow runs (waiting ``timeout`` seconds at most; None: until they end)
        and release the background threads. A shadow call still running after that is
        left to end on its own: its thread never holds up the process's exit."""
        self.flush_shadow(timeout)
        with self._shadow_lock:
            pool, self._shadow_pool = self._shadow_pool, None
        if pool is not None:
            pool.close()


def legacy_response(answer: Any) -> str | None:
    """The text of a legacy answer: a string, or an object/dict with a response."""
    if answer is None or isinstance(answer, str):
        return answer
    if isinstance(answer, Mapping):
        for key in ("response", "final_response", "answer"):
            if key in answer:
                value = answer[key]
                return None if value is None else str(value)
        return str(answer)
    for attr in ("response", "final_response", "answer"):
        value = getattr(answer, attr, None)
        if value is not None:
            return str(value)
    return str(answer)


def _name(function: object) -> str:
    """What to call ``function`` in an error: its name when it has one, else its type."""
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", None)
    return name if isinstance(name, str) else type(function).__name__


def _keywords_taken(legacy: LegacyPipeline) -> frozenset[str] | None:
    """The context keywords ``legacy`` can be called with: None for all of them (it takes
    ``**kwargs``, or its signature cannot be read), else the ones it names. A pipeline that
    takes only the query still answers a query routed with a user or session id."""
    try:
        parameters = list(inspect.signature(legacy).parameters.values())
    except (TypeError, ValueError):  # a builtin or extension callable: pass them all
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    # The first positional parameter receives the query.
    positional = [p for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                      inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    query = positional[0].name if positional else None
    return frozenset(p.name for p in parameters
                     if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                   inspect.Parameter.KEYWORD_ONLY) and p.name != query)


#: Ids a host may keep as numbers or UUIDs; the UIF's fields are strings.
_ID_FIELDS = frozenset({"session_id", "user_id"})


def _uif_for(query: str, context: Mapping[str, Any]) -> UIF:
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in context.items():
        if key in _UIF_CONTEXT_FIELDS:
            if key in _ID_FIELDS and value is not None and not isinstance(value, str):
                value = str(value)  # user_id=42 is user "42", as in its rollout bucket
            fields[key] = value
        else:
            extra[key] = value
    if extra:
        fields["user_context"] = {**fields.get("user_context", {}), **extra}
    return UIF.for_query(query, **fields)


def _describe(exc: BaseException) -> str:
    from sof_core.errors import SOFError

    return str(exc) if isinstance(exc, SOFError) else f"{type(exc).__name__}: {exc}"


def _skill_counts(report: ExecutionReport | None) -> tuple[int, int]:
    if report is None:
        return 0, 0
    run = [r for r in report.results if r.status != "skipped"]
    return len(run), sum(1 for r in run if r.status in ("failed", "timeout"))


__all__ = [
    "QueryRouter",
    "RouteResult",
    "SOFRun",
    "add_route_observer",
    "choose_path",
    "legacy_response",
    "remove_route_observer",
    "rollout_bucket",
    "routing_key",
]
