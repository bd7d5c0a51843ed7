"""SAM's ``SAM_UIF``: SAM's field types and helper formats, with ``sof_core.UIF`` underneath.

``SAM_UIF`` subclasses ``sof_core.UIF``, so ``sof_core.CoordinatorEngine().execute_plan(plan,
sam_uif)`` runs on it directly: each skill gets a guarded ``SAM_UIF`` view (SAM's helpers,
SAM's field types), the coordinator records the run in SAM's formats (status as its string
value, ISO times, ``updated_at``), and the report's ``uif`` is the object it was given. What
differs from ``sof_core.UIF``:

==================  ==============================  =====================================
field               ``sof_core.UIF``                ``SAM_UIF`` (SAM's own)
==================  ==============================  =====================================
``status``          ``UIFStatus`` member            its string value (``"running"``)
``created_at``      (none)                          ISO time the object was made
``updated_at``      (none)                          ISO time of the last change
``start_time``      epoch seconds (float)           naive local ISO time (str)
``end_time``        epoch seconds (float)           naive local ISO time (str)
``vetted_content``  ``str | None``                  ``dict`` (default ``{}``)
``skill_outputs``   ``dict[str, dict]`` (merged)    ``dict[str, Any]`` (replaced)
``input_query``     non-whitespace text             any text of length >= 1
``task_id``         default ``uuid4().hex``         default ``str(uuid4())``
==================  ==============================  =====================================

``UIFStatus`` is SAM's: its five members, ``PENDING``, ``RUNNING``, ``SUCCESS``, ``FAILURE``,
``CANCELLED``, with the values of ``sof_core.UIFStatus``'s members of the same names, so the
two compare equal (``sof_sam.UIFStatus.SUCCESS == sof_core.UIFStatus.SUCCESS``) and either
may be assigned to ``status``. ``status`` itself takes every ``sof_core.UIFStatus`` value: a
``SAM_UIF`` converted from a SOF run may say ``"partial"``, ``"timeout"`` or
``"vetting_required"``, states SAM never sets (compare those with ``sof_core.UIFStatus``).

``from_sof`` and ``to_sof`` convert losslessly in both directions for every value both models
can hold (``SAM_UIF.from_sof(u).to_sof() == u`` and the reverse; ``created_at`` comes back
too, kept beside the converted ``sof_core.UIF``, while ``updated_at`` is the time of the
conversion, SAM's rule for any change); see ``to_sof`` for the exact rules.
"""

from __future__ import annotations

import copy
import json
import uuid
import weakref
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from sof_core import UIF, UIFError
from sof_core import UIFStatus as SOFStatus

__all__ = ["SAM_UIF", "SAM_VALUE_KEY", "VETTED_TEXT_KEY", "UIFStatus"]

#: ``skill_outputs`` values that are not dicts reach ``sof_core.UIF`` wrapped as
#: ``{SAM_VALUE_KEY: value}`` (see ``SAM_UIF.to_sof``).
SAM_VALUE_KEY = "__sam_value__"
#: A ``sof_core.UIF`` ``vetted_content`` text reaches ``SAM_UIF`` as ``{VETTED_TEXT_KEY: text}``.
VETTED_TEXT_KEY = "content"
_TIMES = ("start_time", "end_time")


def _now() -> str:
    return datetime.now().isoformat()


