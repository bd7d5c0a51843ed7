"""Thread pools an engine owns: daemon threads, never joined, abandoned ones replaced.

``concurrent.futures.ThreadPoolExecutor`` does not fit a run that may abandon a hung skill:
its threads are joined at interpreter exit (a hung skill then holds the process), and a hung
thread keeps its place in the pool for good (enough of them and nothing else ever runs).
``DaemonPool`` threads are daemons; a job the watchdog gave up on gives its place back at
once (``abandon``: a new thread may start in its stead) and its thread ends when the call
finally returns. ``close`` stops the idle threads and never waits for a busy one;
``retire`` stops them all, busy ones after their job, in a pool that stays open (an event
loop that served runs shuts down: ``loop_shutdown.py``).

Jobs are plain calls (no futures: the run collects results itself). A job that returns
``ABANDONED`` tells its thread that its place was given away: the thread then exits.

Growth. A job submitted ``eager`` (the default: a wide stage's steps, which should start
together) gets a new thread at once when none is idle. A job that may wait its turn
(``eager=False``: the sync skills of runs on an event loop, a thousand of which may be
submitted in a burst) gets one only while fewer than ``CORE_THREADS`` threads hold a place;
beyond that, the pool grows only when its queue has not moved for ``GROW_AFTER`` seconds
(every thread busy with a call that blocks): then a thread is started for each job waiting,
up to ``max_workers``. Short calls therefore never make it grow, however many are queued
(more threads would only contend for the GIL), and blocking ones wait at most about
``GROW_AFTER`` longer than with an eager start.
"""

from __future__ import annotations

import _thread
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any

log = logging.getLogger("sof.threads")

#: What a pool's queue holds: a job (a call and its arguments), or what ends a thread.
_Job = tuple[Callable[..., Any], tuple[Any, ...]] | tuple[()] | None

#: What a job returns when the watchdog gave its thread's place away.
ABANDONED = object()
#: What ``retire`` queues: the thread that takes it ends (its place was given back
#: when it was queued). Falsy, like ``close``'s None, so a job costs one truth test.
_RETIRE: tuple[()] = ()
#: An idle thread beyond the first few exits after this many seconds without work.
IDLE_SECONDS = 60.0
_KEEP_IDLE = 4
#: Threads a pool starts at once for jobs that may wait (see "Growth" above).
CORE_THREADS = 4
#: How long the queue of such jobs must stand still before the pool grows.
GROW_AFTER = 0.02


