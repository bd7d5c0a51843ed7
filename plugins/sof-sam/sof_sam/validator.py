"""SAM's ``PlanValidationEngine`` on sof_core's validator.

The checks are SOF's (unknown skills, missing and duplicate producers, cycles, type
mismatches, untrusted output), run by ``sof_core.CoordinatorEngine.compile`` on the real
graph; this module reports them in SAM's shape. Two of SAM's own rules are kept because SAM's
callers rely on them: a plan longer than SAM's ``max_plan_length`` or naming a skill twice is a
*warning* (SOF runs each skill once), and, since SAM runs a plan in the order written, a skill
listed before the producer of one of its required inputs is an error (a warning when
``enable_parallel_execution`` lets SOF order the plan by its graph).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import sof_core
from sof_core import CompiledPlan, PlanValidationError
from sof_sam._engine import flag, load_sam_config, sam_engine

logger = logging.getLogger(__name__)

#: Fields a host fills in: always available to a skill, as in sof_core.
_HOST_FIELDS = frozenset(
    {
        "task_id", "input_query", "user_context", "active_profile", "session_id", "user_id",
        "security_context", "requires_vetting", "source_documents",
    }
)
#: The host fields SAM counts as available only when they hold a value (SAM's
#: ``_validate_dependencies``): a skill requiring an empty one has a missing dependency.
_FILLED_FIELDS = ("input_query", "source_documents", "user_context", "active_profile",
                  "session_id", "user_id")
#: Validation reports kept per engine (plan, registry version and inputs make the key).
_CACHE_SIZE = 512


class ValidationResult(str, Enum):
    """Severity of a ``ValidationIssue`` (SAM's values)."""

    VALID = "valid"
    INVALID = "invalid"
    WARNING = "warning"


@dataclass
class ValidationIssue:
    """One problem of a plan. ``issue_type`` is SAM's name for it where SAM had one
    (``missing_skill``, ``missing_dependencies``, ``circular_dependency``,
    ``plan_too_long``, ``duplicate_skill``), else SOF's problem code."""

    severity: ValidationResult
    skill_name: str
    issue_type: str
    description: str
    suggestion: str | None = None


@dataclass
class PlanValidationReport:
    """What SAM's coordinator needs to decide whether, and what, to run.

    ``optimized_plan`` is the order SOF runs (the plan's own order wherever its dependencies
    allow); ``dependency_graph`` maps each skill to the skills producing its inputs, from the
    same graph the executor uses.
    """

    is_valid: bool
    issues: list[ValidationIssue]
    optimized_plan: list[str]
    execution_estimate: float
    dependency_graph: dict[str, list[str]]
    warnings_count: int
    errors_count: int


#: SOF problem code -> SAM issue type, where SAM named the same problem.
_SAM_TYPES = {
    "unknown_skill": "missing_skill",
    "missing_producer": "missing_dependencies",
    "cycle": "circular_dependency",
}
#: SOF problems that are only warnings for SAM (SOF runs such a plan all the same).
_WARNINGS = frozenset({"duplicate_skill", "empty_plan", "plan_too_long"})


class PlanValidationEngine:
    """Validates plans against the skills its engine can run, as SAM's validator did.

    ``engine`` (a ``sof_core.CoordinatorEngine``) and ``config`` (SAM's configuration) are
    ``sof_sam`` extensions: SAM's coordinator passes its own, so the validator sees exactly
    the skills the coordinator runs. By default the validator has an engine of its own over
    the installed plugins, and reads ``sof_sam.config.get_sof_config()``.
    """

    def __init__(
        self, *, engine: sof_core.CoordinatorEngine | None = None, config: Any = None
    ) -> None:
        self.logger = logging.getLogger(f"{__name__}.PlanValidationEngine")
        self._config_given = config
        self._engine = engine if engine is not None else sam_engine(load_sam_config(config))
        self._cache: OrderedDict[tuple[Any, ...], PlanValidationReport] = OrderedDict()
        self._lock = threading.Lock()

    # --- registration --------------------------------------------------------------------

    def register_skill(self, skill: Any) -> None:
        """Register ``skill`` on this validator's engine; a second skill of the same name
        replaces the first (an installed plugin's skill of that name is overridden here
        only)."""
        self._engine.register_skill(skill)
        self.logger.debug("Registered skill: %s", getattr(skill, "skill_name", skill))

    def register_skills(self, skills: Iterable[Any]) -> None:
        for skill in skills:
            self.register_skill(skill)

    def get_registered_skills(self) -> list[str]:
        """Every skill this validator knows: registered here, or by an installed plugin."""
        return list(self._engine.registry.skill_names())

    def get_skill_info(self, skill_name: str) -> dict[str, Any] | None:
        """SAM's 8-key dependency info of a known skill; None for an unknown name."""
        entry = self._engine.registry.skill(skill_name)
        if entry is None:
            return None
        spec = entry.spec
        return {
            "skill_name": spec.name,
            "required_inputs": list(spec.required_inputs),
            "optional_inputs": list(spec.optional_inputs),
            "output_keys": list(spec.output_keys),
            "requires_external_access": spec.requires_external_access,
            "requires_vetting": spec.requires_vetting,
            "can_run_parallel": spec.can_run_parallel,
            "estimated_execution_time": getattr(entry.instance, "estimated_execution_time",
                                                spec.estimated_execution_time),
        }

    # --- validation ----------------------------------------------------------------------

    def validate_plan(self, plan: Sequence[str], uif: Any) -> PlanValidationReport:
        """Every problem of ``plan`` for ``uif``'s inputs, in SAM's report shape.

        Reports are cached per plan, registry version, available ``intermediate_data`` keys
        and the flags that change the verdict (``clear_cache()`` empties the cache).
        """
        config = load_sam_config(self._config_given)
        in_order = not flag(config, "enable_parallel_execution")
        limit = flag(config, "max_plan_length")
        available = frozenset(uif.intermediate_data.keys())
        empty = frozenset(f for f in _FILLED_FIELDS if not getattr(uif, f, None))
        if not (isinstance(plan, (list, tuple)) and all(type(p) is str for p in plan)):
            # Not a list of names (an item may be unhashable, [["A"]]): SOF's plan_type
            # problems name each bad item; nothing worth caching.
            return self._validate(plan, available, in_order, limit, empty)
        key = (tuple(plan), self._engine.registry.version, available, in_order, limit, empty)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        report = self._validate(plan, available, in_order, limit, empty)
        with self._lock:
            self._cache[key] = report
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        self.logger.info(
            "Plan validation complete: %s (%d errors, %d warnings)",
            "VALID" if report.is_valid else "INVALID", report.errors_count, report.warnings_count,
        )
        return report

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def _validate(
        self, plan: Sequence[str], available: frozenset[str], in_order: bool, limit: Any,
        empty: frozenset[str] = frozenset(),
    ) -> PlanValidationReport:
        try:
            compiled = self._engine.compile(plan, available)
        except PlanValidationError as exc:  # not a list of names at all
            return _report([_issue(p) for p in exc.problems], [], 0.0, {})
        issues: list[ValidationIssue] = []
        missing: dict[str, list[str]] = {}
        for problem in compiled.problems:
            if problem.code == "missing_producer" and problem.skills:
                missing.setdefault(problem.skills[0], []).append(problem.key or "")
                continue
            issues.append(_issue(problem))
        for skill, key in _empty_fields(plan, compiled, empty):
            missing.setdefault(skill, []).append(key)
        for skill, keys in missing.items():
            issues.append(
                ValidationIssue(
                    ValidationResult.INVALID, skill, "missing_dependencies",
                    f"Missing required inputs: {keys}",
                    "Ensure required inputs are provided by previous skills or initial UIF "
                    f"(no skill in the plan produces {', '.join(map(repr, keys))})",
                )
            )
        if isinstance(limit, int) and len(plan) > limit:
            issues.append(
                ValidationIssue(
                    ValidationResult.WARNING, "plan", "plan_too_long",
                    f"Plan length ({len(plan)}) exceeds recommended maximum ({limit})",
                    "Consider breaking into smaller sub-plans or optimizing",
                )
            )
        issues.extend(_order_issues(plan, compiled, available, in_order))
        order = list(compiled.order) or [n for n in dict.fromkeys(plan) if n in compiled.steps]
        return _report(issues, order, self._estimate(compiled, order),
                       _dependency_graph(compiled, order))

    def _estimate(self, compiled: CompiledPlan, order: Sequence[str]) -> float:
        total = 0.0
        for name in order:
            step = compiled.steps.get(name)
            if step is None:
                continue
            estimate = getattr(step.instance, "estimated_execution_time", None)
            total += float(estimate) if isinstance(estimate, (int, float)) and estimate else 1.0
        return total


def _report(
    issues: list[ValidationIssue],
    order: list[str],
    estimate: float,
    graph: dict[str, list[str]],
) -> PlanValidationReport:
    errors = sum(1 for i in issues if i.severity == ValidationResult.INVALID)
    warnings = sum(1 for i in issues if i.severity == ValidationResult.WARNING)
    return PlanValidationReport(errors == 0, issues, order, estimate, graph, warnings, errors)


def _issue(problem: Any) -> ValidationIssue:
    """SAM's issue for one of SOF's ``ValidationProblem``s."""
    severity = (
        ValidationResult.WARNING if problem.code in _WARNINGS else ValidationResult.INVALID
    )
    skill = problem.skills[-1] if problem.skills else "plan"
    if problem.code == "cycle" and problem.path:
        skill = problem.path[0]
    suggestion = {
        "unknown_skill": "Register the skill or remove it from the plan",
        "duplicate_skill": "SOF runs each skill of a plan once; list it once",
        "duplicate_producer": "Keep one producer of the key in the plan",
        "cycle": "Break the cycle by removing one of the inputs it names",
        "empty_plan": "Nothing will run; give a plan or use dynamic planning",
    }.get(problem.code)
    return ValidationIssue(severity, skill, _SAM_TYPES.get(problem.code, problem.code),
                           problem.message, suggestion)


def _empty_fields(plan: Sequence[str], compiled: CompiledPlan, empty: frozenset[str]
                  ) -> list[tuple[str, str]]:
    """``(skill, field)`` for each UIF field a skill requires that is empty on the UIF and
    that no skill listed before it writes: SAM counts such a field as missing."""
    written: set[str] = set()
    found: list[tuple[str, str]] = []
    for name in dict.fromkeys(plan):
        step = compiled.steps.get(name)
        if step is None:
            continue
        found.extend((name, key) for key in step.spec.required_inputs
                     if key in empty and key not in written)
        written.update(step.spec.output_keys)
    return found


def _order_issues(
    plan: Sequence[str], compiled: CompiledPlan, available: frozenset[str], in_order: bool
) -> list[ValidationIssue]:
    """Skills listed before the producer of an input: SAM runs plans as written."""
    position: dict[str, int] = {}
    for index, name in enumerate(plan):
        position.setdefault(name, index)
    producers: dict[str, list[str]] = {}
    for name, step in compiled.steps.items():
        for key in step.spec.output_keys:
            producers.setdefault(key, []).append(name)
    issues = []
    for name, step in compiled.steps.items():
        here = position[name]
        for key in step.spec.inputs:
            if key in available or key in _HOST_FIELDS:
                continue
            makers = [p for p in producers.get(key, ()) if p != name]
            if not makers or any(position[p] < here for p in makers):
                continue
            later = makers[0]
            required = key in step.spec.required_inputs
            if not required and in_order:
                continue  # run as written, without it, as SAM runs it
            if required and in_order:
                issues.append(
                    ValidationIssue(
                        ValidationResult.INVALID, name, "missing_dependencies",
                        f"Missing required inputs: [{key!r}] ({later!r}, which produces it, "
                        "comes later in the plan)",
                        f"List {later!r} before {name!r}, or set enable_parallel_execution "
                        "to let SOF order the plan by its dependencies",
                    )
                )
            else:
                issues.append(
                    ValidationIssue(
                        ValidationResult.WARNING, name, "reordered",
                        f"{'Required' if required else 'Optional'} input {key!r} is produced "
                        f"by {later!r}, listed after {name!r}; SOF runs {later!r} first",
                        f"List {later!r} before {name!r}",
                    )
                )
    return issues


def _dependency_graph(compiled: CompiledPlan, order: Sequence[str]) -> dict[str, list[str]]:
    """Each skill -> the skills whose outputs it reads (the graph's edges, reversed)."""
    producers: dict[str, list[str]] = {}
    for name in order:
        for key in compiled.steps[name].spec.output_keys:
            producers.setdefault(key, []).append(name)
    graph: dict[str, list[str]] = {}
    for name in order:
        deps: dict[str, None] = {}
        for key in compiled.steps[name].spec.inputs:
            for producer in producers.get(key, ()):
                if producer != name:
                    deps[producer] = None
        graph[name] = list(deps)
    return graph


__all__ = ["PlanValidationEngine", "PlanValidationReport", "ValidationIssue", "ValidationResult"]
