"""What a running skill sees: a UIF copy whose data holds only its declared keys.

Concurrent skills get separate copies, so they cannot race; the coordinator merges what each
wrote back into the real UIF in plan order. Writes are checked as they happen (one set lookup),
never by re-validating the whole UIF.

This is the hot path (one view per skill per run), so a view is built without pydantic
(the source UIF is already valid) and one ``ScopedData`` object is both the skill's
``intermediate_data`` and the guard on its UIF field writes.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, Protocol

from pydantic import BaseModel

from sof_core.errors import UndeclaredReadError, UndeclaredWriteError
from sof_core.uif import BOOKKEEPING_FIELDS, UIF

_MISSING = object()
_NOTHING_WRITTEN: frozenset[str] = frozenset()
_new = object.__new__
# pydantic keeps these three in slots; their descriptors' setters are the cheapest way in.
_set_fields_set = vars(BaseModel)["__pydantic_fields_set__"].__set__
_set_extra = vars(BaseModel)["__pydantic_extra__"].__set__
_set_private = vars(BaseModel)["__pydantic_private__"].__set__


class ScopedData(MutableMapping[str, Any]):
    """One skill's scope: ``intermediate_data`` as it may see it, and its UIF field writes.

    Reads of undeclared keys raise ``UndeclaredReadError``; writes of keys or fields not in
    its outputs raise ``UndeclaredWriteError``. What it wrote is kept in ``written`` (data)
    and ``written_fields`` (UIF fields) for the merge.
    """

    __slots__ = (
        "_readable",
        "_skill",
        "_source",
        "_writable",
        "allowed_fields",
        "written",
        "written_fields",
    )

    def __init__(
        self,
        skill: str,
        source: dict[str, Any],
        readable: frozenset[str],
        writable: frozenset[str],
        allowed_fields: frozenset[str] = _NOTHING_WRITTEN,
    ) -> None:
        self._skill = skill
        self._source = source
        self._readable = readable
        self._writable = writable
        self.allowed_fields = allowed_fields
        self.written: dict[str, Any] = {}
        #: Stays the shared empty frozenset until the first field write (most skills write none).
        self.written_fields: set[str] | frozenset[str] = _NOTHING_WRITTEN

    @property
    def skill(self) -> str:
        return self._skill

    # --- UIF field writes (called by UIF.__setattr__ on a view) ---------------------------

    def check_field_write(self, name: str) -> None:
        if name in self.allowed_fields:
            if self.written_fields is _NOTHING_WRITTEN:
                self.written_fields = {name}
            else:
                self.written_fields.add(name)  # type: ignore[union-attr]
        elif name == "intermediate_data":
            raise UndeclaredWriteError(self._skill, "intermediate_data (replace it key by key)")
        elif name not in BOOKKEEPING_FIELDS:
            raise UndeclaredWriteError(self._skill, name)

    # --- the mapping ---------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        written = self.written.get(key, _MISSING)
        if written is not _MISSING:
            return written
        if key not in self._readable:
            if key in self._writable:
                raise KeyError(key)
            raise UndeclaredReadError(self._skill, key)
        return self._source[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except UndeclaredReadError:
            raise
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        if key in self.written:
            return True
        if key not in self._readable:
            if key in self._writable:
                return False
            raise UndeclaredReadError(self._skill, str(key))
        return key in self._source

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._writable:
            raise UndeclaredWriteError(self._skill, key)
        self.written[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self._writable:
            raise UndeclaredWriteError(self._skill, key)
        del self.written[key]

    def __iter__(self) -> Iterator[str]:
        seen = set(self.written)
        yield from self.written
        for key in self._readable:
            if key in self._source and key not in seen:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"ScopedData(skill={self._skill!r}, keys={list(self)!r})"

    def to_dict(self) -> dict[str, Any]:
        return {key: self[key] for key in self}


#: The field-write guard is the scope itself; the old name is kept for readers and type hints.
WriteGuard = ScopedData


class StepAccess(Protocol):
    """What a view needs of a compiled step (``sof_core.Step`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def readable(self) -> frozenset[str]: ...
    @property
    def writable(self) -> frozenset[str]: ...
    @property
    def writable_fields(self) -> frozenset[str]: ...


def skill_view(uif: UIF, step: StepAccess) -> tuple[UIF, ScopedData]:
    """A shallow UIF copy for one skill, plus its scope (what it wrote ends up there).

    Built without validation (the source is valid): a dict copy and three slot writes,
    a fraction of ``model_copy()``. Executors that run skills elsewhere build one per call
    and replay the far side's changes into it (``sof_core.replay_changes``).
    """
    source = uif.__dict__
    scope = ScopedData(
        step.name, source["intermediate_data"], step.readable, step.writable,
        step.writable_fields,
    )
    view = _new(type(uif))
    fields = view.__dict__
    fields.update(source)
    fields["intermediate_data"] = scope
    fields["log_trace"] = []
    fields["warnings"] = []
    fields["skill_outputs"] = {}
    _set_fields_set(view, set(uif.__pydantic_fields_set__))
    _set_extra(view, None)
    _set_private(view, {"_sof_guard": scope})
    return view, scope
