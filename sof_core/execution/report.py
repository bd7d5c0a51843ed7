"""What a run returns: the final UIF plus what happened to each skill and why."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from sof_core.graph.validate import ValidationProblem
from sof_core.uif import UIF

RunStatus = Literal["success", "partial", "failure", "timeout"]
SkillStatus = Literal["success", "failed", "timeout", "skipped"]


@dataclass
class SkillResult:
    """One skill's outcome in a run; ``duration`` is in seconds."""

    skill: str
    status: SkillStatus
    duration: float = 0.0
    attempts: int = 0
    stage: int = 0
    error: str | None = None
    error_type: str | None = None
    plugin: str | None = None

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
        }


@dataclass
class ExecutionReport:
    """The final UIF, the status of the run, and a result per skill in execution order."""

    uif: UIF
    status: RunStatus
    plan: list[str]
    stages: list[list[str]] = field(default_factory=list)
    results: list[SkillResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duration: float = 0.0
    executor: str = ""
    problems: list[ValidationProblem] = field(default_factory=list)

    @property
    def final_response(self) -> str | None:
        return self.uif.final_response

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    @property
    def failed_skills(self) -> list[str]:
        return [r.skill for r in self.results if r.status in ("failed", "timeout")]

    def result(self, skill: str) -> SkillResult | None:
        for item in self.results:
            if item.skill == skill:
                return item
        return None

    def to_dict(self, include_uif: bool = True) -> dict[str, Any]:
        """Stable JSON shape for scripts (``sof run --json``); keys are only ever added."""
        data: dict[str, Any] = {
            "status": self.status,
            "final_response": self.uif.final_response,
            "confidence_score": self.uif.confidence_score,
            "plan": list(self.plan),
            "stages": [list(s) for s in self.stages],
            "executor": self.executor,
            "duration_ms": round(self.duration * 1000, 3),
            "skills": [r.to_dict() for r in self.results],
            "errors": list(self.errors),
            "warnings": list(self.uif.warnings),
            "problems": [p.to_dict() for p in self.problems],
            "source_documents": list(self.uif.source_documents),
        }
        if include_uif:
            data["uif"] = self.uif.model_dump(mode="json")
        return data

    def to_json(self, include_uif: bool = True, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(include_uif), indent=indent, default=str)
