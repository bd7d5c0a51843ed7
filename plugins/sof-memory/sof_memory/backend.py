"""The memory-backend interface: the only thing MemoryRetrievalSkill knows about storage.

SAM keeps memories in several places (a vector store, episodic memory, knowledge capsules).
Each can be offered to SOF as an object with this small surface and registered through the
``sof_register_memory_backends`` hook; the skill then picks one by name from config. The
embedded SQLite store (``sof_memory.sqlite_backend``) is simply the default implementation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable


def document_id(text: str, source: str = "") -> str:
    """A stable id from content, so importing the same document twice stores it once."""
    digest = hashlib.sha256(f"{source}\x00{text}".encode()).hexdigest()
    return digest[:24]


def utc_now() -> str:
    """Creation time as an ISO 8601 UTC string (sortable, JSON-ready)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class MemoryDocument:
    """One document to store. ``id`` and ``created_at`` default to a content hash and now."""

    text: str
    source: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    created_at: str | None = None

    def resolved_id(self) -> str:
        return self.id or document_id(self.text, self.source)


@dataclass(frozen=True)
class MemoryHit:
    """One search result; ``score`` is in 0..1, higher is better."""

    id: str
    text: str
    source: str
    score: float
    created_at: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The shape skills downstream (conflicts, response) read from ``memory_results``."""
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "score": self.score,
            "created_at": self.created_at,
            "metadata": dict(self.metadata),
        }


#: The profile that means "no profile filter": every document, whatever its profile.
GENERAL_PROFILE = "general"


def profile_filter(profile: str | None) -> str | None:
    """The ``MemoryFilters.profile`` for an active profile: ``None`` (no filter) for
    ``"general"``, an empty name or none; else the name. The skill and ``sof memory search``
    both read a profile through this, so they search alike."""
    return profile if profile and profile != GENERAL_PROFILE else None


@dataclass(frozen=True)
class MemoryFilters:
    """Ways to narrow a search. Empty filters match everything.

    - ``sources``: keep documents whose source is one of these.
    - ``tags``: keep documents whose ``metadata["tags"]`` shares at least one of these.
    - ``profile``: keep documents without a ``metadata["profile"]`` or with this one.
    - ``metadata``: keep documents whose metadata has exactly these key/value pairs.
    """

    sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    profile: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.sources or self.tags or self.profile or self.metadata)


@runtime_checkable
class MemoryBackend(Protocol):
    """What a memory store must offer SOF. Implementations must be safe to call from threads.

    ``search`` returns hits ranked best first (at most ``limit``) and an empty list, never an
    error, when nothing matches. ``add``/``add_many`` are idempotent for equal ids and return
    the ids stored. ``stats`` returns JSON-ready facts (at least ``documents``, the count).

    The protocol holds exactly the required methods (``REQUIRED_METHODS``), so
    ``isinstance(store, MemoryBackend)`` is true for any object that has them. Beyond them:

    * ``name: str`` is needed to register the store through ``sof_register_memory_backends``
      (the registry knows components by name); a store handed to the skill directly may go
      without (the skill then names it by its class).
    * ``delete(ids: Iterable[str]) -> int`` (how many were removed) and ``clear() -> None``
      are optional: nothing in this plugin calls them. The embedded SQLite store has both.
    """

    def add(
        self,
        text: str,
        *,
        source: str = "",
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> str: ...

    def add_many(self, documents: Iterable[MemoryDocument]) -> list[str]: ...

    def search(
        self, query: str, limit: int = 5, filters: MemoryFilters | None = None
    ) -> Sequence[MemoryHit]: ...

    def stats(self) -> dict[str, Any]: ...


#: The methods a memory backend must have (exactly ``MemoryBackend``'s); checked by name when
#: the skill picks a registered one, so the error can list the missing ones.
REQUIRED_METHODS: tuple[str, ...] = ("add", "add_many", "search", "stats")


def missing_methods(backend: object) -> list[str]:
    """The ``REQUIRED_METHODS`` ``backend`` does not have (as callables)."""
    return [m for m in REQUIRED_METHODS if not callable(getattr(backend, m, None))]


def display_name(backend: object) -> str:
    """What messages call ``backend``: its ``name``, else its class name."""
    name = getattr(backend, "name", None)
    return name if isinstance(name, str) and name else type(backend).__name__
