"""The Universal Interface Format: the one object every skill reads from and writes to.

Field names and helpers are SAM's own, so a SAM skill ports by changing its imports.
The model rejects unknown fields and validates on assignment, so a typo in a skill fails
loudly at the line that made it instead of silently creating a new attribute.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic_core import PydanticCustomError

import sof_core._pydantic_guard  # noqa: F401  (before any model: see the module)
from sof_core.errors import UIFError, UndeclaredWriteError, validation_message


class WriteGuard(Protocol):
    """Checks a running skill's UIF field writes (``sof_core.skills.views.ScopedData``)."""

    def check_field_write(self, name: str) -> None: ...


class UIFStatus(str, Enum):
    """Where a task stands; the coordinator sets it, skills may set FAILURE via ``set_error``.

    ``CANCELLED`` is SAM's: SOF's coordinator never sets it, hosts that stop a task may.
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    VETTING_REQUIRED = "vetting_required"
    CANCELLED = "cancelled"


#: A run's outcome (``ExecutionReport.status``) as the status the coordinator leaves on the UIF.
RUN_STATUS: dict[str, UIFStatus] = {
    "success": UIFStatus.SUCCESS,
    "partial": UIFStatus.PARTIAL,
    "failure": UIFStatus.FAILURE,
    "timeout": UIFStatus.TIMEOUT,
}


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


#: Fields that hold whatever hosts and skills put in them, checked to be JSON data.
FREE_FORM_FIELDS: tuple[str, ...] = (
    "user_context",
    "security_context",
    "intermediate_data",
    "skill_outputs",
)

#: Fields holding strings (a list's items, ``skill_timings``' keys): a lone surrogate in them
#: is refused (``UIF._utf8_items``), as pydantic refuses one in a single-string field.
STRING_LIST_FIELDS: tuple[str, ...] = (
    "source_documents",
    "warnings",
    "log_trace",
    "execution_plan",
    "executed_skills",
    "skill_timings",
)

#: Deepest nesting of containers accepted in a free-form field (the field's own dict is 1).
#: pydantic cannot serialise much past 250 levels; real data is a few levels deep.
MAX_JSON_DEPTH = 100


def _no_deadline() -> float | None:
    return None


#: How a view reads its skill's deadline (``UIF.remaining_time``): set by the layer that runs
#: skills (``sof_core.execution.deadlines``) when it loads, so this bottom layer imports
#: nothing above it; until then no skill can be running.
read_deadline: Callable[[], float | None] = _no_deadline


def _refuse_lone_surrogates(strings: Any) -> None:
    """Raise pydantic's ``string_unicode`` error, as for a single-string field, if one of
    ``strings`` holds a lone surrogate, which UTF-8 (and so JSON text) cannot hold."""
    for text in strings:
        if isinstance(text, str) and not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise PydanticCustomError(
                    "string_unicode",
                    "Input should be a valid string, unable to parse raw data as a unicode "
                    "string",
                ) from None


def _new_task_id() -> str:
    """A random (version 4) UUID as 32 hex digits, what ``uuid.uuid4().hex`` gives.

    Built from the 16 random bytes directly: ``uuid.UUID``'s constructor checks and converts
    in Python, which made a task id cost about 4 us, a third of building a UIF (one per
    query); this costs about 1 us.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return raw.hex()


def _new_list() -> list[Any]:
    """A new empty list: ``default_factory=list`` without its cost at class creation.

    pydantic asks ``inspect.signature`` whether a default factory takes the validated data;
    for the builtin ``list`` that parses its text signature with ``tokenize``, and the first
    tokenization in a process compiles ``tokenize``'s regular expressions (~8 ms, a few per
    cent of a whole ``sof run``). A Python function has a signature already.
    """
    return []


