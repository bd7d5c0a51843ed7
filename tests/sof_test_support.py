"""Helpers the core's test modules share (``tests/conftest.py`` puts this folder on
``sys.path``, so a test module imports them as ``from sof_test_support import ...``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
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


def errors_in_threads(work: Callable[[Any], Any], items: Iterable[Any]) -> list[BaseException]:
    """``work(item)`` for each item, each in a thread of its own, all at once; what they
    raised (so a test asserts ``== []`` and sees the errors when it fails)."""
    errors: list[BaseException] = []

    def run(item: Any) -> None:
        try:
            work(item)
        except BaseException as exc:  # pragma: no cover - the failure the test looks for
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


class Alerts:
    """An observer that records every ``sof_alert`` as ``(kind, message, details)``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    @hookimpl
    def sof_alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
        self.seen.append((kind, message, details))
