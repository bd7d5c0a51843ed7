"""Calls per minute (and per hour), counted in the host process over a sliding window.

The count lives where the run is driven, not in the worker that runs the tool: workers are
killed and replaced, and a tool must not reset its own budget by crashing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from sof_core.errors import ToolRateLimitError

MINUTE = 60.0
HOUR = 3600.0


class RateLimiter:
    """At most ``per_minute`` calls in any 60 s and ``per_hour`` in any hour (None: no cap),
    and, with ``cooldown``, at least that many seconds between calls. Thread-safe.

    ``acquire()`` records a call and returns 0.0 when it is allowed, else the seconds until
    one would be (nothing is recorded then, so refused calls do not use up the budget).
    """

    def __init__(
        self,
        per_minute: int | None = None,
        per_hour: int | None = None,
        *,
        cooldown: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("per_minute", per_minute), ("per_hour", per_hour)):
            if value is not None and (isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")
        if cooldown < 0:
            raise ValueError(f"cooldown must be >= 0 seconds, got {cooldown!r}")
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.cooldown = cooldown
        self._clock = clock
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        with self._lock:
            now = self._clock()
            calls = self._calls
            horizon = HOUR if self.per_hour is not None else MINUTE
            while calls and calls[0] <= now - horizon:
                calls.popleft()
            wait = 0.0
            if self.cooldown and calls:
                wait = max(wait, calls[-1] + self.cooldown - now)
            if self.per_minute is not None:
                recent = _since(calls, now - MINUTE)
                if recent >= self.per_minute:
                    # the call that leaves the window first is per_minute calls back
                    wait = max(wait, calls[len(calls) - self.per_minute] + MINUTE - now)
            if self.per_hour is not None and len(calls) >= self.per_hour:
                wait = max(wait, calls[len(calls) - self.per_hour] + HOUR - now)
            if wait > 0:
                return wait
            calls.append(now)
            return 0.0

    def stats(self) -> dict[str, int | None]:
        """Calls in the last minute and hour, with the limits (SAM's ``get_stats`` keys)."""
        with self._lock:
            now = self._clock()
            return {
                "requests_last_minute": _since(self._calls, now - MINUTE),
                "requests_last_hour": _since(self._calls, now - HOUR),
                "limit_per_minute": self.per_minute,
                "limit_per_hour": self.per_hour,
            }

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


def _since(calls: deque[float], start: float) -> int:
    count = 0
    for stamp in reversed(calls):
        if stamp <= start:
            break
        count += 1
    return count


_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()


def tool_limiter(tool: str, per_minute: int) -> RateLimiter:
    """This process's limiter for ``tool`` (a new one when its limit changed)."""
    limiter = _limiters.get(tool)
    if limiter is None or limiter.per_minute != per_minute:
        with _limiters_lock:
            limiter = _limiters.get(tool)
            if limiter is None or limiter.per_minute != per_minute:
                limiter = _limiters[tool] = RateLimiter(per_minute)
    return limiter


def check_rate(tool: str, per_minute: int | None) -> None:
    """Count one call of ``tool``; ``ToolRateLimitError`` when it is over ``per_minute``."""
    if per_minute is None:
        return
    wait = tool_limiter(tool, per_minute).acquire()
    if wait > 0:
        raise ToolRateLimitError(tool, per_minute, wait)


def reset_rate_limits() -> None:
    """Forget every tool's count (tests; a long-lived host reloading its policy)."""
    with _limiters_lock:
        _limiters.clear()