class UIF(BaseModel):
    """State of one query as it moves through a plan (SAM's ``SAM_UIF``)."""

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        use_enum_values=False,
        arbitrary_types_allowed=False,
        allow_inf_nan=False,  # float fields: JSON has no NaN or infinity
        ser_json_inf_nan="strings",  # one written at run time dumps as "NaN", not null
    )

    # ``min_length=0`` on the text fields makes pydantic read a given string as Unicode
    # (``input_query``'s ``min_length=1`` always did), so a lone surrogate (text decoded
    # with ``surrogateescape``) is refused with its ``string_unicode`` error, in its compiled
    # validator: no Python call per field. A plain ``str`` field passes it through, and
    # ``model_dump_json()`` then raises.
    task_id: str = Field(default_factory=_new_task_id, min_length=0)
    status: UIFStatus = UIFStatus.PENDING
    input_query: str = Field(min_length=1)
    source_documents: list[str] = Field(default_factory=_new_list)
    user_context: dict[str, Any] = Field(default_factory=dict)
    active_profile: str = Field(default="general", min_length=0)
    session_id: str | None = Field(default=None, min_length=0)
    user_id: str | None = Field(default=None, min_length=0)
    intermediate_data: dict[str, Any] = Field(default_factory=dict)
    skill_outputs: dict[str, Any] = Field(default_factory=dict)
    security_context: dict[str, Any] = Field(default_factory=dict)
    requires_vetting: bool = False
    vetted_content: str | None = Field(default=None, min_length=0)
    final_response: str | None = Field(default=None, min_length=0)
    confidence_score: float | None = Field(default=None, ge=0.0, le=1.0)
    error_details: str | None = Field(default=None, min_length=0)
    warnings: list[str] = Field(default_factory=_new_list)
    log_trace: list[str] = Field(default_factory=_new_list)
    execution_plan: list[str] = Field(default_factory=_new_list)
    executed_skills: list[str] = Field(default_factory=_new_list)
    skill_timings: dict[str, float] = Field(default_factory=dict)
    start_time: float | None = None
    end_time: float | None = None

    # Set by the coordinator on the per-skill copy it hands to a skill; never serialised.
    _sof_guard: WriteGuard | None = PrivateAttr(default=None)

    #: Fields the coordinator keeps itself: a skill may change them (through the helpers)
    #: without declaring them; its guard allows them. A subclass that keeps more (SAM's
    #: ``updated_at``) extends the set; they are never merged back from a skill's view.
    _sof_bookkeeping: ClassVar[frozenset[str]] = BOOKKEEPING_FIELDS

    @field_validator("input_query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("input_query must contain non-whitespace text")
        return value

    @field_validator(*STRING_LIST_FIELDS, mode="before")
    @classmethod
    def _utf8_items(cls, value: Any) -> Any:
        """Each string in a list (each key of ``skill_timings``) is checked as a ``str``
        field's text is (``min_length=0``); those are not fields pydantic checks itself."""
        if type(value) in (list, tuple, dict) and value:
            _refuse_lone_surrogates(value)
        return value

    @field_validator(*FREE_FORM_FIELDS, mode="before")
    @classmethod
    def _string_keys(cls, value: Any, info: Any) -> Any:
        """The field's own keys are checked before pydantic's ``dict[str, ...]`` is, so a
        non-string key is the same ``UIFError`` ("use string keys") at every depth."""
        if type(value) is dict and value:
            for key in value:
                if not isinstance(key, str):
                    raise _key_error(info.field_name, key)
        return value

    @field_validator(*FREE_FORM_FIELDS)
    @classmethod
    def _round_trips(cls, value: Any, info: Any) -> Any:
        """Free-form containers hold JSON data only, so the UIF gives back what it was given.

        Checked when a field is built or assigned, never on a skill's writes into a
        container (that is the hot path); those are made safe when dumped (``to_jsonable``).
        """
        return checked_json(value, info.field_name) if value else value

    if not TYPE_CHECKING:  # hidden from type checkers: the generated signature stays

        def __init__(self, /, **data: Any) -> None:
            try:
                super().__init__(**data)
            except ValidationError as exc:
                _raise_uif_error(exc)
                raise

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> UIF:
        """pydantic's, raising ``UIFError`` for a value that would not round-trip."""
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            _raise_uif_error(exc)
            raise

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any) -> UIF:
        """pydantic's, raising ``UIFError`` for a value that would not round-trip."""
        try:
            return super().model_validate_json(json_data, *args, **kwargs)
        except ValidationError as exc:
            _raise_uif_error(exc)
            raise

    def __setattr__(self, name: str, value: Any) -> None:
        private = self.__pydantic_private__
        if private is not None:
            guard = private.get("_sof_guard")
            if guard is not None and name[:1] != "_":
                try:
                    guard.check_field_write(name)
                except UndeclaredWriteError:
                    # a field this class keeps itself (a subclass's ``_sof_bookkeeping``)
                    if name not in self._sof_bookkeeping:
                        raise
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            _raise_uif_error(exc)
            raise

    # --- what the coordinator records (overridable: a subclass keeps its own formats) ----
    # Called once per run, never per skill, on the UIF the run was given; they write
    # ``__dict__`` directly, as the coordinator always did (the values are known valid).

    def _sof_in_run(self) -> bool:
        """Whether this is a skill's copy inside a coordinator run (its guarded view, or the
        copy a remote executor built), where the coordinator records the skill itself."""
        private = self.__pydantic_private__
        if not private:
            return False
        return private.get("_sof_guard") is not None or private.get("_sof_remote") is True

    @classmethod
    def _sof_now(cls) -> Any:
        """Now, as this class stores ``start_time``/``end_time`` (epoch seconds)."""
        return time.time()

    def _sof_run_started(self) -> None:
        """A run begins: status RUNNING, ``start_time`` stamped unless the host set it."""
        fields = self.__dict__
        fields["status"] = UIFStatus.RUNNING
        if fields["start_time"] is None:
            fields["start_time"] = time.time()

    def _sof_run_finished(self, status: str) -> None:
        """A run ended with ``status`` (``ExecutionReport.status``): record it and the time."""
        fields = self.__dict__
        fields["status"] = RUN_STATUS[status]
        fields["end_time"] = time.time()

    def _sof_merge_skill_outputs(self, outputs: dict[str, Any]) -> None:
        """Fold what one skill recorded with ``set_skill_output`` into this UIF (merged per
        skill, as ``set_skill_output`` merges)."""
        mine = self.__dict__["skill_outputs"]
        for skill, values in outputs.items():
            _record_output(mine, skill, values)

    # --- JSON that always works ----------------------------------------------------------

    def to_jsonable(self) -> dict[str, Any]:
        """The UIF as JSON-ready data, whatever a skill left in it; never raises.

        What a skill writes into a container while it runs is not checked, so it may hold
        values JSON cannot: they are given as pydantic would give them where it can
        (datetimes as ISO text, tuples and sets as lists), non-finite floats as ``"NaN"``,
        ``"Infinity"`` and ``"-Infinity"``, and anything else (an object, a cycle, nesting
        deeper than ``MAX_JSON_DEPTH``) as a marked string ``"<not JSON: repr>"``.
        """
        fields = self.__dict__
        data: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = fields.get(name)
            if name == "intermediate_data" and not isinstance(value, dict):
                value = _plain_dict(value)  # a skill's scoped view of it
            data[name] = jsonable(value)
        return data

    def to_json_safe(self, *, indent: int | None = None) -> str:
        """``to_jsonable()`` as JSON text (strictly valid JSON: no ``NaN`` tokens); never raises."""
        return json.dumps(self.to_jsonable(), indent=indent, ensure_ascii=False)

    def current_deadline(self) -> float | None:
        """``sof_core.current_deadline()``, read on the running skill's view: its deadline
        as a ``time.monotonic()`` value (None outside a skill or without any time limit)."""
        return read_deadline()

    def remaining_time(self) -> float | None:
        """Seconds the running skill has left, read on its view: until its deadline, or the
        run's ``total_timeout`` if that ends first (``sof_core.current_deadline()`` less
        now). What to give the clients it calls as their timeout, so a slow one fails
        inside the skill's time. None outside a skill or without any time limit."""
        deadline = read_deadline()
        if deadline is None:
            return None
        return max(0.0, deadline - time.monotonic())

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

    def mark_skill_complete(self, skill_name: str, execution_time: float | None = None) -> None:
        """Record that a skill finished (once, however often it is called, as SAM's does)
        and, if given, how long it took (seconds)."""
        if skill_name not in self.executed_skills:
            self.executed_skills.append(skill_name)
        if execution_time is not None:
            self.skill_timings[skill_name] = execution_time

    def get_skill_output(self, skill_name: str, key: str | None = None) -> Any:
        """A skill's recorded outputs, or one of them; ``None`` when absent."""
        outputs = self.skill_outputs.get(skill_name)
        if outputs is None or key is None:
            return outputs
        return outputs.get(key) if isinstance(outputs, Mapping) else None

    def set_skill_output(self, skill_name: str, output_data: Any) -> None:
        """Record a skill's output for later inspection: a mapping is merged with the
        skill's earlier one, any other value (SAM's skills record text, lists, ...)
        replaces it."""
        _record_output(self.skill_outputs, skill_name, output_data)

    def is_complete(self) -> bool:
        """True once the run reached a final status."""
        return self.status in (
            UIFStatus.SUCCESS,
            UIFStatus.PARTIAL,
            UIFStatus.FAILURE,
            UIFStatus.TIMEOUT,
            UIFStatus.CANCELLED,
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
        """Build a UIF for a new query, stamping ``start_time`` now unless ``fields`` gives it.

        Raises ``UIFError`` (a ``SOFError`` and ``ValueError``) naming every bad field, so a
        host can catch one SOF exception for everything it passes in; ``input_query`` among
        ``fields`` is one too (the query is given once, as ``query``), never Python's
        ``TypeError`` about a keyword given twice.
        """
        if "input_query" in fields:
            raise UIFError(
                f"invalid UIF: input_query is given twice, as the query ({safe_repr(query)}) "
                f"and as a field ({safe_repr(fields['input_query'])}); give the query once"
            )
        if "start_time" not in fields:
            fields["start_time"] = cls._sof_now()
        try:
            return cls(input_query=query, **fields)
        except ValidationError as exc:
            raise UIFError(describe_validation_error(exc, "UIF")) from exc


def describe_validation_error(exc: ValidationError, what: str) -> str:
    """One line naming each bad field, what is wrong and the value given."""
    parts = []
    for error in exc.errors():
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, NotRoundTripError):  # names its own field and path
            parts.append(str(cause))
            continue
        field = ".".join(str(p) for p in error["loc"]) or what
        message = validation_message(error)
        if error["type"] == "extra_forbidden":
            message = f"is not a {what} field"
        parts.append(f"{field}: {message} (got {safe_repr(error.get('input'))})")
    return f"invalid {what}: " + "; ".join(parts)


