"""SAM's ``SOFIntegration``: queries in, SAM's response dicts out, routed by SOF's router.

Every ``process_query`` goes through ``sof_core.QueryRouter``, so the live configuration's
rollout (``use_sof_framework``, ``sof_rollout_percentage``), the fallback to the legacy
pipeline (``fallback_to_legacy``) and the A/B metrics apply exactly as for any SOF host. SAM's
``fallback_generator`` is the legacy pipeline. On the SOF side the query runs through SAM's
``CoordinatorEngine`` (custom plan, dynamic planning or the default plan, with SAM's
fallbacks); the core skills are the installed plugins' (sof-memory, sof-response,
sof-conflict, ...), plus whatever ``register_custom_skill`` adds.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sof_core
from sof_core import PlanValidationError, QueryRouter, RouteResult, ValidationProblem
from sof_core.config import SOFConfigManager
from sof_sam._engine import flag, load_sam_config
from sof_sam.coordinator import SAFE_PLAN, CoordinatorEngine, ExecutionReport, ExecutionResult
from sof_sam.skills.base import BaseSkillModule
from sof_sam.uif import SAM_UIF
from sof_sam.validator import ValidationResult

logger = logging.getLogger(__name__)

#: SAM's default plan, those of its skills that are registered, in this order.
DEFAULT_PLAN = ("MemoryRetrievalSkill", "ConflictDetectorSkill", "ResponseGenerationSkill")
#: SAM issue type -> SOF problem code, to hand an invalid plan to the router as such.
_CODES = {
    "missing_skill": "unknown_skill",
    "missing_dependencies": "missing_producer",
    "circular_dependency": "cycle",
}
_STATUS = {
    ExecutionResult.SUCCESS: "success",
    ExecutionResult.PARTIAL_SUCCESS: "partial",
    ExecutionResult.TIMEOUT: "timeout",
}


#: What a whitespace-only query (SAM runs it; ``sof_core.UIF`` refuses it) is routed as: the
#: query with a WORD JOINER (U+2060, not whitespace) appended. The SOF run gets a SAM_UIF of
#: the query itself and the legacy pipeline the query itself; only the rollout bucket and the
#: router's own UIF see the stand-in.
_BLANK_STAND_IN = "\u2060"
#: (stand-in, query) while ``process_query`` routes a whitespace-only query in this context.
_BLANK_QUERY: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "sof_sam_blank_query", default=None
)


class NoLegacyPipelineError(LookupError):
    """A query went to the legacy path, but no ``fallback_generator`` was given."""


class SOFIntegration:
    """High-level entry point: SAM's query API over a router and SAM's coordinator.

    ``manager`` (a ``sof_core.config.SOFConfigManager``) is the live configuration the
    router reads per query; by default the one behind ``sof_sam.config``'s process-wide
    manager, so SAM's file (``$SOF_CONFIG``, else ``config/sof_config.json``) and its
    rollback functions decide the route. ``config`` is SAM's configuration for the
    coordinator (default ``sof_sam.config.get_sof_config()``). Both are ``sof_sam``
    extensions.
    """

    def __init__(
        self,
        fallback_generator: Callable[[str], str] | None = None,
        *,
        manager: SOFConfigManager | None = None,
        config: Any = None,
    ) -> None:
        self.logger = logging.getLogger(f"{__name__}.SOFIntegration")
        self._fallback_generator = fallback_generator
        self._config = load_sam_config(config)
        self._coordinator = CoordinatorEngine(fallback_generator=fallback_generator,
                                              config=self._config)
        #: Made for SAM's file of the moment (no ``manager`` given): ``get_sof_integration``
        #: makes a fresh instance when that file changes (``$SOF_CONFIG`` set afresh).
        self._follows_file = manager is None
        self._manager = manager if manager is not None else _sam_file_manager()
        self._router = QueryRouter(self._coordinator.sof_engine, self._legacy, self._manager)
        self._initialized = False
        self._init_lock = threading.Lock()
        if self._sof_enabled():
            self.initialize()

    @property
    def router(self) -> QueryRouter:
        """The router every query goes through (its ``metrics`` are the A/B numbers)."""
        return self._router

    @property
    def coordinator(self) -> CoordinatorEngine:
        return self._coordinator

    def _sof_enabled(self) -> bool:
        state = self._manager.state()
        return bool(state.config is not None and state.config.use_sof_framework)

    # --- lifecycle -----------------------------------------------------------------------

    def initialize(self) -> bool:
        """Ready the coordinator with ``_register_core_skills()`` (SAM's step, which SAM's
        tests patch); False, with the reason logged, when that fails."""
        with self._init_lock:
            if self._initialized:
                return True
            try:
                self._register_core_skills()
            except Exception as exc:
                self.logger.error("SOF initialization failed: %s", exc)
                return False
            self._initialized = True
            return True

    def _register_core_skills(self) -> None:
        """SAM's initialization step: register the core skills on the coordinator. Here the
        installed plugins provide them, and adopting them keeps SAM's safe-plan fallback.
        Raises ``LookupError`` when the engine has no skill to run at all."""
        skills = self._coordinator.get_registered_skills()
        if not skills:
            raise LookupError(
                "no skills are installed or registered; install skill plugins (e.g. "
                "sof-memory, sof-response) or call register_custom_skill()"
            )
        self._coordinator.adopt_installed_skills(SAFE_PLAN)
        self.logger.info("SOF initialized with %d skills: %s", len(skills), skills)

    def is_initialized(self) -> bool:
        return self._initialized

    def shutdown(self) -> None:
        """Forget the execution history and finish background (shadow) work."""
        self.logger.info("Shutting down SOF integration")
        self._coordinator.clear_execution_history()
        self._router.close()
        self._initialized = False

    # --- skills --------------------------------------------------------------------------

    def register_custom_skill(self, skill: BaseSkillModule) -> bool:
        """Register ``skill``; False (with the reason logged) when SOF cannot use it."""
        try:
            self._coordinator.register_skill(skill)
        except Exception as exc:
            self.logger.error("Failed to register custom skill %s: %s",
                              getattr(skill, "skill_name", skill), exc)
            return False
        return True

    def get_available_skills(self) -> list[str]:
        return self._coordinator.get_registered_skills()

    def get_execution_stats(self) -> dict[str, Any]:
        return self._coordinator.get_execution_stats()

    # --- queries -------------------------------------------------------------------------

    def process_query(
        self,
        query: str,
        user_id: str | None = None,
        session_id: str | None = None,
        user_context: dict[str, Any] | None = None,
        custom_plan: list[str] | None = None,
        use_dynamic_planning: bool = True,
    ) -> dict[str, Any]:
        """Answer ``query`` and describe how, in SAM's dict; never raises.

        The router decides the path. On SOF, ``custom_plan`` runs if given, else the
        planner's plan (``use_dynamic_planning``), else SAM's default plan. When the run fails
        and ``fallback_to_legacy`` is on, the router answers with the ``fallback_generator``
        (``fallback_used`` is then True and ``executed_skills`` is ``["fallback_generator"]``,
        as in SAM); with it off, the coordinator's own fallbacks are all there is.
        ``metadata["route"]`` says which path answered and why. A whitespace-only query runs
        as in SAM: skills and the legacy pipeline get it as given.
        """
        if not self._initialized and not self.initialize():
            return _error_response("SOF initialization failed")
        started = time.perf_counter()
        runs: list[ExecutionReport] = []

        # SAM_UIF accepts a whitespace-only query and SAM runs it; sof_core.UIF (which the
        # router builds) needs non-whitespace text, so such a query is routed as a stand-in.
        routed_query = query
        if isinstance(query, str) and query and not query.strip():
            routed_query = query + _BLANK_STAND_IN

        def run_sof(uif: sof_core.UIF) -> sof_core.ExecutionReport:
            sam_uif = SAM_UIF.from_sof(uif)
            if routed_query is not query and sam_uif.input_query == routed_query:
                sam_uif.input_query = query
            report = self._run(sam_uif, custom_plan, use_dynamic_planning)
            runs.append(report)
            return _for_router(report)

        context: dict[str, Any] = {"user_context": user_context} if user_context else {}
        token = _BLANK_QUERY.set((routed_query, query) if routed_query is not query else None)
        try:
            routed = self._router.route(routed_query, session_id=session_id, user_id=user_id,
                                        run_sof=run_sof, **context)
        except Exception as exc:  # the router never raises for SOF; this guards the rest
            self.logger.exception("Error processing query")
            return _error_response(f"Query processing failed: {exc}")
        finally:
            _BLANK_QUERY.reset(token)
        report = runs[0] if runs else None
        response = self._response(routed, report, time.perf_counter() - started)
        self.logger.info("Query processed via %s: %s in %.3fs", routed.path,
                         response["execution_result"], response["processing_time"])
        return response

    def _run(
        self, uif: SAM_UIF, custom_plan: list[str] | None, use_dynamic_planning: bool
    ) -> ExecutionReport:
        # When the router will fall back to the legacy pipeline, leave the generator to it, so
        # the answer is recorded as a legacy fallback (with its reason) in the metrics.
        state = self._manager.state()
        router_falls_back = state.config is not None and state.config.fallback_to_legacy
        coordinator = self._coordinator
        if custom_plan:
            plan, dynamic = list(custom_plan), False
        elif use_dynamic_planning:
            plan, dynamic = [], True
        else:
            plan, dynamic = self._get_default_plan(), False
        return coordinator._execute(plan, uif, dynamic, allow_generator=not router_falls_back)

    def _get_default_plan(self) -> list[str]:
        known = set(self._coordinator.get_registered_skills())
        return [name for name in DEFAULT_PLAN if name in known]

    def _legacy(self, query: str, **context: Any) -> str:
        """The legacy pipeline the router falls back to: SAM's ``fallback_generator``."""
        if self._fallback_generator is None:
            raise NoLegacyPipelineError(
                "the query was routed to the legacy pipeline (SOF disabled, outside the "
                "rollout percentage, or SOF failed) but this SOFIntegration has no "
                "fallback_generator; pass SOFIntegration(fallback_generator=...) or enable "
                "SOF for this user (`sof config enable --percentage 100`)"
            )
        blank = _BLANK_QUERY.get()
        if blank is not None and query == blank[0]:
            query = blank[1]  # the whitespace-only query itself, not its routing stand-in
        return self._fallback_generator(query)

    def _response(
        self, routed: RouteResult, report: ExecutionReport | None, elapsed: float
    ) -> dict[str, Any]:
        route = {
            "path": routed.path,
            "fallback_reason": routed.fallback_reason,
            "bucket": routed.bucket,
            "sof_error": routed.sof_error,
        }
        if routed.path == "legacy" and routed.response is not None:
            response = self._legacy_response(routed, report, elapsed)
        elif report is not None:
            response = self._report_response(report, elapsed)
        else:
            response = _error_response(routed.error or "no answer", elapsed)
        response["metadata"]["route"] = route
        return response

    def _report_response(self, report: ExecutionReport, elapsed: float) -> dict[str, Any]:
        uif = report.uif
        success = report.result in (ExecutionResult.SUCCESS, ExecutionResult.PARTIAL_SUCCESS)
        tracing = bool(flag(self._config, "enable_execution_tracing"))
        response: dict[str, Any] = {
            "success": success,
            "response": uif.final_response or "No response generated",
            "confidence": uif.confidence_score,
            "processing_time": elapsed,
            "execution_result": report.result.value,
            "executed_skills": list(report.executed_skills),
            "failed_skills": list(report.failed_skills),
            "fallback_used": report.fallback_used,
            "warnings": list(uif.warnings),
            "metadata": {
                "task_id": uif.task_id,
                "execution_plan": list(uif.execution_plan),
                "skill_timings": dict(uif.skill_timings),
                "log_trace": list(uif.log_trace) if tracing else [],
            },
        }
        if not success:
            response["error"] = report.error_details or uif.error_details
        if report.validation_report is not None:
            validation = report.validation_report
            response["validation"] = {
                "is_valid": validation.is_valid,
                "warnings_count": validation.warnings_count,
                "errors_count": validation.errors_count,
                "execution_estimate": validation.execution_estimate,
            }
        return response

    def _legacy_response(
        self, routed: RouteResult, report: ExecutionReport | None, elapsed: float
    ) -> dict[str, Any]:
        """The legacy pipeline answered (rollout, or a fallback after SOF failed)."""
        uif = report.uif if report is not None else None
        tracing = bool(flag(self._config, "enable_execution_tracing"))
        return {
            "success": True,
            "response": routed.response,
            "confidence": None,
            "processing_time": elapsed,
            "execution_result": ExecutionResult.SUCCESS.value,
            "executed_skills": ["fallback_generator"],
            "failed_skills": list(report.failed_skills) if report is not None else [],
            "fallback_used": True,
            "warnings": list(uif.warnings) if uif is not None else [],
            "metadata": {
                "task_id": uif.task_id if uif is not None else None,
                "execution_plan": list(uif.execution_plan) if uif is not None else [],
                "skill_timings": dict(uif.skill_timings) if uif is not None else {},
                "log_trace": list(uif.log_trace) if uif is not None and tracing else [],
            },
        }