class DaemonPool:
    """Daemon worker threads, started on demand up to ``max_workers`` (None: no limit)."""

    def __init__(self, name: str, max_workers: int | None = None) -> None:
        self.name = name
        self.max_workers = max_workers
        self._jobs: SimpleQueue[_Job] = SimpleQueue()
        self._lock = _thread.allocate_lock()
        #: Notified (under ``_lock``) when a thread takes a ``_RETIRE``.
        self._retired_one = threading.Condition(self._lock)
        self._retiring = 0  # ``_RETIRE``s queued that no thread has taken yet
        #: Busy threads to end once their job returns (``retire``).
        self._ending: set[threading.Thread] = set()
        self._retired: list[threading.Thread] = []  # threads ``retire`` ended, to be joined
        self._live = 0  # threads holding a place (busy or idle), abandoned ones excluded
        # Of those, not running a job: waiting for one, or just started and about to wait
        # (a thread is counted from its start: had it been counted only once waiting, a job
        # an older thread took from under it would leave it uncounted, and the pool would
        # start threads it does not need and never retire them).
        self._idle = 0
        self._queued = 0  # jobs submitted that no thread has taken yet
        self._abandoned = 0  # threads whose place was given away, still running their call
        self._started = 0  # threads ever started (names)
        self._taken = 0  # jobs threads have taken (how the grow check sees the queue move)
        self._grow_armed = False  # a grow check is armed with the watchdog
        self._closed = False
        #: The threads holding or given a place, and those of them running a job (so
        #: ``close`` can wait for the idle ones to end, and never for a busy one).
        self._threads: set[threading.Thread] = set()
        self._busy: set[threading.Thread] = set()
        _pools.add(self)

    def _after_fork(self) -> None:
        """In a forked child: the parent's threads are not there; start afresh."""
        self._jobs = SimpleQueue()
        self._lock = _thread.allocate_lock()
        self._retired_one = threading.Condition(self._lock)
        self._retiring = 0
        self._ending = set()
        self._retired = []
        self._live = self._idle = self._queued = self._abandoned = 0
        self._grow_armed = False
        self._threads = set()
        self._busy = set()

    def submit(self, fn: Callable[..., Any], *args: Any, eager: bool = True) -> None:
        """Run ``fn(*args)`` in a pool thread (queued while every place is busy).

        ``eager=False``: the job may wait for a busy thread rather than start a new one
        (see "Growth" in the module docstring).
        """
        lock = self._lock
        lock.acquire()
        self._queued += 1
        # Queued under the lock: a ``close`` after this releases it queues its stop markers
        # behind the job, so a thread takes the job first (queued after them, it was left
        # with no thread to run it: a run in flight on an engine being closed hung).
        self._jobs.put((fn, args))
        if self._closed:
            # A run still going on a pool ``close`` let go of: its job gets a thread of its
            # own, beyond ``max_workers``, which ends once nothing is queued.
            number = self._new_place()
            lock.release()
            self._spawn(number)
            return
        if self._idle >= self._queued:
            lock.release()
            return
        room = self.max_workers is None or self._live < self.max_workers
        spawn = room and (eager or self._live < CORE_THREADS)
        check = None
        if spawn:
            number = self._new_place()
        elif room and not self._grow_armed:
            self._grow_armed = True
            check = self._taken
        lock.release()
        if spawn:
            self._spawn(number)
        elif check is not None:
            self._arm_grow(check)

    def _arm_grow(self, taken: int, at: float | None = None, late: bool = False) -> None:
        from sof_core.execution.deadlines import clock
        from sof_core.execution.watchdog import watchdog

        due = (clock() if at is None else at) + GROW_AFTER

        def grow(now: float) -> None:
            self._grow(taken, due, now, late)

        watchdog().arm(due, grow)

    def _grow(self, taken: int, due: float, now: float, was_late: bool) -> None:
        """The watchdog's grow check, armed for ``due``: start a thread per waiting job if
        the queue has not moved since ``taken`` (it must not block: it never waits for the
        lock). ``was_late``: the check before this one ran late and looked again."""
        if not self._lock.acquire(blocking=False):
            self._arm_grow(taken, now - GROW_AFTER + 0.001, was_late)  # a moment later
            return
        numbers: list[int] = []
        check = None
        late = False
        try:
            waiting = self._queued - self._idle
            if self._closed or waiting <= 0:
                self._grow_armed = False
            elif self._taken != taken or self._idle:
                # The queue moves, or a thread is free and only waits to be scheduled (its
                # wake-up, or the GIL held by a busy event loop): look again later.
                check = self._taken
            elif now - due > GROW_AFTER / 2 and not was_late:
                # This check itself ran late: the whole process may have stood still (a
                # long garbage collection), giving the threads no chance to take a job.
                # Once only: a process that is merely busy must still grow.
                check, late = self._taken, True
            else:
                room = waiting if self.max_workers is None else min(
                    waiting, self.max_workers - self._live)
                for _ in range(max(0, room)):
                    numbers.append(self._new_place())
                self._grow_armed = False
        finally:
            self._lock.release()
        for index, number in enumerate(numbers):
            try:
                self._spawn(number)  # gives its own place back if the thread cannot start
            except Exception:
                log.exception("thread pool %r could not start a thread", self.name)
                with self._lock:
                    self._places_unused(len(numbers) - index - 1)  # nor the ones after it
                break
        if check is not None:
            self._arm_grow(check, now, late)

    def abandon(self) -> None:
        """The calling job's thread is given up on: free its place for a new thread."""
        with self._lock:
            self._live -= 1
            self._abandoned += 1
            spawn = self._queued > self._idle and (
                self.max_workers is None or self._live < self.max_workers
            )
            if spawn:
                number = self._new_place()
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

    def close(self) -> list[threading.Thread]:
        """Stop the threads once the jobs already queued are done; never waits (a busy
        thread stops after its job, a hung one when its call returns). A job submitted
        later (a run in flight that held this pool) still runs, in a thread of its own.
        Returns the threads that were idle, which end as soon as they are scheduled: a
        caller that wants them gone when it returns joins them (``EngineThreads.close``)."""
        me = threading.current_thread()
        with self._lock:
            count = self._live
            self._closed = True
            idle = [t for t in self._threads if t not in self._busy and t is not me]
        for _ in range(count):
            self._jobs.put(None)
        return idle

    def retire(self, wait: float = 0.0) -> None:
        """End every thread of the pool as soon as it has no job: the idle ones now, the
        busy ones when their job returns (a hung one when its call does). The pool stays
        open: a later job starts a thread again. ``wait``: seconds to wait, in all, for
        them to end, so that they are gone when this returns; a busy thread is waited for
        within that bound only, and one running a call given up on not at all.

        Busy threads are included because one that has just handed its outcome back is
        still busy for a moment: the event loop it woke may shut down before it waits again.
        The idle ones' places are given back at once (a job submitted meanwhile starts a
        thread instead of waiting for one that is ending); any waiting thread may take a
        ``_RETIRE``: as many threads end either way.
        """
        me = threading.current_thread()
        with self._lock:
            if self._closed:
                return
            count = self._idle - self._queued  # idle beyond the jobs already waiting
            if count > 0:
                self._places_unused(count)
                self._retiring += count
            self._ending.update(t for t in self._busy if t is not me)
        for _ in range(max(0, count)):
            self._jobs.put(_RETIRE)
        if wait > 0:
            self._join_retired(wait)

    def _join_retired(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        with self._retired_one:
            # Not for the threads running a call given up on (``abandon``): they end when
            # the call returns, maybe never. Which busy ones those are is not known, only
            # how many: the wait ends when no more than that many are still to end.
            while self._retiring > 0 or len(self._ending) > self._abandoned:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._retired_one.wait(left)
            threads, self._retired = self._retired, []
        for thread in threads:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            thread.join(left)

    # --- the threads -------------------------------------------------------------------------

    def _new_place(self) -> int:
        """A place for a thread about to start (under the lock): the thread's number. It
        counts as idle from now on (see ``_idle``)."""
        self._live += 1
        self._idle += 1
        self._started += 1
        return self._started

    def _places_unused(self, count: int) -> None:
        """``count`` places whose threads could not start (under the lock)."""
        self._live -= count
        self._idle -= count

    def _spawn(self, number: int) -> None:
        thread = threading.Thread(target=self._work, name=f"{self.name}-{number}", daemon=True)
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._places_unused(1)
            raise

    def _work(self) -> None:
        me = threading.current_thread()
        with self._lock:  # added here, by a running thread: ``close`` may join it
            self._threads.add(me)
        try:
            self._serve(me)
        finally:
            # Not imported: no async skill ran, no loop. Still being imported by another
            # thread (no ``close_thread_loop`` yet): none ran on this one either.
            close_loop = getattr(sys.modules.get("sof_core.execution.aio"),
                                 "close_thread_loop", None)
            if close_loop is not None:
                try:
                    close_loop()
                except Exception:  # a loop a skill left broken: the thread ends anyway
                    log.exception("closing %s's event loop failed", me.name)
            with self._lock:
                self._threads.discard(me)
                self._busy.discard(me)
                if me in self._ending:  # it ended otherwise (its call was given up on)
                    self._ending.discard(me)
                    self._retired_one.notify_all()

    def _serve(self, me: threading.Thread) -> None:
        jobs = self._jobs
        lock = self._lock
        busy = self._busy
        while True:
            try:
                job = jobs.get(timeout=IDLE_SECONDS)
            except Empty:
                with lock:
                    if self._idle > self._queued and (self._live > _KEEP_IDLE
                                                      or self._closed):
                        self._idle -= 1
                        self._live -= 1
                        return
                continue
            if not job:
                with lock:
                    if job is None:  # close(): this place is given up
                        self._live -= 1
                        self._idle -= 1
                    else:  # retire(): given up already
                        self._retiring -= 1
                        self._retired.append(me)
                        self._retired_one.notify_all()
                return
            lock.acquire()
            self._queued -= 1
            self._taken += 1
            self._idle -= 1
            busy.add(me)
            lock.release()
            try:
                result = job[0](*job[1])
            except BaseException:  # jobs record their own errors; this is a bug in one
                log.exception("job %r failed in %s", job[0], threading.current_thread().name)
                result = None
            if result is ABANDONED:
                with lock:
                    self._abandoned -= 1
                return
            # Idle threads keep nothing of the job they ran (its step's view and outputs,
            # through the call's outcome) until their next one, maybe minutes later.
            job = result = None
            lock.acquire()
            busy.discard(me)
            if self._closed and self._jobs.empty():  # a closed pool keeps no idle thread
                self._live -= 1
                lock.release()
                return
            if self._ending and me in self._ending:  # ``retire`` asked it to end
                self._ending.discard(me)
                self._live -= 1
                self._retired.append(me)
                self._retired_one.notify_all()
                lock.release()
                return
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