class UIFStatus(str, Enum):
    """SAM's task states: ``sam.orchestration.uif.UIFStatus`` (values as ``sof_core``'s)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"


class SAM_UIF(UIF):
    """SAM's Universal Interface Format: ``sam.orchestration.uif.SAM_UIF`` on ``sof_core``."""

    model_config = ConfigDict(use_enum_values=True)

    task_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    #: Kept as its value: SAM's five (a ``UIFStatus`` member is taken as it is), and SOF's
    #: run outcomes on a converted UIF (``sof_core.UIFStatus`` holds them all). The default
    #: is SAM's ``UIFStatus.PENDING`` member itself, unvalidated as in SAM (pydantic does not
    #: validate defaults), so ``SAM_UIF(...).status.value`` works on a new UIF as it does in
    #: SAM; any value given or assigned is stored as its string.
    status: SOFStatus = Field(default=UIFStatus.PENDING)  # type: ignore[assignment]
    created_at: str = Field(default_factory=_now)
    updated_at: str = Field(default_factory=_now)
    skill_outputs: dict[str, Any] = Field(default_factory=dict)
    vetted_content: dict[str, Any] = Field(default_factory=dict)  # type: ignore[assignment]
    start_time: str | None = None  # type: ignore[assignment]
    end_time: str | None = None  # type: ignore[assignment]

    # The exact epoch seconds behind ISO times made by from_sof, so to_sof gives them back
    # to the last digit while the ISO text is unchanged (ISO text keeps microseconds only).
    _sof_epoch: dict[str, tuple[str, float]] | None = PrivateAttr(default=None)

    #: ``updated_at`` is this model's own bookkeeping: skills refresh it through the helpers.
    _sof_bookkeeping: ClassVar[frozenset[str]] = UIF._sof_bookkeeping | {"updated_at"}

    @field_validator("input_query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        return value  # SAM accepts whitespace-only text (the length of 1 still applies)

    @field_validator("updated_at")
    @classmethod
    def _touched_now(cls, value: str) -> str:
        return _now()  # SAM's rule: whatever is given, updated_at is the time of the change

    @field_validator("vetted_content")
    @classmethod
    def _vetted_round_trips(cls, value: Any, info: Any) -> Any:
        return UIF._round_trips(value, info)  # JSON data only, like the other free-form fields

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "updated_at":
            # Always "now" (SAM's rule) and never a skill's declared write: set it directly,
            # so a skill's guarded view lets it through.
            self.__dict__["updated_at"] = _now()
            self.__pydantic_fields_set__.add("updated_at")
            return
        super().__setattr__(name, value)
        if name[:1] != "_":
            self.__dict__["updated_at"] = _now()

    # --- what the coordinator records, in SAM's formats ----------------------------------

    @classmethod
    def _sof_now(cls) -> Any:
        return _now()

    def _sof_run_started(self) -> None:
        fields = self.__dict__
        now = _now()
        fields["status"] = UIFStatus.RUNNING.value
        if fields["start_time"] is None:
            fields["start_time"] = now
        fields["updated_at"] = now

    def _sof_run_finished(self, status: str) -> None:
        fields = self.__dict__
        now = _now()
        fields["status"] = SOFStatus(status).value
        fields["end_time"] = now
        fields["updated_at"] = now

    def _sof_merge_skill_outputs(self, outputs: dict[str, Any]) -> None:
        self.__dict__["skill_outputs"].update(outputs)  # SAM replaces a skill's output

    # --- SAM's helpers -------------------------------------------------------------------

    def add_log_entry(self, message: str, skill_name: str | None = None) -> None:
        """Append ``"[<iso time>] <skill>: <message>"`` (no skill: ``"[<iso time>] <message>"``)."""
        now = _now()
        self.log_trace.append(f"[{now}] {skill_name}: {message}" if skill_name
                              else f"[{now}] {message}")
        self.__dict__["updated_at"] = now

    def add_warning(self, warning: str) -> None:
        """Record a warning, and log it as ``"WARNING: <warning>"``."""
        self.warnings.append(warning)
        self.add_log_entry(f"WARNING: {warning}")

    def set_error(self, error_message: str, skill_name: str | None = None) -> None:
        """Mark the task failed with ``error_message`` as it is (the log line names the skill).

        Inside a skill run by the coordinator, this makes the coordinator report that skill
        as failed.
        """
        self.status = SOFStatus.FAILURE
        self.error_details = error_message
        self.add_log_entry(f"ERROR: {error_message}", skill_name)

    def mark_skill_complete(self, skill_name: str, execution_time: float | None = None) -> None:
        """Record that a skill finished (once) and, if given, how long it took (seconds).

        Inside a skill run by the coordinator only the log line is written: the coordinator
        records every skill it runs in ``executed_skills`` and ``skill_timings`` itself.
        """
        if not self._sof_in_run():
            if skill_name not in self.executed_skills:
                self.executed_skills.append(skill_name)
            if execution_time is not None:
                self.skill_timings[skill_name] = execution_time
        self.add_log_entry("Completed successfully", skill_name)

    def get_skill_output(self, skill_name: str, key: str | None = None) -> Any:
        """What ``skill_name`` recorded, or ``None``; with ``key`` (SOF's form), one entry of
        a dict output."""
        output = self.skill_outputs.get(skill_name)
        if key is None or not isinstance(output, dict):
            return output if key is None else None
        return output.get(key)

    def set_skill_output(self, skill_name: str, output: Any) -> None:
        """Record ``output`` as ``skill_name``'s output, replacing any earlier one."""
        self.skill_outputs[skill_name] = output
        self.add_log_entry(f"Output set: {type(output).__name__}", skill_name)

    def get_execution_summary(self) -> dict[str, Any]:
        """SAM's summary, plus ``final_response_available``."""
        timings = self.skill_timings
        return {
            "task_id": self.task_id,
            "status": self.status,
            "executed_skills": list(self.executed_skills),
            "total_skills": len(self.execution_plan),
            "warnings_count": len(self.warnings),
            "has_errors": self.error_details is not None,
            "confidence_score": self.confidence_score,
            "execution_time_total": sum(timings.values()) if timings else None,
            "final_response_available": self.final_response is not None,
        }

    # --- conversion ----------------------------------------------------------------------

    @classmethod
    def from_sof(cls, uif: UIF) -> SAM_UIF:
        """A ``SAM_UIF`` holding what ``uif`` holds (copies: the two share nothing).

        ``status`` becomes its string value; ``start_time``/``end_time`` naive local ISO
        times; ``vetted_content`` a dict (``None`` -> ``{}``, a text -> ``{"content": text}``
        unless the text is what ``to_sof`` makes of a dict); a ``skill_outputs`` entry
        ``{"__sam_value__": x}`` the ``x`` it stands for; ``created_at`` and ``updated_at``
        are now, except that a ``uif`` ``to_sof`` made gets back the ``created_at`` of the
        ``SAM_UIF`` it came from. Raises ``UIFError`` for a time outside the years 1-9999. Given a
        ``SAM_UIF``, returns a copy of it.
        """
        if not isinstance(uif, UIF):
            raise UIFError(
                f"SAM_UIF.from_sof needs a sof_core.UIF, got {type(uif).__name__}; build one "
                "with sof_core.UIF(input_query=...) or SAM_UIF(input_query=...)"
            )
        source = uif.__dict__
        data = {name: _copy(source[name]) for name in type(uif).model_fields}
        data["intermediate_data"] = _plain(source["intermediate_data"])
        fields_set = set(uif.__pydantic_fields_set__)
        if isinstance(uif, SAM_UIF):
            made = cls.model_construct(_fields_set=fields_set, **data)
            epoch = (uif.__pydantic_private__ or {}).get("_sof_epoch")
            made.__pydantic_private__["_sof_epoch"] = dict(epoch) if epoch else None  # type: ignore[index]
            return made
        data["status"] = SOFStatus(source["status"]).value
        epoch = {}
        for name in _TIMES:
            seconds = source[name]
            data[name] = _iso(seconds, name)
            if seconds is not None:
                epoch[name] = (data[name], seconds)
        data["vetted_content"] = _vetted_from_text(source["vetted_content"])
        data["skill_outputs"] = {
            skill: _unwrap_output(value) for skill, value in data["skill_outputs"].items()
        }
        data["created_at"] = data["updated_at"] = _now()
        created = _CREATED.get(id(uif))
        if created is not None and created[0]() is uif:  # made by to_sof: the SAM UIF's own
            data["created_at"] = created[1]
        made = cls.model_construct(_fields_set=fields_set, **data)
        made.__pydantic_private__["_sof_epoch"] = epoch or None  # type: ignore[index]
        return made

    def to_sof(self) -> UIF:
        """A ``sof_core.UIF`` holding what this holds (copies: the two share nothing).

        Each field converts so that ``from_sof`` gives it back exactly:

        * ``status``: the ``sof_core.UIFStatus`` member of its value.
        * ``start_time``/``end_time``: epoch seconds. An ISO time without an offset is local
          time (as SAM writes it, ``datetime.now().isoformat()``); the exact seconds of a
          time made by ``from_sof`` come back while its text is unchanged. Raises
          ``UIFError`` for a text that is not an ISO 8601 time. (Text in another ISO form,
          or with an offset, comes back from ``from_sof`` in SAM's form.)
        * ``vetted_content``: ``{}`` -> ``None``; ``{"content": text}`` -> ``text``; any other
          dict -> its compact JSON text (``json.dumps(d, separators=(",", ":"),
          ensure_ascii=False)``). Where a dict and a text could be confused, the one that
          would not come back is wrapped one level deeper, so both directions are exact.
        * ``skill_outputs``: a dict output stays as it is; any other value ``x`` becomes
          ``{"__sam_value__": x}`` (and a dict whose only key is ``"__sam_value__"`` is
          wrapped once more, so it too comes back as it was).
        * ``input_query``: unchanged; whitespace-only text raises ``UIFError``, as
          ``sof_core.UIF`` requires non-whitespace text.
        * ``created_at``/``updated_at``: not fields of ``sof_core.UIF``; ``from_sof`` of the
          result gives back ``created_at`` (kept beside it, for as long as it lives) and a
          new ``updated_at`` (SAM's rule: the time of the last change).
        * every other field: copied as it is.
        """
        source = self.__dict__
        query = source["input_query"]
        if not query.strip():
            raise UIFError(
                f"SAM_UIF.input_query is whitespace only ({query!r}); sof_core.UIF needs "
                "non-whitespace text, so give the query text before converting"
            )
        data = {name: _copy(source[name]) for name in UIF.model_fields}
        data["intermediate_data"] = _plain(source["intermediate_data"])
        data["status"] = SOFStatus(source["status"])
        epoch = (self.__pydantic_private__ or {}).get("_sof_epoch") or {}
        for name in _TIMES:
            text = source[name]
            exact = epoch.get(name)
            data[name] = exact[1] if exact is not None and exact[0] == text else _epoch(text, name)
        data["vetted_content"] = _vetted_to_text(source["vetted_content"])
        data["skill_outputs"] = {
            skill: _wrap_output(value) for skill, value in data["skill_outputs"].items()
        }
        fields_set = set(self.__pydantic_fields_set__) & set(UIF.model_fields)
        made = UIF.model_construct(_fields_set=fields_set, **data)
        _remember_created(made, source["created_at"])
        return made


# --- created_at across a conversion -------------------------------------------------------

#: ``created_at`` of the SAM UIFs ``to_sof`` converted, by the ``sof_core.UIF`` it made:
#: ``sof_core.UIF`` has no such field, and a private attribute would take part in its
#: ``==``. Entries go with the ``sof_core.UIF`` (``weakref.finalize``).
_CREATED: dict[int, tuple[weakref.ref[UIF], str]] = {}


def _remember_created(uif: UIF, created_at: str) -> None:
    key = id(uif)
    _CREATED[key] = (weakref.ref(uif), created_at)
    weakref.finalize(uif, _CREATED.pop, key, None)


# --- times -------------------------------------------------------------------------------


def _iso(seconds: float | None, name: str) -> str | None:
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds).isoformat()
    except (OverflowError, OSError, ValueError) as exc:
        raise UIFError(
            f"UIF.{name} is {seconds!r} seconds, which is no date SAM_UIF can hold as ISO "
            f"text ({exc}); use a time between the years 1 and 9999"
        ) from None


