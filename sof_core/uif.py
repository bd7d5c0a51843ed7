"""The Universal Interface Format: the one object every skill reads from and writes to.

Field names and helpers are SAM's own, so a SAM skill ports by changing its imports.
The model rejects unknown fields and validates on assignment, so a typo in a skill fails
loudly at the line that made it instead of silently creating a new attribute.
"""

from __future__ import annotations

import time
import uuid
from enum import Enum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

import sof_core._pydantic_guard  # noqa: F401  (before any model: see the module)
from sof_core.errors import UIFError


class WriteGuard(Protocol):
    """Checks a running skill's UIF field writes (``sof_core.skills.views.ScopedData``)."""

    def check_field_write(self, name: str) -> None: ...


class UIFStatus(str, Enum):
    """Where a task stands; the coordinator sets it, skills may set FAILURE via ``set_error``."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    VETTING_REQUIRED = "vetting_required"


#: Fields a host fills in before the run; skills may read them without any producer.
HOST_FIELDS: frozenset[str] = frozenset(
    {
        "task_id",
        "input_query",
        "user_context",
        "active_profile",
        "session_id",
        "user_id",
        "security_context",
        "requires_vetting",
        "source_documents",
    }
)

#: Fields the coordinator itself maintains; any skill may append to the logs through the helpers.
BOOKKEEPING_FIELDS: frozenset[str] = frozenset(
    {
        "status",
        "error_details",
        "warnings",
        "log_trace",
        "skill_outputs",
        "execution_plan",
        "executed_skills",
        "skill_timings",
        "start_time",
        "end_time",
    }
)


class UIF(BaseModel):
    """State of one query as it moves through a plan (SAM's ``SAM_UIF``)."""

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        use_enum_values=False,
        arbitrary_types_allowed=False,
    )

    task_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    status: UIFStatus = UIFStatus.PENDING
    input_query: str = Field(min_length=1)
    source_documents: list[str] = Field(default_factory=list)
    user_context: dict[str, Any] = Field(default_factory=dict)
    active_profile: str = "general"
    session_id: str | None = None
    user_id: str | None = None
    intermediate_data: dict[str, Any] = Field(default_factory=dict)
    skill_outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    security_context: dict[str, Any] = Field(default_factory=dict)
    requires_vetting: bool = False
    vetted_content: str | None = None
    final_response: str | None = None
    confidence_score: float | None = Field(default=None, ge=0.0, le=1.0)
    error_details: str | None = None
    warnings: list[str] = Field(default_factory=list)
    log_trace: list[str] = Field(default_factory=list)
    execution_plan: list[str] = Field(default_factory=list)
    executed_skills: list[str] = Field(default_factory=list)
    skill_timings: dict[str, float] = Field(default_factory=dict)
    start_time: float | None = None
    end_time: float | None = None

    # Set by the coordinator on the per-skill copy it hands to a skill; never serialised.
    _sof_guard: WriteGuard | None = PrivateAttr(default=None)

    @field_validator("input_query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("input_query must contain non-whitespace text")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        private = self.__pydantic_private__
        if private is not None:
            guard = private.get("_sof_guard")
            if guard is not None and name[:1] != "_":
                guard.check_field_write(name)
        super().__setattr__(name, value)

    # --- SAM's helpers -------------------------------------------------------------------

    def add_log_entry(self, message: str, skill_name: str | None = None) -> None:
        """Append a trace line; prefixed with the skill so mixed logs stay readable."""
        self.log_trace.append(f"[{skill_name}] {message}" if skill_name else message)

    def add_warning(self, warning: str) -> None:
        """Record a non-fatal problem the user should see."""
        self.warnings.append(warning)

    def set_error(self, error: str, skill_name: str | None = None) -> None:
        """Mark the task failed; inside a skill this makes the coordinator report that skill."""
        self.status = UIFStatus.FAILURE
        self.error_details = f"{skill_name}: {error}" if skill_name else error
        self.add_log_entry(f"ERROR: {error}", skill_name)

    def mark_skill_complete(self, skill_name: str, execution_time: float) -> None:
        """Record that a skill finished and how long it took (seconds)."""
        self.executed_skills.append(skill_name)
        self.skill_timings[skill_name] = execution_time

    def get_skill_output(self, skill_name: str, key: str | None = None) -> Any:
        """A skill's recorded outputs, or one of them; ``None`` when absent."""
        outputs = self.skill_outputs.get(skill_name)
        if outputs is None or key is None:
            return outputs
        return outputs.get(key)

    def set_skill_output(self, skill_name: str, output_data: dict[str, Any]) -> None:
        """Record a skill's outputs for later inspection (merged with any earlier ones)."""
        self.skill_outputs.setdefault(skill_name, {}).update(output_data)

    def is_complete(self) -> bool:
        """True once the run reached a final status."""
        return self.status in (
            UIFStatus.SUCCESS,
            UIFStatus.PARTIAL,
            UIFStatus.FAILURE,
            UIFStatus.TIMEOUT,
        )

    def get_execution_summary(self) -> dict[str, Any]:
        """A small JSON-ready summary for logs and dashboards."""
        total = None
        if self.start_time is not None and self.end_time is not None:
            total = self.end_time - self.start_time
        return {
            "task_id": self.task_id,
            "status": self.status.value,
            "executed_skills": list(self.executed_skills),
            "execution_plan": list(self.execution_plan),
            "skill_timings": dict(self.skill_timings),
            "total_time": total,
            "has_response": self.final_response is not None,
            "confidence_score": self.confidence_score,
            "error_details": self.error_details,
            "warnings": len(self.warnings),
        }

    @classmethod
    def for_query(cls, query: str, **fields: Any) -> UIF:
        """Build a UIF for a new query, stamping ``start_time`` now.

        Raises ``UIFError`` (a ``SOFError`` and ``ValueError``) naming every bad field, so a
        host can catch one SOF exception for everything it passes in.
        """
        try:
            return cls(input_query=query, start_time=time.time(), **fields)
        except ValidationError as exc:
            raise UIFError(describe_validation_error(exc, "UIF")) from exc


def describe_validation_error(exc: ValidationError, what: str) -> str:
    """One line naming each bad field, what is wrong and the value given."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or what
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"is not a {what} field"
        parts.append(f"{field}: {message} (got {error.get('input')!r})")
    return f"invalid {what}: " + "; ".join(parts)


#: SAM's name for the same model, so ``from sof_core import SAM_UIF`` ports code unchanged.
SAM_UIF = UIF

#: Type of every UIF field, used by the validator to type-check declared keys.
UIF_FIELD_TYPES: dict[str, Any] = {name: info.annotation for name, info in UIF.model_fields.items()}