def _sam_file_manager() -> SOFConfigManager:
    from sof_sam.config import get_sof_config_manager

    return get_sof_config_manager().core


def _for_router(report: ExecutionReport) -> sof_core.ExecutionReport:
    """SAM's report as the router judges runs: an invalid plan raises, anything else is a
    ``sof_core.ExecutionReport`` whose status is SAM's result."""
    validation = report.validation_report
    if (report.result == ExecutionResult.FAILURE and not report.fallback_used
            and validation is not None and not validation.is_valid):
        raise PlanValidationError([
            ValidationProblem(_CODES.get(issue.issue_type, issue.issue_type),  # type: ignore[arg-type]
                              issue.description, (issue.skill_name,))
            for issue in validation.issues if issue.severity == ValidationResult.INVALID
        ])
    underneath = report.sof_report
    errors = list(underneath.errors) if underneath is not None else []
    detail = report.error_details or report.uif.error_details
    if report.result not in _STATUS and detail and detail not in errors:
        errors.insert(0, detail)
    return sof_core.ExecutionReport(
        uif=report.uif,
        status=_STATUS.get(report.result, "failure"),  # type: ignore[arg-type]
        plan=list(underneath.plan) if underneath is not None else list(report.executed_skills),
        stages=list(underneath.stages) if underneath is not None else [],
        results=list(underneath.results) if underneath is not None else [],
        errors=errors,
        duration=report.execution_time,
        executor=underneath.executor if underneath is not None else "",
        timings=dict(underneath.timings) if underneath is not None else {},
    )


