"""The pool threads an event loop's runs used, ended when that loop shuts down.

Runs on a loop (``aexecute_plan``) send their sync skills, and observers that must be
bounded, to the engine's pools. Those threads outlive the runs on purpose (the next run
would pay thread starts), but not the loop: once ``asyncio.run`` (or any host calling
``loop.shutdown_asyncgens()``) shuts the loop down, the threads its runs used are ended
(idle ones at once, busy ones when their job returns) and joined, up to ``SHUTDOWN_WAIT``
seconds in all, so nothing SOF started for that loop is left behind. A thread running a
call given up on (a hung skill) is not waited for: it ends when the call returns.

asyncio has no "loop closing" callback; it does close every async generator still open
at shutdown. So the first run on a loop opens a small async generator whose ``finally``
ends the threads. It is held here until then: the loop keeps a weak reference only, and
the generator holds the loop (its finalizer), so a loop closed without
``shutdown_asyncgens`` is let go (and its threads ended) when the next loop starts runs.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # asyncio itself is imported by the runs on a loop, not by every engine
    import asyncio

#: How long, in all, a loop's shutdown waits for the idle threads its runs used to end.
SHUTDOWN_WAIT = 0.25


class EngineThreads(Protocol):
    """What this module needs of an engine's threads (``resources.EngineThreads``)."""

    def release_idle(self, wait: float = 0.0) -> None: ...


class _LoopThreads:
    """The engines' threads a loop's runs used, and the generator that ends them."""

    __slots__ = ("closer", "last", "loop", "served")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.served: list[EngineThreads] = []
        self.last: EngineThreads | None = None
        self.closer: AsyncGenerator[None, None] | None = None

    def release(self) -> None:
        """End the idle threads of every pool this loop's runs used."""
        served, self.served, self.last = self.served, [], None
        deadline = time.monotonic() + SHUTDOWN_WAIT  # in all, however many engines
        for threads in served:
            threads.release_idle(max(0.0, deadline - time.monotonic()))


_loops: dict[asyncio.AbstractEventLoop, _LoopThreads] = {}
_lock = threading.Lock()
#: The loop asked about last (a burst of runs asks for the same loop again and again).
_last: _LoopThreads | None = None


def used_on_loop(loop: asyncio.AbstractEventLoop, threads: EngineThreads) -> None:
    """Note that a run on ``loop`` (the running one) used a pool of ``threads``."""
    record = _last
    if record is None or record.loop is not loop:
        record = _record(loop)
    if record.last is not threads:
        if threads not in record.served:
            record.served.append(threads)
        record.last = threads


def _record(loop: asyncio.AbstractEventLoop) -> _LoopThreads:
    global _last
    with _lock:
        record = _loops.get(loop)
        if record is None:
            closed = [known for known in _loops if known.is_closed()]
            for known in closed:  # shut down without ``shutdown_asyncgens``
                _loops.pop(known).release()
            record = _loops[loop] = _LoopThreads(loop)
            record.closer = _closer(record)
            _open(record.closer)
        _last = record
    return record


async def _closer(record: _LoopThreads) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:  # the loop shuts its async generators down
        global _last
        with _lock:
            _loops.pop(record.loop, None)
            if _last is record:
                _last = None
        record.release()


def _open(closer: AsyncGenerator[None, None]) -> None:
    """Run ``closer`` to its ``yield`` here, on the running loop: its first step is what
    registers it with the loop for shutdown (``sys.set_asyncgen_hooks``)."""
    with contextlib.suppress(StopIteration):  # what its ``yield`` ends the step with
        closer.asend(None).send(None)


def _forget_after_fork() -> None:
    """A forked child has none of its parent's loops running, nor their threads."""
    global _last, _lock
    _loops.clear()
    _last = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
