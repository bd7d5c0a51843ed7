"""Errors the memory plugin raises, all under ``sof_core.SOFError``.

    SOFError
    ├── MemoryBackendError ........... a store failed (cannot open, corrupt, bad path)
    └── ConfigError
        └── UnknownMemoryBackendError  the configured backend name is not installed
"""

from __future__ import annotations

from collections.abc import Iterable

from sof_core import ConfigError, SOFError

BACKEND_SETTING = "plugin_settings.memory.backend"


class MemoryBackendError(SOFError):
    """A memory backend could not do what was asked; ``backend`` names it."""

    def __init__(self, backend: str, message: str) -> None:
        self.backend = backend
        super().__init__(f"memory backend {backend!r}: {message}")


class UnknownMemoryBackendError(ConfigError):
    """``plugin_settings.memory.backend`` names a backend no loaded plugin registered."""

    def __init__(self, name: str, installed: Iterable[str]) -> None:
        self.name = name
        self.installed = sorted(installed)
        super().__init__(
            f"memory backend {name!r} (from {BACKEND_SETTING}) is not installed; installed "
            f"memory backends: {self.installed or 'none'}. Install the plugin that provides "
            f"it or set {BACKEND_SETTING} to one of these",
            key=BACKEND_SETTING,
        )
