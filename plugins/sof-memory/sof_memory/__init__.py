"""sof-memory: memory retrieval for SOF, on any backend that implements ``MemoryBackend``.

Public surface: the skill, the backend interface and its data types, the embedded SQLite
backend and the errors. Everything else is internal.
"""

from __future__ import annotations

from sof_memory.backend import (
    MemoryBackend,
    MemoryDocument,
    MemoryFilters,
    MemoryHit,
    document_id,
)
from sof_memory.errors import MemoryBackendError, UnknownMemoryBackendError
from sof_memory.skill import MemoryRetrievalSkill
from sof_memory.sqlite_backend import SQLiteMemoryBackend

__version__ = "0.1.0"

__all__ = [
    "MemoryBackend",
    "MemoryBackendError",
    "MemoryDocument",
    "MemoryFilters",
    "MemoryHit",
    "MemoryRetrievalSkill",
    "SQLiteMemoryBackend",
    "UnknownMemoryBackendError",
    "__version__",
    "document_id",
]
