"""Choosing the memory backend by name from what the loaded plugins registered.

Shared by the skill and the ``sof memory`` commands, so both always talk to the same store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sof_core import ConfigError
from sof_memory.backend import MemoryBackend, missing_methods
from sof_memory.errors import BACKEND_SETTING, MemoryBackendError, UnknownMemoryBackendError
from sof_memory.sqlite_backend import SQLiteMemoryBackend

DEFAULT_BACKEND = "sqlite"
KIND = "memory_backends"


def backend_name(settings: Mapping[str, Any]) -> str:
    """The configured backend name (``plugin_settings.memory.backend``, default sqlite).

    Anything but a non-empty string is a ``ConfigError`` naming the setting and the value.
    """
    name = settings.get("backend", DEFAULT_BACKEND)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            f"{BACKEND_SETTING} must be the name of a memory backend (a non-empty string, "
            f"default {DEFAULT_BACKEND!r}), got {name!r}",
            key=BACKEND_SETTING,
        )
    return name.strip()


def select_backend(settings: Mapping[str, Any], registry: Any | None) -> MemoryBackend:
    """The backend named in ``settings`` from ``registry``.

    The embedded SQLite store is always available, even without a registry (a skill used
    outside a plugin manager) or with plugin autoload off; it is then configured from
    ``settings`` and the environment.
    """
    name = backend_name(settings)
    entries = {} if registry is None else registry.components(KIND)
    entry = entries.get(name)
    if entry is None:
        if name != DEFAULT_BACKEND:
            raise UnknownMemoryBackendError(name, {*entries, DEFAULT_BACKEND})
        standalone = SQLiteMemoryBackend()
        standalone.configure(settings)
        return standalone
    backend = entry.obj
    missing = missing_methods(backend)
    if missing:
        raise MemoryBackendError(
            name,
            f"registered by plugin {entry.plugin!r} but lacks {missing}; a memory backend "
            "must implement sof_memory.MemoryBackend",
        )
    return backend  # type: ignore[no-any-return]