def _raise_uif_error(exc: ValidationError) -> None:
    """Re-raise as ``UIFError`` when a value would not round-trip (other errors stay
    pydantic's ``ValidationError``, as they always were)."""
    causes = [(e.get("ctx") or {}).get("error") for e in exc.errors()]
    for cause in causes:
        if isinstance(cause, UIFError) and not isinstance(cause, NotRoundTripError):
            raise cause  # already complete: raised by __init__, which pydantic calls inside
    if any(isinstance(cause, NotRoundTripError) for cause in causes):
        raise UIFError(describe_validation_error(exc, "UIF")) from exc
    for error in exc.errors():
        if error["type"] != "json_invalid":
            continue
        if "recursion limit" in str(error["msg"]):  # deeper than pydantic's parser goes
            raise UIFError(
                f"invalid UIF: the JSON is nested more than {MAX_JSON_DEPTH} levels deep "
                f"({validation_message(error)})") from exc
        if "number out of range" in str(error["msg"]):  # more digits than it reads (4300)
            raise UIFError(
                "invalid UIF: the JSON holds a number with more digits than Python reads "
                f"({validation_message(error)}); store it as a string") from exc


# --- JSON data ---------------------------------------------------------------------------

_JSON_KINDS = "dict, list, str, int, float, bool, None"


