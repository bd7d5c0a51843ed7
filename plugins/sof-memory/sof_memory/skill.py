"""MemoryRetrievalSkill: the first step of most SAM plans, finding what SAM already knows.

It writes ``intermediate_data["memory_results"]`` (ranked dicts; ConflictDetectorSkill and
ResponseGenerationSkill read exactly this shape) and ``uif.source_documents``. It talks only
to the ``MemoryBackend`` interface, so SAM's own stores plug in without changing the skill.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from sof_core import UIF, BaseSkillModule, SkillExecutionError, SOFError
from sof_memory.backend import (
    GENERAL_PROFILE,
    MemoryBackend,
    MemoryFilters,
    MemoryHit,
    display_name,
    document_id,
    missing_methods,
    profile_filter,
)
from sof_memory.errors import MemoryBackendError
from sof_memory.paths import resolve_db_path
from sof_memory.selection import select_backend
from sof_memory.settings import DEFAULT_LIMIT, check_limit, configured_limit

log = logging.getLogger("sof.memory")

__all__ = ["DEFAULT_LIMIT", "GENERAL_PROFILE", "MemoryRetrievalSkill"]



class MemoryRetrievalSkill(BaseSkillModule):
    """Search memory for the query; narrow by ``user_context`` and ``active_profile``.

    ``user_context`` may hold ``"sources"`` (a source or list of sources) and ``"tags"``
    (a tag or list of tags). An ``active_profile`` other than ``"general"`` keeps documents
    whose metadata has that ``"profile"`` or none at all.
    """

    skill_name = "MemoryRetrievalSkill"
    skill_version = "1.0.0"
    skill_description = "Finds stored memories relevant to the query and lists their sources."
    skill_category = "memory"
    required_inputs = ["input_query"]
    optional_inputs = ["user_context", "active_profile"]
    output_keys = {"memory_results": list, "source_documents": list}
    estimated_execution_time = 0.05
    max_execution_time = 10.0
    #: For the rules planner (docs/planning.md): questions about stored knowledge. Queries
    #: that match no skill's trigger get ``default_plan``, which lists this skill too.
    triggers: ClassVar[tuple[str, ...]] = (
        r"\b(?:remember|recall|memor(?:y|ies)|stored|saved)\b",
        r"\b(?:my|our) (?:notes?|documents?|files?|sources?|records?|knowledge)\b",
        r"\bwhat (?:do|did) (?:you|we|i) (?:know|say|write|save|note)\b",
        r"\baccording to (?:my|our|the) (?:notes?|documents?|files?|sources?|records?)\b",
        r"\b(?:did|have) i (?:say|write|save|note|mention)\w*\b",
    )

    def __init__(self, backend: MemoryBackend | None = None, *, limit: int | None = None) -> None:
        super().__init__()
        if backend is not None and (missing := missing_methods(backend)):
            raise MemoryBackendError(
                display_name(backend),
                f"passed to MemoryRetrievalSkill but lacks {missing}; a memory backend "
                "must implement sof_memory.MemoryBackend",
            )
        self._fixed_backend = backend
        self._limit = limit
        self._settings: dict[str, Any] = {}
        self._registry: Any | None = None
        self._cached: tuple[int, MemoryBackend] | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle settings, not live state, so executors such as sof-dask can ship the skill.

        The lock, the registry and the cached backend stay behind; the copy re-selects its
        backend from the same settings (the embedded SQLite store opens the same path).
        """
        state = dict(self.__dict__)
        for name in ("_lock", "_registry", "_cached", "logger"):
            state.pop(name, None)
        # The database this process would open goes with it: a Dask or isolation worker
        # has an environment of its own, where ``SOF_MEMORY_PATH`` may be unset (a worker
        # started before the host set it, or the clean environment of an isolated one).
        state["_settings"] = {**self._settings, "path": resolve_db_path(self._settings)}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._registry = None
        self._cached = None
        self._lock = threading.Lock()
        self.logger = logging.getLogger(f"sof.skill.{self.skill_name}")

    def configure(self, settings: Mapping[str, Any], registry: Any | None) -> None:
        """Called from ``sof_configure``: where backends are registered and which one to use."""
        with self._lock:
            self._settings = dict(settings)
            self._registry = registry
            self._cached = None

    @property
    def backend(self) -> MemoryBackend:
        """The constructor's backend, else the configured one (re-resolved when plugins change)."""
        if self._fixed_backend is not None:
            return self._fixed_backend
        registry = self._registry
        version = -1 if registry is None else int(registry.version)
        cached = self._cached
        if cached is not None and cached[0] == version:
            return cached[1]
        with self._lock:
            backend = select_backend(self._settings, registry)
            self._cached = (version, backend)
            return backend

    @property
    def limit(self) -> int:
        """The constructor's ``limit``, else ``plugin_settings.memory.limit`` (default 5);
        1 to ``MAX_LIMIT``, anything else is a ``ConfigError`` naming where it came from."""
        if self._limit is not None:
            return check_limit(self._limit, "MemoryRetrievalSkill(limit=...)")
        return configured_limit(self._settings)

    def execute(self, uif: UIF) -> UIF:
        filters = self._filters(uif.user_context, uif.active_profile)
        backend = self.backend
        name = display_name(backend)
        try:
            hits = backend.search(uif.input_query, self.limit, filters)
        except SOFError:
            raise
        except Exception as exc:
            raise MemoryBackendError(name, f"search failed: {type(exc).__name__}: {exc}") from exc
        results = [self._as_result(name, hit) for hit in list(hits)[: self.limit]]
        uif.intermediate_data["memory_results"] = results
        uif.source_documents = list(dict.fromkeys(r["source"] for r in results if r["source"]))
        uif.add_log_entry(f"{len(results)} memories from backend {name!r}", self.skill_name)
        if not results and _holds_nothing(backend):
            uif.add_warning(
                f"memory backend {name!r} holds no documents, so nothing was retrieved: add "
                "some with `sof memory import PATH` (`sof memory import --sample` loads the "
                "bundled sample corpus)"
            )
        return uif

    # --- helpers ---------------------------------------------------------------------------

    def _filters(self, context: Mapping[str, Any] | None, profile: str | None) -> MemoryFilters:
        context = context or {}
        return MemoryFilters(
            sources=self._strings(context, "sources"),
            tags=self._strings(context, "tags"),
            profile=profile_filter(profile),
        )

    def _strings(self, context: Mapping[str, Any], key: str) -> tuple[str, ...]:
        value = context.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise SkillExecutionError(
            f"user_context[{key!r}] must be a string or a list of strings, got {value!r}",
            self.skill_name,
        )

    def _as_result(self, backend: str, hit: Any) -> dict[str, Any]:
        """One hit in the ``memory_results`` shape, whatever the backend returned it as."""
        if isinstance(hit, MemoryHit):
            return hit.to_dict()
        if isinstance(hit, Mapping) and isinstance(hit.get("text"), str):
            source = str(hit.get("source") or "")
            metadata = hit.get("metadata") or {}
            return {
                "id": str(hit.get("id") or document_id(hit["text"], source)),
                "text": hit["text"],
                "source": source,
                "score": float(hit.get("score") or 0.0),
                "created_at": str(hit.get("created_at") or ""),
                "metadata": dict(metadata) if isinstance(metadata, Mapping) else {},
            }
        raise MemoryBackendError(
            backend,
            f"search() returned {hit!r}; return MemoryHit objects or dicts with at least 'text'",
        )


def _holds_nothing(backend: MemoryBackend) -> bool:
    """The backend says it holds no document at all: a search that found nothing then
    says nothing about the question, and the user is told how to fill the memory.
    Asked only after an empty search; a backend whose ``stats`` fails or has no
    ``documents`` count is taken at its word (no hint, the search already succeeded)."""
    try:
        count = backend.stats().get("documents")
    except Exception:  # a hint only: the skill's own work is done and stays
        log.debug("stats() of memory backend %s failed", display_name(backend), exc_info=True)
        return False
    return count == 0
