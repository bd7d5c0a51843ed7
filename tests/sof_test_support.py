"""Helpers the core's test modules share (``tests/conftest.py`` puts this folder on
``sys.path``, so a test module imports them as ``from sof_test_support import ...``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sof_core import hookimpl


def wait_until(check: Callable[[], Any], seconds: float = 5.0) -> bool:
    """Poll ``check`` until it is true or ``seconds`` pass (a bound for hangs, not a
    timing); the last answer decides."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.01)
    return bool(check())


class Alerts:
    """An observer that records every ``sof_alert`` as ``(kind, message, details)``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    @hookimpl
    def sof_alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
        self.seen.append((kind, message, details))