class NotRoundTripError(UIFError):
    """One value in a free-form UIF field that JSON would not give back as it was given."""


def checked_json(value: Any, field: str) -> Any:
    """``value`` if it is JSON data that round-trips; tuples become lists (as JSON makes
    them). Raises ``NotRoundTripError`` naming the path of the first value that cannot
    round-trip and what to store instead."""
    return _checked(value, [field], 1)


def _checked(value: Any, path: list[Any], depth: int) -> Any:
    # ``path`` is the field name then the keys and indexes down to ``value``; it is shared
    # and only formatted on error, so checking a large container allocates nothing per item.
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                code = ord(value[exc.start])
                raise NotRoundTripError(
                    f"{_path(path)} is not valid UTF-8 text (lone surrogate U+{code:04X} at "
                    f"position {exc.start}), which cannot be serialised; decode the bytes it "
                    "came from properly"
                ) from None
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise NotRoundTripError(
            f"{_path(path)} is {safe_repr(value)}: JSON has no NaN or infinity, so it would "
            "not come back; store None or a string such as 'NaN'"
        )
    if value is None or isinstance(value, (bool, int)):
        # an int subclass too: pydantic writes it as the int it is
        if value is not None and int.bit_length(value) > _LONG_INT_BITS and _too_long(value):
            raise NotRoundTripError(
                f"{_path(path)} is an integer of more than {sys.get_int_max_str_digits()} "
                "digits, which Python will not write as JSON text (its int/str conversion "
                "limit, sys.get_int_max_str_digits()); store it as a string"
            )
        return value
    if isinstance(value, (dict, list, tuple)):
        if depth > MAX_JSON_DEPTH:
            raise NotRoundTripError(
                f"{_path(path)} is nested more than {MAX_JSON_DEPTH} levels deep (or "
                "contains itself), which cannot be serialised; flatten it or store it as a "
                "string"
            )
        if isinstance(value, dict):
            changed: dict[Any, Any] | None = None
            for key, item in value.items():
                path.append(key)
                if not isinstance(key, str):
                    raise _key_error(_path(path[:-1]), key)
                _checked(key, path, depth)
                clean = _checked(item, path, depth + 1)
                path.pop()
                if clean is not item:
                    changed = changed if changed is not None else dict(value)
                    changed[key] = clean
            return value if changed is None else changed
        items: list[Any] | None = None
        for index, item in enumerate(value):
            path.append(index)
            clean = _checked(item, path, depth + 1)
            path.pop()
            if clean is not item and items is None:
                items = list(value[:index])
            if items is not None:
                items.append(clean)
        if items is not None:
            return items
        return list(value) if isinstance(value, tuple) else value
    if isinstance(value, (set, frozenset)):
        raise NotRoundTripError(
            f"{_path(path)} is a {type(value).__name__}, which JSON cannot hold (it would "
            "come back as a list); store a sorted list"
        )
    if isinstance(value, (bytes, bytearray)):
        raise NotRoundTripError(
            f"{_path(path)} is {type(value).__name__}, which JSON cannot hold; decode it to "
            "str (or base64-encode it)"
        )
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    raise NotRoundTripError(
        f"{_path(path)} is a {kind}, which is not JSON data ({_JSON_KINDS}) and would not "
        "come back as given; convert it first, e.g. with .model_dump(), "
        "dataclasses.asdict() or str()"
    )


