"""Regular expressions compiled at first use, not when the plugin is imported.

Every ``sof`` process imports the installed plugins (``sof run``, ``sof plugins``, a host's
engine), and most of them never vet anything: compiling the detectors' patterns at import
would be paid by all of them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable


def lazy_pattern(pattern: str, flags: int = 0) -> Callable[[], re.Pattern[str]]:
    """A function returning ``re.compile(pattern, flags)``, compiled on its first call."""

    @functools.cache
    def compiled() -> re.Pattern[str]:
        return re.compile(pattern, flags)

    return compiled


__all__ = ["lazy_pattern"]
