"""Where the embedded memory database lives when nobody says otherwise."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_PATH = "SOF_MEMORY_PATH"
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
    ``":memory:"`` keeps the database in RAM (tests, throw-away runs).
    """
    environ = os.environ if environ is None else environ
    explicit = environ.get(ENV_PATH) or (settings or {}).get("path")
    if explicit:
        text = str(explicit)
        return text if text == MEMORY_IN_RAM else str(Path(text).expanduser())
    return str(user_data_dir() / "memory.db")
