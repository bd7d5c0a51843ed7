"""Reading ``plugin_settings.memory``: one checked value per key, for the skill and the CLI.

Config files are JSON, so a setting may hold any JSON value. Each reader here checks the type
(``true`` is not the number 1, ``7`` is not a file name) and raises a ``ConfigError`` naming
the key and the value it got, so ``sof run`` and ``sof memory`` refuse a bad setting alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sof_core import ConfigError

SETTINGS_PREFIX = "plugin_settings.memory"
LIMIT_SETTING = f"{SETTINGS_PREFIX}.limit"
#: Results per search when nothing says otherwise.
DEFAULT_LIMIT = 5
#: The most results one search may ask for (``plugin_settings.memory.limit``, ``--limit``).
MAX_LIMIT = 1000


def is_limit(value: Any) -> bool:
    """``value`` is a usable result limit: an int (not a bool) from 1 to ``MAX_LIMIT``."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_LIMIT


def check_limit(value: Any, setting: str = LIMIT_SETTING) -> int:
    """``value`` as a result limit; a ``ConfigError`` naming ``setting`` if it is not one."""
    if not is_limit(value):
        raise ConfigError(
            f"{setting} must be an integer from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}), "
            f"got {value!r}",
            key=setting,
        )
    return int(value)


def configured_limit(settings: Mapping[str, Any]) -> int:
    """``plugin_settings.memory.limit``, checked; ``DEFAULT_LIMIT`` when unset."""
    return check_limit(settings.get("limit", DEFAULT_LIMIT))
