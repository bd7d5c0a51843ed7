"""One watchdog per process: a heap of deadlines and one daemon thread that wakes at the first.

Runs and steps ``arm`` a deadline with a callback; the thread sleeps until the earliest
deadline in the heap (woken early only when a new one comes before it), then calls what is
due. Nothing polls: an overrun is seen at its deadline, whatever the other timeouts are.

Arming is cheap (a heap push under a lock; the thread is woken only for a deadline earlier
than the one it sleeps until), so a run arms one deadline, not one per skill. Cancelling
only marks the entry; cancelled entries are dropped when due, or all at once (by the next
``arm`` or the thread) when they are more than half the heap, so the heap stays within
about twice the deadlines still armed.

Callbacks run in the watchdog's thread and must not block: they take locks with
``acquire(blocking=False)`` and re-arm a moment later when they cannot.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import os
import threading
from collections.abc import Callable

from sof_core.execution.deadlines import clock

log = logging.getLogger("sof.watchdog")

#: The longest single sleep (a lock wait cannot take an unbounded timeout).
_MAX_SLEEP = 3600.0
#: Compact the heap when this many entries are cancelled and they are over half of it.
_COMPACT_AFTER = 256


class Entry:
    """One armed deadline; ``cancel()`` makes it a no-op."""

    __slots__ = ("callback", "deadline")

    def __init__(self, deadline: float, callback: Callable[[float], None]) -> None:
        self.deadline = deadline
        self.callback: Callable[[float], None] | None = callback


class Watchdog:
    """The deadline heap and its thread (see the module docstring)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Entry]] = []
        self._lock = threading.Lock()
        #: Held while the thread sleeps; released to wake it early.
        self._wake = threading.Lock()
        self._wake.acquire()
        self._order = itertools.count()
        self._next = math.inf  # the deadline the thread sleeps until
        self._cancelled = 0
        self._thread: threading.Thread | None = None
        self.fired = 0  # callbacks called (for stats and tests)

    def arm(self, deadline: float, callback: Callable[[float], None]) -> Entry:
        """Call ``callback(now)`` in the watchdog's thread once ``clock()`` reaches
        ``deadline`` (a ``time.monotonic()`` value)."""
        entry = Entry(deadline, callback)
        with self._lock:
            if self._cancelled > _COMPACT_AFTER and self._cancelled * 2 > len(self._heap):
                # Runs cancel their deadline when they end, long before it is due: drop the
                # dead entries here too, not only when the thread wakes (maybe minutes on).
                self._compact()
            heapq.heappush(self._heap, (deadline, next(self._order), entry))
            if deadline >= self._next:
                return entry
            self._next = deadline
            if self._thread is None:
                self._start()
                return entry
        self._wake_up()
        return entry

    def cancel(self, entry: Entry) -> None:
        """Forget ``entry`` (its callback will not be called)."""
        if entry.callback is not None:
            entry.callback = None
            self._cancelled += 1  # a hint for compaction; an occasional lost count is harmless

    def pending(self) -> int:
        """Armed entries not yet due nor cancelled."""
        with self._lock:
            return sum(1 for _, _, entry in self._heap if entry.callback is not None)

    def _compact(self) -> None:
        """Drop cancelled entries (under the lock)."""
        heap = self._heap
        heap[:] = [item for item in heap if item[2].callback is not None]
        heapq.heapify(heap)
        self._cancelled = 0

    # --- the thread ------------------------------------------------------------------------

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sof-watchdog", daemon=True)
        self._thread.start()

    def _wake_up(self) -> None:
        try:  # noqa: SIM105 - hot path: suppress() costs a context manager per call
            self._wake.release()
        except RuntimeError:  # already released: the thread is awake anyway
            pass

    def _loop(self) -> None:
        heap = self._heap
        while True:
            due: list[Entry] = []
            with self._lock:
                now = clock()
                while heap and heap[0][0] <= now:
                    due.append(heapq.heappop(heap)[2])
                if self._cancelled > _COMPACT_AFTER and self._cancelled * 2 > len(heap):
                    self._compact()
                # While callbacks run, new deadlines wake the thread only if earlier than
                # "now": it looks at the heap again right after them anyway.
                self._next = now if due else (heap[0][0] if heap else math.inf)
            if due:
                for entry in due:
                    callback = entry.callback
                    if callback is None:
                        self._cancelled = max(0, self._cancelled - 1)
                        continue
                    entry.callback = None
                    self.fired += 1
                    try:
                        callback(now)
                    except Exception:  # one bad callback must not stop every deadline
                        log.exception("watchdog callback %r failed", callback)
                continue
            wait = self._next - clock()
            if wait > 0:
                self._wake.acquire(timeout=min(wait, _MAX_SLEEP))


_watchdog: Watchdog | None = None
_watchdog_lock = threading.Lock()


def watchdog() -> Watchdog:
    """This process's watchdog (its thread starts with the first deadline armed)."""
    global _watchdog
    dog = _watchdog
    if dog is None:
        with _watchdog_lock:
            if _watchdog is None:
                _watchdog = Watchdog()
            dog = _watchdog
    return dog


def _forget_after_fork() -> None:
    """A forked child has no watchdog thread: it starts its own on first use."""
    global _watchdog
    _watchdog = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
