"""Where the embedded memory database lives when nobody says otherwise."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sof_core import ConfigError

ENV_PATH = "SOF_MEMORY_PATH"
PATH_SETTING = "plugin_settings.memory.path"
MEMORY_IN_RAM = ":memory:"


def user_data_dir() -> Path:
    """The platform's per-user data dir (XDG on Linux), without a third-party dependency."""
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "sof"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "sof"
    value = os.environ.get("XDG_DATA_HOME")
    # The XDG spec: a relative value is invalid and ignored (it would put the database
    # wherever the process happens to run).
    base = Path(value) if value and os.path.isabs(value) else Path.home() / ".local" / "share"
    return base / "sof"


def resolve_db_path(
    settings: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """``$SOF_MEMORY_PATH``, else ``plugin_settings.memory.path``, else the user data dir.

    The environment wins over the config file, as it does for every SOF setting.
    ``":memory:"`` keeps the database in RAM (tests, throw-away runs). A configured path is
    checked even when the environment wins: one that is not a non-empty string (``7``,
    ``["a"]``, ``""``) is a ``ConfigError`` naming ``plugin_settings.memory.path``, never a
    file name; ``null`` counts as unset.
    """
    environ = os.environ if environ is None else environ
    configured = configured_path(settings or {})
    explicit = environ.get(ENV_PATH) or configured
    if explicit:
        return explicit if explicit == MEMORY_IN_RAM else str(Path(explicit).expanduser())
    return str(user_data_dir() / "memory.db")


def configured_path(settings: Mapping[str, Any]) -> str | None:
    """``plugin_settings.memory.path`` if set, checked to be a usable file name."""
    value = settings.get("path")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ConfigError(
            f"{PATH_SETTING} must be a database file path (a non-empty string without NUL "
            f"characters, or {MEMORY_IN_RAM!r}), got {value!r}",
            key=PATH_SETTING,
        )
    return value
