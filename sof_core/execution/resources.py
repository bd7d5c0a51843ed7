"""The threads an engine owns, and what it knows about the calls it gave up on.

Three ``DaemonPool``s per engine, started on first use: runners (one thread per run in
flight, no limit: a run waits for nothing but its own runner), steps (the skills of
wide stages and the sync skills of async runs, at most ``max_workers`` busy at once; hung
ones do not count, their places are handed on) and observers (the observer calls made from
the host's thread under ``observer_timeout``: ``observers.py``). ``close`` releases them
without waiting for a hung call; engines still open at interpreter exit are closed the same
way, and their daemon threads never hold the exit up.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from typing import Any

from sof_core.config import SOFConfig
from sof_core.execution.hung import HungCalls
from sof_core.execution.observers import HungObservers
from sof_core.execution.threads import DaemonPool


class EngineThreads:
    """One engine's runner, step and observer pools, and its hung-call counts."""

    def __init__(self, config: SOFConfig, name: str = "sof") -> None:
        self.config = config
        self.name = name
        self.hung = HungCalls(config)
        self.hung_observers = HungObservers()
        self._runners: DaemonPool | None = None
        self._steps: DaemonPool | None = None
        self._observers: DaemonPool | None = None
        self._lock = threading.Lock()
        _open.add(self)

    def configure(self, config: SOFConfig) -> None:
        """New settings for the engine: the hung-call limit applies from now on; pools
        already started keep their size."""
        self.config = config
        self.hung.configure(config)

    def runners(self) -> DaemonPool:
        """Threads that walk runs (one per run in flight)."""
        pool = self._runners
        if pool is None or pool.closed:
            pool = self._start("_runners", "run")
        return pool

    def steps(self) -> DaemonPool:
        """Threads that run skills beside the runner (``max_workers`` at most)."""
        pool = self._steps
        if pool is None or pool.closed:
            pool = self._start("_steps", "step", self.config.max_workers)
        return pool

    def observers(self) -> DaemonPool:
        """Threads that make observer calls for the host's thread (``observers.py``)."""
        pool = self._observers
        if pool is None or pool.closed:
            pool = self._start("_observers", "observe")
        return pool

    def _start(self, attribute: str, suffix: str, max_workers: int | None = None) -> DaemonPool:
        """The pool held in ``attribute``, made now if there is none or it was closed."""
        with self._lock:
            pool: DaemonPool | None = getattr(self, attribute)
            if pool is None or pool.closed:
                pool = DaemonPool(f"{self.name}-{suffix}", max_workers)
                setattr(self, attribute, pool)
        return pool

    def close(self, wait: float = 0.0) -> None:
        """Release the pools: idle threads stop, hung ones are left to end on their own.

        ``wait``: seconds to wait, in all, for the threads that were idle to end, so that
        they are gone when this returns (``engine.close()``); a busy or hung thread is
        never waited for. An idle thread that takes a job queued before the close runs it
        first, hence the bound.
        """
        with self._lock:
            pools = [p for p in (self._runners, self._steps, self._observers) if p is not None]
            self._runners = self._steps = self._observers = None
        idle: list[threading.Thread] = []
        for pool in pools:
            idle += pool.close()
        if wait > 0 and idle:
            deadline = time.monotonic() + wait
            for thread in idle:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                thread.join(left)

    def release_idle(self, wait: float = 0.0) -> None:
        """End the threads of the step and observer pools, which serve the runs made on
        event loops, as soon as they have no job, and wait up to ``wait`` seconds in all
        for them to end; the pools stay open (``DaemonPool.retire``). Called when a loop
        that ran this engine's runs shuts down (``loop_shutdown.py``): the threads it
        used are not left behind."""
        deadline = time.monotonic() + wait
        for pool in (self._steps, self._observers):
            if pool is not None:
                pool.retire(max(0.0, deadline - time.monotonic()))

    def stats(self) -> dict[str, Any]:
        """Hung-call counts (``hung.py``) and each pool's threads (``DaemonPool.stats``)."""
        stats = self.hung.stats()
        # A pool not started yet (or closed) has no threads: zeros, not None, so a dashboard
        # can read ``["threads"]["steps"]["live"]`` at any time.
        none = {"live": 0, "idle": 0, "queued": 0, "abandoned": 0}
        stats["threads"] = {
            "runners": self._runners.stats() if self._runners is not None else dict(none),
            "steps": self._steps.stats() if self._steps is not None else dict(none),
            "observers": (self._observers.stats() if self._observers is not None
                          else dict(none)),
        }
        stats["hung_observers"] = self.hung_observers.names()
        return stats


_open: weakref.WeakSet[EngineThreads] = weakref.WeakSet()
_default: EngineThreads | None = None
_default_lock = threading.Lock()


def default_threads() -> EngineThreads:
    """Threads for runs made outside an engine (a ``RunContext`` built by hand)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = EngineThreads(SOFConfig(), "sof-default")
    return _default


@atexit.register
def _close_all() -> None:
    """At exit, release every engine's pools without joining a hung thread."""
    for threads in list(_open):
        threads.close()
