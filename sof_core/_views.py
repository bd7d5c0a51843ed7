"""What a running skill sees: a UIF copy whose data holds only its declared keys.

Concurrent skills get separate copies, so they cannot race; the coordinator merges what each
wrote back into the real UIF in plan order. Writes are checked as they happen (one set lookup),
never by re-validating the whole UIF.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from sof_core.errors import UndeclaredReadError, UndeclaredWriteError
from sof_core.uif import BOOKKEEPING_FIELDS, UIF

_MISSING = object()


class WriteGuard:
    """Rejects writes to UIF fields the skill did not declare, and remembers the rest."""

    __slots__ = ("allowed_fields", "skill", "written_fields")

    def __init__(self, skill: str, allowed_fields: frozenset[str]) -> None:
        self.skill = skill
        self.allowed_fields = allowed_fields
        self.written_fields: set[str] = set()

    def check_field_write(self, name: str) -> None:
        if name in self.allowed_fields:
            self.written_fields.add(name)
        elif name == "intermediate_data":
            raise UndeclaredWriteError(self.skill, "intermediate_data (replace it key by key)")
        elif name not in BOOKKEEPING_FIELDS:
            raise UndeclaredWriteError(self.skill, name)


class ScopedData(MutableMapping[str, Any]):
    """``intermediate_data`` as one skill may see it: declared inputs in, declared outputs out."""

    __slots__ = ("_readable", "_skill", "_source", "_writable", "written")

    def __init__(
        self,
        skill: str,
        source: dict[str, Any],
        readable: frozenset[str],
        writable: frozenset[str],
    ) -> None:
        self._skill = skill
        self._source = source
        self._readable = readable
        self._writable = writable
        self.written: dict[str, Any] = {}

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


def skill_view(
    uif: UIF,
    skill: str,
    readable: frozenset[str],
    writable: frozenset[str],
    writable_fields: frozenset[str],
) -> tuple[UIF, ScopedData, WriteGuard]:
    """A shallow UIF copy for one skill; built without validation (the source is valid)."""
    data = ScopedData(skill, uif.__dict__["intermediate_data"], readable, writable)
    guard = WriteGuard(skill, writable_fields)
    fields = uif.__dict__.copy()
    fields["intermediate_data"] = data
    fields["log_trace"] = []
    fields["warnings"] = []
    fields["skill_outputs"] = {}
    view = UIF.__new__(type(uif))
    object.__setattr__(view, "__dict__", fields)
    object.__setattr__(view, "__pydantic_fields_set__", set(uif.__pydantic_fields_set__))
    object.__setattr__(view, "__pydantic_extra__", None)
    object.__setattr__(view, "__pydantic_private__", {"_sof_guard": guard})
    return view, data, guard
