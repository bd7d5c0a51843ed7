"""What a run returns: the final UIF plus what happened to each skill and why."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from sof_core.graph.validate import ValidationProblem
from sof_core.uif import UIF

RunStatus = Literal["success", "partial", "failure", "timeout"]
SkillStatus = Literal["success", "failed", "timeout", "skipped"]


@dataclass
class SkillResult:
    """One skill's outcome in a run; ``duration`` is in seconds.

    A skill that failed with an exception raised in its own code has ``traceback`` (the
    formatted traceback, starting at the skill's ``execute``) and ``location``
    (``"file:line"`` of the innermost frame in the skill's own code). Both are ``None`` for
    successes, timeouts, skipped skills and failures SOF found after the skill returned
    (``set_error``, a refused write at merge time).
    """

    skill: str
    status: SkillStatus
    duration: float = 0.0
    attempts: int = 0
    stage: int = 0
    error: str | None = None
    error_type: str | None = None
    plugin: str | None = None
    traceback: str | None = None
    location: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "skill": self.skill,
            "status": self.status,
            "duration_ms": round(self.duration * 1000, 3),
            "attempts": self.attempts,
            "stage": self.stage,
            "error": self.error,
            "error_type": self.error_type,
            "plugin": self.plugin,
            "location": self.location,
            "traceback": self.traceback,
        }


#: The name and version of the run's JSON (``ExecutionReport.to_dict``): ``sof run --json``,
#: each item of ``sof run --file --json``, and the HTTP service all return it. Keys are only
#: ever added within a version; removing or changing one makes a new version.
RUN_SCHEMA = "sof.run/1"
RUN_SCHEMA_VERSION = 1
#: A run that could not start has one of these statuses (only in reports from ``not_run``).
NotRunStatus = Literal["invalid", "error"]
#: The phases ``timings`` may hold, in the order a query passes through them.
TIMING_PHASES = ("plugins", "planning", "compile", "run")


@dataclass
class ExecutionReport:
    """The final UIF, the status of the run, and a result per skill in execution order.

    ``timings`` splits the time in seconds by phase: ``compile`` and ``run`` are measured by
    every ``execute_plan``; ``planning`` by ``run_query`` (resolving a goal, choosing the
    plan); ``plugins`` by hosts that load plugins for this run (the ``sof`` command).
    """

    uif: UIF
    status: RunStatus | NotRunStatus
    plan: list[str]
    stages: list[list[str]] = field(default_factory=list)
    results: list[SkillResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duration: float = 0.0
    executor: str = ""
    problems: list[ValidationProblem] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    #: How the plan was chosen when a planner chose it (``PlanResult.to_dict()``: planner,
    #: cache hit, reasons, fallbacks, optimiser changes); None for a plan given explicitly.
    planning: dict[str, Any] | None = None

    @classmethod
    def not_run(
        cls,
        plan: Sequence[str],
        uif: UIF,
        error: str,
        *,
        problems: Sequence[ValidationProblem] = (),
        status: NotRunStatus = "invalid",
    ) -> ExecutionReport:
        """The report of a run that never started (its plan is invalid, or the query could
        not be run), so that it can be returned in the same JSON as any run."""
        return cls(
            uif=uif,
            status=status,
            plan=list(plan),
            errors=[error, *(str(problem) for problem in problems)],
            problems=list(problems),
        )

    @property
    def final_response(self) -> str | None:
        return self.uif.final_response

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    @property
    def failed_skills(self) -> list[str]:
        """Skills that did not succeed: failed, timed out, or skipped (their ``results``
        entry says which, and why)."""
        return [r.skill for r in self.results if r.status != "success"]

    def result(self, skill: str) -> SkillResult | None:
        for item in self.results:
            if item.skill == skill:
                return item
        return None

    def to_dict(self, include_uif: bool = True) -> dict[str, Any]:
        """The run's JSON, schema ``sof.run/1`` (documented in docs/cli.md).

        The one place that shape is built: ``sof run --json``, batch output and the HTTP
        service all call it. ``uif`` is the final UIF with ``intermediate_data``, as
        ``UIF.to_jsonable()`` gives it, so a report always serialises.
        """
        uif = self.uif
        data: dict[str, Any] = {
            "schema": RUN_SCHEMA,
            "schema_version": RUN_SCHEMA_VERSION,
            "status": self.status,
            "task_id": uif.task_id,
            "query": uif.input_query,
            "final_response": uif.final_response,
            "confidence_score": uif.confidence_score,
            "plan": list(self.plan),
            "stages": [list(s) for s in self.stages],
            "executor": self.executor,
            "duration_ms": _ms(self.duration),
            "timings_ms": {
                phase: (_ms(self.timings[phase]) if phase in self.timings else None)
                for phase in TIMING_PHASES
            },
            "skills": [r.to_dict() for r in self.results],
            "failed_skills": list(self.failed_skills),
            "errors": list(self.errors),
            "warnings": list(uif.warnings),
            "problems": [p.to_dict() for p in self.problems],
            "source_documents": list(uif.source_documents),
            "planning": self.planning,
        }
        if include_uif:
            data["uif"] = _dump_uif(uif)
        return data

    def to_json(self, include_uif: bool = True, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(include_uif), indent=indent, default=str)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _dump_uif(uif: UIF) -> dict[str, Any]:
    """The UIF as JSON-ready data, whatever a skill left in it (``UIF.to_jsonable``, which
    never raises; the fallback serves UIF-like objects without it)."""
    to_jsonable = getattr(uif, "to_jsonable", None)
    if callable(to_jsonable):
        return cast("dict[str, Any]", to_jsonable())
    try:
        return uif.model_dump(mode="json", fallback=str)
    except Exception:  # nesting past the serialiser's depth limit, a __str__ that raises
        return {name: _jsonable(uif.__dict__.get(name)) for name in type(uif).model_fields}


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return f"<not JSON: {type(value).__name__}>"