#: Integers shorter than this (about 600 digits) are below any int/str conversion limit
#: Python allows (640 digits at the least): only longer ones are converted to check.
_LONG_INT_BITS = 2000


def _too_long(value: int) -> bool:
    """Whether ``value`` has more digits than Python turns into text (JSON is text); an
    int subclass is asked as the int it is (its own ``__str__`` is not what JSON writes)."""
    try:
        int.__repr__(value)
    except ValueError:
        return True
    return False


def _key_error(where: str, key: Any) -> NotRoundTripError:
    """A dict key that is not a string, at ``where`` (a field or a path in one); its repr
    is ``safe_repr``'s, so a key too deep, too long or too broken to print is still this
    error and not the one its ``repr`` raised."""
    return NotRoundTripError(
        f"{where} has the key {_shown_key(key)} ({type(key).__name__}), which JSON would "
        "turn into a string; use string keys"
    )


def _shown_key(key: Any) -> str:
    """``safe_repr(key)``, or what an integer is when it has too many digits to print."""
    if isinstance(key, int) and int.bit_length(key) > _LONG_INT_BITS and _too_long(key):
        return f"<an integer of more than {sys.get_int_max_str_digits()} digits>"
    return safe_repr(key)


def _path(path: list[Any]) -> str:
    """``field['key'][0]...``; a deep path keeps its start and its end, which locate it."""
    keys = [f"[{key!r}]" for key in path[1:]]
    if len(keys) > 8:
        keys = [*keys[:4], "...", *keys[-3:]]
    return str(path[0]) + "".join(keys)


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data that ``json.dumps`` writes as strict JSON; never raises.

    See ``UIF.to_jsonable`` for how values JSON cannot hold are given.
    """
    return _jsonable(value, 0, set())


def _jsonable(value: Any, depth: int, enclosing: set[int]) -> Any:
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value is None or isinstance(value, (bool, int)):
        if isinstance(value, int) and value.bit_length() > _LONG_INT_BITS and _too_long(value):
            return f"<not JSON: an integer of more than {sys.get_int_max_str_digits()} digits>"
        return value if value is None or type(value) in (bool, int) else int(value)
    if isinstance(value, Enum):
        return _jsonable(value.value, depth, enclosing)
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        kind = type(value).__name__
        if id(value) in enclosing:
            return f"<not JSON: a {kind} that contains itself>"
        if depth >= MAX_JSON_DEPTH:
            return f"<not JSON: a {kind} nested more than {MAX_JSON_DEPTH} levels deep>"
        enclosing.add(id(value))
        try:
            if isinstance(value, dict):
                return {
                    _json_key(k): _jsonable(v, depth + 1, enclosing)
                    for k, v in list(value.items())
                }
            items = list(value)
            if isinstance(value, (set, frozenset)):
                items.sort(key=safe_repr)
            return [_jsonable(item, depth + 1, enclosing) for item in items]
        finally:
            enclosing.discard(id(value))
    try:
        import pydantic_core

        converted = pydantic_core.to_jsonable_python(value)
    except Exception:
        return f"<not JSON: {safe_repr(value)}>"
    return _jsonable(converted, depth + 1, enclosing)


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return str(jsonable(key))
    if key is None or isinstance(key, bool):
        return json.dumps(key)
    if isinstance(key, (int, float)):
        return str(jsonable(key)) if isinstance(key, float) else str(int(key))
    return f"<not JSON: {safe_repr(key)}>"


def _plain_dict(value: Any) -> Any:
    """A mapping that is not a dict (a skill's scoped view) as a dict, if it can be read."""
    try:
        return dict(value.to_dict() if hasattr(value, "to_dict") else value)
    except Exception:
        return value


def safe_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)`` that never raises (a deep or cyclic value, a broken ``__repr__``)."""
    try:
        text = repr(value)
    except Exception:  # RecursionError included
        return f"unprintable {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: SAM's name for the same model, so ``from sof_core import SAM_UIF`` ports code unchanged.
SAM_UIF = UIF

#: Type of every UIF field, used by the validator to type-check declared keys.
UIF_FIELD_TYPES: dict[str, Any] = {name: info.annotation for name, info in UIF.model_fields.items()}


def _record_output(outputs: dict[str, Any], skill_name: str, value: Any) -> None:
    """``set_skill_output``'s rule: mappings merge into a mapping, anything else replaces."""
    earlier = outputs.get(skill_name)
    if isinstance(value, Mapping) and isinstance(earlier, dict):
        earlier.update(value)
    else:
        outputs[skill_name] = dict(value) if isinstance(value, Mapping) else value
