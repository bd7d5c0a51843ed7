"""SAM's ``CoordinatorEngine`` on sof_core's engine.

Each instance owns one ``sof_core.CoordinatorEngine`` (its own registry over the installed
plugins) and translates SAM's API and semantics onto it: SAM's validation verdicts and
fallbacks (the safe plan, then the ``fallback_generator``), SAM's result values and error
texts, and SAM's flags (a plan runs one skill at a time in the order written unless
``enable_parallel_execution``). Skills run in SOF's executor, under SOF's timeouts, reading
and writing only what they declare.

SAM's loss balancer, domain constraints and curriculum have no SOF counterpart: their
constructor switches are accepted and do nothing (see the README).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

import sof_core
from sof_core import UIFStatus as SOFStatus
from sof_sam._engine import as_sam_uif, executor_for, flag, load_sam_config, now_iso, sam_engine
from sof_sam.planner import DynamicPlanner, PlanGenerationResult
from sof_sam.skills.base import BaseSkillModule, SkillExecutionError
from sof_sam.uif import SAM_UIF
from sof_sam.validator import PlanValidationEngine, PlanValidationReport

logger = logging.getLogger(__name__)

#: Reports kept by ``get_execution_history()`` (SAM kept every one, without bound).
MAX_EXECUTION_HISTORY = 1000
#: SAM's safe plan, run (with those of its skills registered on the coordinator, as in SAM:
#: a skill that only an installed plugin provides is not part of it) when a plan is invalid.
SAFE_PLAN = ("MemoryRetrievalSkill", "ResponseGenerationSkill")
#: Errors SOF raises for a skill that are ``SkillExecutionError``s in SAM's terms.
_EXECUTION_ERRORS = frozenset(
    {
        "SkillExecutionError", "SkillTimeoutError", "RunTimeoutError", "UndeclaredReadError",
        "UndeclaredWriteError", "SkillCrashedError",
    }
)

#: sof_core's error for a skill that left its UIF's status "failure" with no error_details.
_NO_ERROR_DETAILS = "set_error() was called"


class ExecutionResult(str, Enum):
    """How a run ended (SAM's values)."""

    SUCCESS = "success"
    FAILURE = "failure"
    PARTIAL_SUCCESS = "partial_success"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


@dataclass
class ExecutionReport:
    """SAM's report of one ``execute_plan``.

    ``failed_skills`` are the planned skills that did not complete; ``execution_time`` is in
    seconds; ``error_details`` is set when the run never started (invalid plan) or broke
    (skill failures are in ``uif.error_details``, as in SAM). ``sof_report`` (a ``sof_sam``
    extension) is the ``sof_core.ExecutionReport`` of the engine run underneath, with a
    result per skill (status, attempts, traceback); None when no skill ran.
    """

    result: ExecutionResult
    uif: SAM_UIF
    executed_skills: list[str]
    failed_skills: list[str]
    execution_time: float
    validation_report: PlanValidationReport | None
    fallback_used: bool
    error_details: str | None = None
    sof_report: sof_core.ExecutionReport | None = field(default=None, repr=False, compare=False)


_RESULTS = {
    "success": ExecutionResult.SUCCESS,
    "partial": ExecutionResult.PARTIAL_SUCCESS,
    "failure": ExecutionResult.FAILURE,
    "timeout": ExecutionResult.TIMEOUT,
}


class CoordinatorEngine:
    """Validates and runs plans of skills, with SAM's fallbacks, history and statistics.

    ``enable_loss_balancing``, ``enable_domain_constraints`` and ``constraints_config_path``
    are accepted for SAM's signature and have no effect (SOF has no counterpart).
    ``motivation_engine`` is used as SAM used it: its ``goal_stack`` is given to the planner
    and ``generate_goals_from_uif(uif)`` is called after a successful run.

    ``config`` (SAM's configuration; default ``sof_sam.config.get_sof_config()``, read once
    here as SAM did) and ``engine`` (the ``sof_core.CoordinatorEngine`` to drive; default a
    new one over the installed plugins) are ``sof_sam`` extensions.
    """

    def __init__(
        self,
        fallback_generator: Callable[[str], str] | None = None,
        enable_dynamic_planning: bool = True,
        enable_loss_balancing: bool = True,
        enable_domain_constraints: bool = True,
        constraints_config_path: str | None = None,
        motivation_engine: Any = None,
        *,
        config: Any = None,
        engine: sof_core.CoordinatorEngine | None = None,
    ) -> None:
        self.logger = logging.getLogger(f"{__name__}.CoordinatorEngine")
        self._config = load_sam_config(config)
        self._engine = sam_engine(self._config, engine)
        self._validator = PlanValidationEngine(engine=self._engine, config=self._config)
        goal_stack = getattr(motivation_engine, "goal_stack", None) if motivation_engine else None
        self._dynamic_planner = (
            DynamicPlanner(goal_stack=goal_stack, engine=self._engine, config=self._config)
            if enable_dynamic_planning
            else None
        )
        self._fallback_generator = fallback_generator
        self._motivation_engine = motivation_engine
        self._history: deque[ExecutionReport] = deque(maxlen=MAX_EXECUTION_HISTORY)
        self._history_lock = threading.Lock()
        #: Names registered on this coordinator (SAM's ``_registered_skills``): the safe plan
        #: is drawn from these only, as SAM did.
        self._registered_names: set[str] = set()
        #: SAM's switches without a SOF counterpart, kept so callers can read them back.
        self.enable_loss_balancing = enable_loss_balancing
        self.enable_domain_constraints = enable_domain_constraints
        self.constraints_config_path = constraints_config_path

    @property
    def sof_engine(self) -> sof_core.CoordinatorEngine:
        """The ``sof_core.CoordinatorEngine`` this coordinator drives."""
        return self._engine

    # --- registration --------------------------------------------------------------------

    def register_skill(self, skill: BaseSkillModule) -> None:
        """Register ``skill`` on this coordinator's engine (validator and planner see it).

        Registering another skill of the same name replaces it; a skill of that name from an
        installed plugin is overridden on this coordinator only. A skill SOF cannot use
        raises its ``sof_core`` error (``SkillDefinitionError``, ...) and changes nothing.
        """
        self._engine.register_skill(skill)
        self._registered_names.add(str(getattr(skill, "skill_name", "")))
        self.logger.info("Registered skill: %s", getattr(skill, "skill_name", skill))

    def register_skills(self, skills: Iterable[BaseSkillModule]) -> None:
        for skill in skills:
            self.register_skill(skill)

    def get_registered_skills(self) -> list[str]:
        """Every skill this coordinator can run: registered on it or by installed plugins."""
        return list(self._engine.registry.skill_names())

    # --- running -------------------------------------------------------------------------

    def execute_plan(
        self, plan: list[str], uif: SAM_UIF, use_dynamic_planning: bool = False
    ) -> ExecutionReport:
        """Validate and run ``plan`` on ``uif`` (updated in place).

        A bad plan and a failing skill are outcomes in the report, never exceptions. The one
        error raised is for a ``uif`` that is not a ``SAM_UIF`` (nor a ``sof_core.UIF``):
        ``sof_core.UIFError`` (a ``ValueError``) naming the argument, as there is no UIF to
        report on.

        With ``use_dynamic_planning`` (and the planner enabled) the planner's plan replaces
        ``plan`` when it finds one. An invalid plan, or an error outside the skills, falls
        back as SAM did when ``enable_fallback_plans`` is on; a plan that is not a list of
        skill-name strings (``None``, ``[["a"]]``) is invalid, naming each bad item, even with
        ``enable_plan_validation`` off. A plain ``sof_core.UIF`` is
        converted to a ``SAM_UIF`` first (the report then holds the converted one).
        """
        return self._execute(plan, uif, use_dynamic_planning, allow_generator=True)

    def execute_with_dynamic_planning(self, uif: SAM_UIF) -> ExecutionReport:
        """Run whatever plan the planner makes for ``uif``."""
        return self.execute_plan([], uif, use_dynamic_planning=True)

    def _execute(
        self, plan: Sequence[str], uif: Any, use_dynamic_planning: bool, allow_generator: bool
    ) -> ExecutionReport:
        """Run ``plan``; afterwards ``uif.execution_plan`` is the plan asked for, as in SAM.

        SOF's engine records the skills it ran there (repeats dropped, or the safe plan of a
        fallback); SAM set the field to the caller's plan once and never changed it, and
        SAM's callers (``process_query``'s ``metadata["execution_plan"]``) read it back.
        """
        uif = as_sam_uif(uif)
        requested = list(plan) if _is_names(plan) else []
        report = self._execute_as_planned(plan, uif, use_dynamic_planning, allow_generator)
        report.uif.execution_plan = requested
        return report

    def _execute_as_planned(
        self, plan: Sequence[str], uif: SAM_UIF, use_dynamic_planning: bool,
        allow_generator: bool,
    ) -> ExecutionReport:
        started = time.perf_counter()
        names = _is_names(plan)
        self.logger.info("Starting plan execution: %s", plan)
        uif.add_log_entry(f"CoordinatorEngine starting plan execution: {plan}")
        uif.execution_plan = list(plan) if names else []
        uif.start_time = now_iso()
        try:
            if use_dynamic_planning and self._dynamic_planner is not None:
                planned: PlanGenerationResult = self._dynamic_planner.create_plan(uif)
                if planned.plan:
                    plan = planned.plan
                    uif.add_log_entry(
                        f"Dynamic plan generated: {plan} (confidence: {planned.confidence:.2f})"
                    )
                else:
                    uif.add_warning("Dynamic planning failed, using provided plan")
            validation: PlanValidationReport | None = None
            if flag(self._config, "enable_plan_validation") or not _is_names(plan):
                # Not a list of names: an invalid plan (naming each bad item) even with
                # validation off, never a TypeError from running it.
                validation = self._validator.validate_plan(plan, uif)
                if not validation.is_valid:
                    return self._handle_invalid_plan(plan, uif, validation, started,
                                                     allow_generator)
                run_plan = list(validation.optimized_plan)
                uif.add_log_entry(
                    f"Plan validated successfully, executing optimized plan: {run_plan}"
                )
            else:
                run_plan = list(plan)
                uif.add_log_entry("Plan validation disabled, executing original plan")
            result, sof_report, failed = self._run(run_plan, uif)
            uif.end_time = now_iso()
            report = ExecutionReport(
                result, uif, list(uif.executed_skills), failed,
                time.perf_counter() - started, validation, False, sof_report=sof_report,
            )
            self._record(report)
            self.logger.info("Plan execution completed: %s in %.3fs", result.value,
                             report.execution_time)
            if self._motivation_engine is not None and result in (
                ExecutionResult.SUCCESS, ExecutionResult.PARTIAL_SUCCESS,
            ):
                self._generate_goals(uif)
            return report
        except Exception as exc:
            self.logger.exception("Unexpected error during plan execution")
            return self._handle_execution_error(plan, uif, str(exc), started, allow_generator)

    def _run(
        self, plan: Sequence[str], uif: SAM_UIF
    ) -> tuple[ExecutionResult, sof_core.ExecutionReport | None, list[str]]:
        """Run ``plan`` on the engine; SAM's result, SOF's report, the skills not completed.

        Each skill runs once (a repeated name is dropped). A name the engine does not know
        (only possible with validation off) fails as in SAM: the run stops there, or with
        ``continue_on_skill_failure`` the others run.
        """
        uif.status = SOFStatus.RUNNING
        plan = list(dict.fromkeys(plan))
        registry = self._engine.registry
        unknown = [name for name in plan if name not in registry]
        go_on = bool(flag(self._config, "continue_on_skill_failure"))
        if unknown and not go_on:
            runnable = plan[: plan.index(unknown[0])]
        else:
            runnable = [name for name in plan if name in registry]
        sof_report = None
        status = "success"
        if runnable:
            executor = executor_for(self._config)
            order: Literal["written", "dependencies"] = (
                "written" if executor == "sequential" else "dependencies")
            if self._engine.config.plan_order != order:  # the flag changed since start-up
                self._engine.config.plan_order = order
            uif.add_log_entry(
                f"Executing {len(runnable)} skill(s) "
                f"{'in plan order' if executor else 'in dependency stages'}: {runnable}"
            )
            sof_report = self._engine.execute_plan(runnable, uif, executor=executor)
            status = sof_report.status
            self._note_results(sof_report, uif)
        executed = set(uif.executed_skills)
        failed = [name for name in plan if name not in executed]
        if status == "success" and unknown:
            status = "partial" if go_on and runnable else "failure"
        result = _RESULTS.get(status, ExecutionResult.FAILURE)
        first_error = self._first_error(sof_report, uif)
        if result == ExecutionResult.SUCCESS:
            uif.status = SOFStatus.SUCCESS
        elif result == ExecutionResult.PARTIAL_SUCCESS:
            uif.add_warning(f"Partial execution: {len(failed)} skills failed")
            uif.error_details = first_error or _not_found(unknown)
            uif.status = SOFStatus.RUNNING  # SAM leaves a partly failed run RUNNING
        elif result == ExecutionResult.TIMEOUT:
            uif.add_warning("Execution timeout reached")
            uif.error_details = first_error
            uif.status = SOFStatus.RUNNING  # and a timed-out one (SAM_UIF has no TIMEOUT)
        elif go_on and not any(name in executed for name in plan):
            uif.set_error("All skills in plan failed")
        else:
            uif.set_error(first_error or _not_found(unknown) or "Plan execution failed")
        return result, sof_report, failed

    def _first_error(self, sof_report: sof_core.ExecutionReport | None, uif: SAM_UIF
                     ) -> str | None:
        if sof_report is None:
            return None
        for item in sof_report.results:
            if item.status != "success":
                return self._sam_error(item, uif)
        return None

    def _sam_error(self, item: sof_core.SkillResult, uif: SAM_UIF) -> str:
        """A skill's failure in the words SAM's ``execute_with_monitoring`` used."""
        message = item.error or item.status
        kind = item.error_type or ""
        if kind == "SkillDependencyError":
            if item.status == "skipped":
                entry = self._engine.registry.skill(item.skill)
                required = entry.spec.required_inputs if entry is not None else ()
                data = uif.intermediate_data
                missing = [k for k in required if k not in data and getattr(uif, k, None) is None]
                message = f"Skill {item.skill} missing required inputs: {missing}"
            return f"Dependency error: {message}"
        if kind == "SkillExecutionError" and item.traceback is None:
            if message == _NO_ERROR_DETAILS:  # status set to failure, set_error() not called
                return (f"Skill {item.skill} set status failure without calling "
                        "set_error() (no error details)")
            return message  # the skill called set_error(): SAM keeps its words
        if kind == "SkillExecutionError":
            return f"Execution error: {message}"
        if kind in _EXECUTION_ERRORS:
            return f"Execution error: {kind}: {message}"
        return f"Unexpected error: {message}"

    def _note_results(self, sof_report: sof_core.ExecutionReport, uif: SAM_UIF) -> None:
        """SAM's per-skill log lines and missing-output warnings, from SOF's results."""
        fields = type(uif).model_fields
        for item in sof_report.results:
            if item.error_type == "SkillNotRunError":
                continue  # SAM logs nothing for the skills a stopped run never reached
            if item.status != "success":
                uif.add_log_entry(f"Skill {item.skill} failed: {self._sam_error(item, uif)}")
                continue
            uif.add_log_entry(f"Skill {item.skill} completed in {item.duration:.3f}s")
            entry = self._engine.registry.skill(item.skill)
            if entry is None:
                continue
            missing = [
                key for key in entry.spec.output_keys
                if key not in uif.intermediate_data and key not in uif.skill_outputs
                and not (key in fields and getattr(uif, key, None) not in (None, "", [], {}))
            ]
            if missing:
                uif.add_warning(
                    f"Skill {item.skill} did not produce expected outputs: {missing}"
                )

    def _generate_goals(self, uif: SAM_UIF) -> None:
        try:
            goals = self._motivation_engine.generate_goals_from_uif(uif)
            if goals:
                uif.add_log_entry(f"Generated {len(goals)} autonomous goals")
        except Exception as exc:
            self.logger.warning("Goal generation failed: %s", exc)
            uif.add_log_entry(f"Goal generation failed: {exc}")

    # --- failures and fallbacks ----------------------------------------------------------

    def _handle_invalid_plan(
        self,
        plan: Sequence[str],
        uif: SAM_UIF,
        validation: PlanValidationReport,
        started: float,
        allow_generator: bool,
    ) -> ExecutionReport:
        error_details = f"Plan validation failed: {validation.errors_count} errors"
        uif.set_error(error_details)
        self.logger.warning("Plan validation failed: %s",
                            [issue.description for issue in validation.issues])
        if flag(self._config, "enable_fallback_plans"):
            fallback = self._try_fallback_execution(uif, started, allow_generator)
            if fallback is not None:
                return fallback
        uif.end_time = now_iso()
        report = ExecutionReport(
            ExecutionResult.FAILURE, uif, [], list(plan) if isinstance(plan, (list, tuple))
            else [], time.perf_counter() - started, validation, False, error_details,
        )
        self._record(report)
        return report

    def _handle_execution_error(
        self, plan: Sequence[str], uif: SAM_UIF, message: str, started: float,
        allow_generator: bool,
    ) -> ExecutionReport:
        uif.set_error(f"Execution error: {message}")
        if flag(self._config, "enable_fallback_plans"):
            fallback = self._try_fallback_execution(uif, started, allow_generator)
            if fallback is not None:
                return fallback
        executed = set(uif.executed_skills)
        planned = list(plan) if _is_names(plan) else []
        uif.end_time = now_iso()
        report = ExecutionReport(
            ExecutionResult.FAILURE, uif, list(uif.executed_skills),
            [name for name in dict.fromkeys(planned) if name not in executed],
            time.perf_counter() - started, None, False, message,
        )
        self._record(report)
        return report

    def _try_fallback_execution(
        self, uif: SAM_UIF, started: float, allow_generator: bool = True
    ) -> ExecutionReport | None:
        """SAM's fallbacks in order: the safe plan, then the fallback generator."""
        self.logger.info("Attempting fallback execution")
        uif.add_log_entry("Attempting fallback execution")
        safe = self._get_default_safe_plan()
        if safe:
            try:
                uif.status = SOFStatus.PENDING
                uif.error_details = None
                validation = self._validator.validate_plan(safe, uif)
                if validation.is_valid:
                    result, sof_report, _ = self._run(validation.optimized_plan, uif)
                    if result == ExecutionResult.SUCCESS:
                        uif.end_time = now_iso()
                        report = ExecutionReport(
                            ExecutionResult.SUCCESS, uif, list(uif.executed_skills), [],
                            time.perf_counter() - started, validation, True,
                            sof_report=sof_report,
                        )
                        self._record(report)
                        return report
            except Exception as exc:
                self.logger.error("Fallback execution failed: %s", exc)
        if allow_generator and self._fallback_generator is not None:
            try:
                uif.final_response = self._fallback_generator(uif.input_query)
                uif.status = SOFStatus.SUCCESS
                uif.add_log_entry("Used fallback generator for response")
                uif.end_time = now_iso()
                report = ExecutionReport(
                    ExecutionResult.SUCCESS, uif, ["fallback_generator"], [],
                    time.perf_counter() - started, None, True,
                )
                self._record(report)
                return report
            except Exception as exc:
                self.logger.error("Fallback generator failed: %s", exc)
        return None

    def adopt_installed_skills(self, names: Iterable[str]) -> list[str]:
        """Count those of ``names`` that installed plugins provide as registered on this
        coordinator (what SAM's callers did by registering SAM's core skills), so the safe
        plan may use them. Returns the names adopted."""
        adopted = [name for name in names if name in self._engine.registry]
        self._registered_names.update(adopted)
        return adopted

    def _get_default_safe_plan(self) -> list[str]:
        return [
            name for name in SAFE_PLAN
            if name in self._registered_names and name in self._engine.registry
        ]

    # --- history and statistics ----------------------------------------------------------

    def _record(self, report: ExecutionReport) -> None:
        with self._history_lock:
            self._history.append(report)

    def get_execution_history(self) -> list[ExecutionReport]:
        """The last ``MAX_EXECUTION_HISTORY`` reports (every outcome, fallbacks included),
        oldest first."""
        with self._history_lock:
            return list(self._history)

    def clear_execution_history(self) -> None:
        with self._history_lock:
            self._history.clear()

    def get_execution_stats(self) -> dict[str, Any]:
        """SAM's statistics over ``get_execution_history()`` (zeros when it is empty)."""
        history = self.get_execution_history()
        total = len(history)
        if not total:
            return {
                "total_executions": 0, "successful_executions": 0, "failed_executions": 0,
                "success_rate": 0.0, "fallback_usage_rate": 0.0, "average_execution_time": 0.0,
            }
        successes = sum(1 for r in history if r.result == ExecutionResult.SUCCESS)
        failures = sum(1 for r in history if r.result == ExecutionResult.FAILURE)
        fallbacks = sum(1 for r in history if r.fallback_used)
        return {
            "total_executions": total,
            "successful_executions": successes,
            "failed_executions": failures,
            "success_rate": successes / total,
            "fallback_usage_rate": fallbacks / total,
            "average_execution_time": sum(r.execution_time for r in history) / total,
        }

    # --- SAM's statistics of features SOF does not have ----------------------------------

    def get_loss_balancer_stats(self) -> dict[str, Any] | None:
        """Always None: SOF has no loss balancer."""
        return None

    def get_curriculum_status(self) -> dict[str, Any] | None:
        """Always None: SOF has no reasoning curriculum."""
        return None

    def get_constraint_statistics(self) -> dict[str, Any] | None:
        """Always None: SOF has no domain constraints."""
        return None


def _is_names(plan: Any) -> bool:
    """Whether ``plan`` is a list (or tuple) of skill-name strings."""
    return isinstance(plan, (list, tuple)) and all(isinstance(p, str) for p in plan)


def _not_found(unknown: Sequence[str]) -> str | None:
    return f"Skill '{unknown[0]}' not found during execution" if unknown else None


__all__ = [
    "MAX_EXECUTION_HISTORY",
    "SAFE_PLAN",
    "CoordinatorEngine",
    "ExecutionReport",
    "ExecutionResult",
    "SkillExecutionError",
]