def _epoch(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise UIFError(
            f"SAM_UIF.{name} is {text!r}, which is not an ISO 8601 time ({exc}); sof_core.UIF "
            "holds epoch seconds, so set it with datetime.now().isoformat()"
        ) from None


# --- vetted_content: dict (SAM) <-> text or None (SOF) ----------------------------------


def _compact(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _dict_behind(text: str) -> dict[str, Any] | None:
    """The non-empty dict ``text`` is the compact JSON of, if it is exactly that."""
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict) and value and _compact(value) == text:
        return value
    return None


def _is_text(value: dict[str, Any]) -> bool:
    """Whether ``value`` is what a ``sof_core.UIF`` text becomes: ``{"content": text}`` where
    ``text`` is not itself the JSON of a dict that converts to JSON (checked recursively,
    each level shorter, so every dict and every text has exactly one counterpart)."""
    if len(value) != 1 or not isinstance(value.get(VETTED_TEXT_KEY), str):
        return False
    inner = _dict_behind(value[VETTED_TEXT_KEY])
    return inner is None or _is_text(inner)


def _vetted_to_text(value: dict[str, Any]) -> str | None:
    if not value:
        return None
    if _is_text(value):
        return value[VETTED_TEXT_KEY]  # type: ignore[no-any-return]
    try:
        return _compact(value)
    except (TypeError, ValueError) as exc:
        raise UIFError(
            f"SAM_UIF.vetted_content holds a value JSON cannot hold ({exc}); sof_core.UIF "
            "keeps vetted_content as text, so store JSON data (dict, list, str, number, bool)"
        ) from None


def _vetted_from_text(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    inner = _dict_behind(text)
    if inner is not None and not _is_text(inner):
        return inner
    return {VETTED_TEXT_KEY: text}


# --- skill_outputs: Any (SAM) <-> dict (SOF) --------------------------------------------


def _wrap_output(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        if len(value) == 1 and SAM_VALUE_KEY in value:
            return {SAM_VALUE_KEY: _wrap_output(value[SAM_VALUE_KEY])}
        return value
    return {SAM_VALUE_KEY: value}


def _unwrap_output(value: dict[str, Any]) -> Any:
    if isinstance(value, dict) and len(value) == 1 and SAM_VALUE_KEY in value:
        inner = value[SAM_VALUE_KEY]
        if isinstance(inner, dict):
            return {SAM_VALUE_KEY: _unwrap_output(inner)}
        return inner
    return value


# --- copies ------------------------------------------------------------------------------


def _copy(value: Any) -> Any:
    """A deep copy as plain containers (a run's read-only ones too); objects that cannot be
    copied are shared."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, tuple):
        return tuple(_copy(item) for item in value)
    if isinstance(value, (set, frozenset)):
        return type(value)(value) if type(value) in (set, frozenset) else set(value)
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


def _plain(data: Any) -> dict[str, Any]:
    """``intermediate_data`` as a plain dict copy (a skill's scoped view as what it sees)."""
    if not isinstance(data, dict) and hasattr(data, "to_dict"):
        data = data.to_dict()
    return _copy(dict(data))  # type: ignore[no-any-return]
