"""Thread pools an engine owns: daemon threads, never joined, abandoned ones replaced.

``concurrent.futures.ThreadPoolExecutor`` does not fit a run that may abandon a hung skill:
its threads are joined at interpreter exit (a hung skill then holds the process), and a hung
thread keeps its place in the pool for good (enough of them and nothing else ever runs).
``DaemonPool`` threads are daemons; a job the watchdog gave up on gives its place back at
once (``abandon``: a new thread may start in its stead) and its thread ends when the call
finally returns. ``close`` stops the idle threads and never waits for a busy one.

Jobs are plain calls (no futures: the run collects results itself). A job that returns
``ABANDONED`` tells its thread that its place was given away: the thread then exits.
"""

from __future__ import annotations

import _thread
import logging
import os
import threading
import weakref
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any

log = logging.getLogger("sof.threads")

#: What a job returns when the watchdog gave its thread's place away.
ABANDONED = object()
#: An idle thread beyond the first few exits after this many seconds without work.
IDLE_SECONDS = 60.0
_KEEP_IDLE = 4


class DaemonPool:
    """Daemon worker threads, started on demand up to ``max_workers`` (None: no limit)."""

    def __init__(self, name: str, max_workers: int | None = None) -> None:
        self.name = name
        self.max_workers = max_workers
        self._jobs: SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            SimpleQueue()
        )
        self._lock = _thread.allocate_lock()
        self._live = 0  # threads holding a place (busy or idle), abandoned ones excluded
        self._idle = 0  # of those, waiting for a job
        self._queued = 0  # jobs submitted that no thread has taken yet
        self._abandoned = 0  # threads whose place was given away, still running their call
        self._started = 0  # threads ever started (names)
        self._closed = False
        _pools.add(self)

    def _after_fork(self) -> None:
        """In a forked child: the parent's threads are not there; start afresh."""
        self._jobs = SimpleQueue()
        self._lock = _thread.allocate_lock()
        self._live = self._idle = self._queued = self._abandoned = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in a pool thread (queued while every place is busy)."""
        lock = self._lock
        lock.acquire()
        if self._closed:
            lock.release()
            raise RuntimeError(f"thread pool {self.name!r} is closed")
        self._queued += 1
        if self._idle >= self._queued:
            lock.release()
        else:
            spawn = self.max_workers is None or self._live < self.max_workers
            if spawn:
                self._live += 1
                self._started += 1
                number = self._started
            lock.release()
            if spawn:
                self._spawn(number)
        self._jobs.put((fn, args))

    def abandon(self) -> None:
        """The calling job's thread is given up on: free its place for a new thread."""
        with self._lock:
            self._live -= 1
            self._abandoned += 1
            spawn = self._queued > self._idle and (
                self.max_workers is None or self._live < self.max_workers
            )
            if spawn:
                self._live += 1
                self._started += 1
                number = self._started
        if spawn:
            self._spawn(number)

    def full(self) -> bool:
        """Every place is busy and jobs wait for one."""
        with self._lock:
            return self._queued > self._idle and self.max_workers is not None and (
                self._live >= self.max_workers
            )

    def stats(self) -> dict[str, int]:
        """Threads by state: ``live`` (holding a place), ``idle``, ``queued`` jobs, and
        ``abandoned`` threads still running a call given up on."""
        with self._lock:
            return {"live": self._live, "idle": self._idle, "queued": self._queued,
                    "abandoned": self._abandoned}

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the threads once the jobs already queued are done; never waits (a busy
        thread stops after its job, a hung one when its call returns)."""
        with self._lock:
            count = self._live
            self._closed = True
        for _ in range(count):
            self._jobs.put(None)

    # --- the threads -------------------------------------------------------------------------

    def _spawn(self, number: int) -> None:
        thread = threading.Thread(target=self._work, name=f"{self.name}-{number}", daemon=True)
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._live -= 1
            raise

    def _work(self) -> None:
        jobs = self._jobs
        lock = self._lock
        while True:
            try:
                job = jobs.get(timeout=IDLE_SECONDS)
            except Empty:
                with lock:
                    if self._idle > self._queued and self._live > _KEEP_IDLE:
                        self._idle -= 1
                        self._live -= 1
                        return
                continue
            if job is None:  # close(): this place is given up
                with lock:
                    self._live -= 1
                    if self._idle > 0:
                        self._idle -= 1
                return
            lock.acquire()
            self._queued -= 1
            if self._idle > 0:
                self._idle -= 1
            lock.release()
            fn, args = job
            try:
                result = fn(*args)
            except BaseException:  # jobs record their own errors; this is a bug in one
                log.exception("job %r failed in %s", fn, threading.current_thread().name)
                result = None
            if result is ABANDONED:
                with lock:
                    self._abandoned -= 1
                return
            lock.acquire()
            self._idle += 1
            lock.release()


_pools: weakref.WeakSet[DaemonPool] = weakref.WeakSet()


def _forget_threads_after_fork() -> None:
    """A forked child (a pre-forking server) has none of its parent's pool threads: every
    pool counts none, so the child's runs start their own instead of queueing for ghosts."""
    for pool in list(_pools):
        pool._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads_after_fork)
