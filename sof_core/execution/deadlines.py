"""What a running skill may ask about its time: ``sof_core.current_deadline()``.

Set around each skill call at no per-call cost: a thread that runs steps holds a ``Slot``
(the step in progress and its deadline) that the run writes anyway for the watchdog, and
``current_deadline`` reads it. Async steps on a shared event loop get their deadline in a
context variable instead (each step's task has its own context).
"""

from __future__ import annotations

import math
import threading
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import sof_core.uif as _uif

if TYPE_CHECKING:
    from sof_core.graph.compile import Step

#: The clock of every deadline: ``time.monotonic()``, or ``perf_counter`` where that is the
#: same clock (Linux): then the one reading per step serves as start time and deadline base.
clock = time.monotonic
if time.get_clock_info("perf_counter").implementation == (
    time.get_clock_info("monotonic").implementation
):
    clock = time.perf_counter


class Slot:
    """What one thread of a run is doing: the step in progress and when it must end.

    Written by the thread that runs the step, read by the watchdog without a lock, so the
    writer stores ``deadline`` and ``stage`` before ``step``, and the reader reads ``step``
    first: a reader that sees a step never sees an older deadline than that step's.
    ``step`` is None between steps.
    """

    __slots__ = ("abandoned", "call", "deadline", "fanout", "owner", "rearm", "retried",
                 "stage", "started", "step", "total", "waiting")

    def __init__(self, owner: object = None, total: float = math.inf) -> None:
        #: the run whose runner holds this slot (None for a pool call's)
        self.owner = owner
        self.step: Step | None = None
        self.deadline = math.inf
        #: the run's total deadline: a skill's time also ends there (``current_deadline``)
        self.total = total
        self.started = 0.0
        self.stage = 0
        #: (step, attempts) once the step has been retried (the timeout reports attempts)
        self.retried: tuple[Step, int] | None = None
        #: the fan-out of a wide stage the thread is part of (a runner running one step)
        self.fanout: Any = None
        #: the watchdog gave up on this thread's call (it counts as hung until it returns)
        self.abandoned = False
        #: the async step's ``AsyncCall`` while one runs on this thread's loop
        self.call: Any = None
        #: arms the watcher of a pool call's slot at a new deadline (``PoolCall``), or None
        self.rearm: Any = None
        #: the step has not started yet: it waits for an isolation worker process (its time
        #: starts when one takes it), so a run ending meanwhile reports it never started
        self.waiting = False

    def attempts(self, step: Step) -> int:
        """The attempts ``step`` has made so far in this slot (its retries counted)."""
        retried = self.retried
        return retried[1] if retried is not None and retried[0] is step else 1


def restart_slot(slot: Slot, timeout: float, cap: float = math.inf) -> float:
    """Start the time of ``slot``'s step afresh now, ``timeout`` seconds (``cap`` at most),
    and tell whoever watches the slot: its run (a runner's slot, owned by the run) or the
    pool call's own watch. For a step whose time did not start when the step did (its
    ``sof_before_skill`` observers ran first; an isolated step waited for a worker)."""
    now = slot.started = clock()
    deadline = slot.deadline = min(now + timeout, cap)
    watch_from = getattr(slot.owner, "watch_from", None)
    if watch_from is not None:
        watch_from(deadline)
    elif slot.rearm is not None:
        slot.rearm(deadline)
    return deadline


_local = threading.local()
_task_deadline: ContextVar[float | None] = ContextVar("sof_task_deadline", default=None)


def set_thread_slot(slot: Slot | None) -> None:
    """The slot of the step this thread runs (None when it runs none)."""
    _local.slot = slot


def thread_slot() -> Slot | None:
    slot: Slot | None = getattr(_local, "slot", None)
    return slot


def current_deadline() -> float | None:
    """The running skill's deadline as a ``time.monotonic()`` value, or None.

    The earlier of the skill's own deadline and its run's ``total_timeout``: the run ends
    there whatever time the skill had left. None outside a skill, and for a skill that runs
    without any time limit. A skill passes what is left
    (``current_deadline() - time.monotonic()``) to the clients it calls, so a slow backend
    fails inside the skill's time rather than being abandoned with it.
    """
    value = _task_deadline.get()
    if value is not None:
        return value
    slot: Slot | None = getattr(_local, "slot", None)
    if slot is None or slot.step is None:
        return None
    deadline = min(slot.deadline, slot.total)
    return None if deadline == math.inf else deadline


# A view's ``remaining_time()`` reads the deadline through the UIF module (see there).
_uif.read_deadline = current_deadline