def _error_response(error_message: str, elapsed: float = 0.0) -> dict[str, Any]:
    return {
        "success": False,
        "response": f"I apologize, but I encountered an error: {error_message}",
        "confidence": 0.0,
        "processing_time": elapsed,
        "execution_result": ExecutionResult.FAILURE.value,
        "executed_skills": [],
        "failed_skills": [],
        "fallback_used": False,
        "warnings": [],
        "error": error_message,
        "metadata": {"task_id": None, "execution_plan": [], "skill_timings": {},
                     "log_trace": []},
    }


# --- the process-wide instance ------------------------------------------------------------

_sof_integration: SOFIntegration | None = None
_instance_lock = threading.Lock()


def get_sof_integration(
    fallback_generator: Callable[[str], str] | None = None,
) -> SOFIntegration:
    """The process-wide ``SOFIntegration``, created on first call (thread-safe); later calls
    return it unchanged, whatever ``fallback_generator`` they pass, as long as SAM's config
    file is the same. When it is another (``$SOF_CONFIG`` set afresh in a running process,
    as a test suite does for each test), the instance made for the old file is shut down
    and a fresh one is made for the new file (with this call's ``fallback_generator``, else
    the old instance's): its routing and its coordinator's settings come from that file."""
    global _sof_integration
    stale: SOFIntegration | None = None
    with _instance_lock:
        current = _sof_integration
        if (current is not None and current._follows_file
                and Path(current._manager.path) != Path(_sam_file_manager().path)):
            stale, current = current, None
            fallback_generator = fallback_generator or stale._fallback_generator
        if current is None:
            current = _sof_integration = SOFIntegration(fallback_generator)
    if stale is not None:
        stale.shutdown()
    return current


def reset_sof_integration() -> None:
    """Shut down and forget the process-wide instance (tests, or a host reconfiguring)."""
    global _sof_integration
    with _instance_lock:
        instance, _sof_integration = _sof_integration, None
    if instance is not None:
        instance.shutdown()


def process_query_with_sof(
    query: str,
    user_id: str | None = None,
    session_id: str | None = None,
    user_context: dict[str, Any] | None = None,
    custom_plan: list[str] | None = None,
    fallback_generator: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """``get_sof_integration(fallback_generator).process_query(...)``."""
    sof = get_sof_integration(fallback_generator)
    return sof.process_query(query, user_id, session_id, user_context, custom_plan)


def is_sof_available() -> bool:
    """SOF is enabled in the live configuration and the process-wide instance is ready."""
    sof = get_sof_integration()
    return sof._sof_enabled() and sof.is_initialized()


__all__ = [
    "DEFAULT_PLAN",
    "NoLegacyPipelineError",
    "SOFIntegration",
    "get_sof_integration",
    "is_sof_available",
    "process_query_with_sof",
    "reset_sof_integration",
]
