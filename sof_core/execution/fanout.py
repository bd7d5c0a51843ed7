"""Steps sent to the engine's step pool, and wide stages waiting for them.

A ``PoolCall`` is one step run by a pool thread. Its deadline starts when a thread starts
it, not when it was queued: a step that waited for a free thread is not timed out for
the wait, and one that never started by the end of the run is reported as such. Each call
arms its own deadline with the watchdog; a call given up on frees its thread's place in the
pool at once and counts as hung until it returns.

A ``FanOut`` is one wide stage of a sync run: the runner's thread runs its first step, the
pool the others, and the runner (or, if its own step hung, the runner that replaces it)
collects every outcome in plan order.
"""

from __future__ import annotations

import _thread
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sof_core.execution.deadlines import Slot, clock, set_thread_slot
from sof_core.execution.step import Outcome, execute_step
from sof_core.execution.threads import ABANDONED
from sof_core.execution.watchdog import Entry, watchdog

if TYPE_CHECKING:
    from sof_core.execution.hung import HungCalls
    from sof_core.execution.resources import EngineThreads
    from sof_core.execution.threads import DaemonPool
    from sof_core.graph.compile import Step
    from sof_core.uif import UIF


class RunContext(Protocol):
    """What a pool call needs of its run (``sof_core.execution.run.RunContext``); a
    protocol, so this module does not import the run that imports it."""

    @property
    def lock(self) -> _thread.LockType: ...
    @property
    def uif(self) -> UIF: ...
    @property
    def threads(self) -> EngineThreads: ...
    @property
    def hung(self) -> HungCalls: ...
    @property
    def quarantined(self) -> set[str]: ...
    @property
    def _backoff(self) -> float: ...
    @property
    def _before(self) -> Callable[[Step, UIF], None] | None: ...
    @property
    def watches_calls(self) -> bool: ...
    @property
    def total_deadline(self) -> float: ...

    def look_again_at(self, slot: Slot, step: Step, now: float) -> float | None: ...

    def quarantine_outcome(self, step: Step) -> Outcome: ...

    def give_up(self, slot: Slot, step: Step, now: float, pool: DaemonPool,
                call: Any = None) -> Outcome: ...

#: A PoolCall's states.
QUEUED, RUNNING, DONE, GIVEN_UP, NOT_STARTED = range(5)
#: Where an outcome goes: (index in the stage, outcome); called outside the run's lock.
Deliver = Callable[[int, Outcome], None]


class PoolCall:
    """One step for a pool thread (a callable job; see the module docstring)."""

    __slots__ = ("deliver", "entry", "index", "run", "slot", "stage", "state", "step")

    def __init__(self, run: RunContext, step: Step, stage: int, index: int,
                 deliver: Deliver) -> None:
        self.run = run
        self.step = step
        self.stage = stage
        self.index = index
        self.deliver = deliver
        self.state = QUEUED
        self.slot: Slot | None = None
        self.entry: Entry | None = None

    def __call__(self) -> object:
        """Run the step in this pool thread (the pool calls it)."""
        run, step = self.run, self.step
        lock = run.lock
        with lock:
            if self.state != QUEUED:  # the run ended before a thread was free
                return None
            self.state = RUNNING
            slot = self.slot = Slot(None, run.total_deadline)
            now = slot.started = clock()
            slot.deadline = now + step.timeout if step.timeout is not None else float("inf")
            slot.stage = self.stage
            slot.step = step
        set_thread_slot(slot)
        try:
            if run.quarantined and step.name in run.quarantined:
                outcome = run.quarantine_outcome(step)
            else:
                # A run on an event loop watches its pool calls through its one deadline
                # (``arun._RunWatch``); other runs' calls arm their own.
                if slot.deadline != float("inf") and not run.watches_calls:
                    self.entry = watchdog().arm(slot.deadline, self._expired)
                    slot.rearm = self._rearm
                outcome = execute_step(step, run.uif, run._backoff, run._before, slot)
        finally:
            set_thread_slot(None)
            if self.entry is not None:
                watchdog().cancel(self.entry)
        with lock:
            if self.state == RUNNING:
                self.state = DONE
                slot.step = None
                abandoned = None
            else:  # given up on (its timeout, or the run's end) while it ran
                abandoned = slot.abandoned
        if abandoned is None:
            self.deliver(self.index, outcome)
            return None
        if abandoned:
            run.hung.returned(step.name)
            return ABANDONED  # its place in the pool was given to another thread
        return None

    def _rearm(self, deadline: float) -> None:
        """The step's deadline moved (its ``sof_before_skill`` observers were told first):
        look at it then, instead of at the deadline armed before (that entry would only
        find it not yet due and arm another one for the same moment)."""
        dog = watchdog()
        if self.entry is not None:
            dog.cancel(self.entry)
        self.entry = dog.arm(deadline, self._expired)

    def _expired(self, now: float) -> None:
        """The watchdog's callback at the call's deadline."""
        run = self.run
        if not run.lock.acquire(blocking=False):
            self.entry = watchdog().arm(now + 0.001, self._expired)
            return
        try:
            slot = self.slot
            if self.state != RUNNING or slot is None:
                return
            if now < slot.deadline:  # moved later while its observers were told
                if slot.deadline != float("inf"):
                    self.entry = watchdog().arm(slot.deadline, self._expired)
                return
            later = run.look_again_at(slot, self.step, now)
            if later is not None:
                self.entry = watchdog().arm(later, self._expired)
                return
            self.state = GIVEN_UP
            outcome = run.give_up(slot, self.step, now, run.threads.steps())
        finally:
            run.lock.release()
        self.deliver(self.index, outcome)

    def end_with_run(self, now: float) -> int:
        """The run is over (total timeout, under the run's lock): a queued call never
        starts, a running one is given up on. Returns the state it was in."""
        state = self.state
        if state == QUEUED:
            self.state = NOT_STARTED
        elif state == RUNNING and self.slot is not None:
            self.state = GIVEN_UP
            self.run.give_up(self.slot, self.step, now, self.run.threads.steps())
        return state


class FanOut:
    """The outcomes of one wide stage, collected in plan order (see the module docstring)."""

    __slots__ = ("_latch", "_lock", "aborted", "outcomes", "pending", "steps")

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = steps
        self.outcomes: list[Outcome | None] = [None] * len(steps)
        self.pending = len(steps)
        self.aborted = False
        self._lock = _thread.allocate_lock()
        self._latch = _thread.allocate_lock()
        self._latch.acquire()

    def put(self, index: int, outcome: Outcome) -> None:
        """Step ``index`` is over (first outcome wins)."""
        with self._lock:
            if self.outcomes[index] is not None or self.aborted:
                return
            self.outcomes[index] = outcome
            self.pending -= 1
            if self.pending:
                return
        self._latch.release()

    def abort(self) -> None:
        """The run is over: wake whoever waits, with no outcomes."""
        with self._lock:
            if self.aborted or not self.pending:
                return
            self.aborted = True
        self._latch.release()

    def wait(self) -> list[Outcome] | None:
        """Every outcome in plan order, or None if the run ended first."""
        self._latch.acquire()
        self._latch.release()  # a second waiter (a resuming runner) passes too
        if self.aborted:
            return None
        return [outcome for outcome in self.outcomes if outcome is not None]
