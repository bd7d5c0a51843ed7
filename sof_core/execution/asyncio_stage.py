"""The asyncio executor's wide stages: async skills awaited together on the run thread's
event loop, each under its own deadline, sync ones on the engine's step pool. Its own module
so that asyncio is imported only by runs that need it (``sof_core.execution.executors`` is
loaded by every engine).

An async skill that blocks the loop (``time.sleep`` inside ``async def``) cannot be
interrupted, and every skill on that loop waits while it blocks. At its deadline it is
blamed, and the stage does not wait for it: the runner thread stuck in it is given up on
like one stuck in a hung sync skill, and a new runner goes on with the stage. The async
steps that had not started yet run on the new runner's own loop (so two blocking skills
under 1 s limits cost about 2 s, not their whole sleep); those already suspended on the
blocked loop, and the pool's, come back to the new runner as they end.
"""

from __future__ import annotations

import _thread
import asyncio
import functools
from collections.abc import Sequence

from sof_core.execution.aio import AsyncCall, reap_tasks, thread_loop, watch
from sof_core.execution.deadlines import Slot, clock
from sof_core.execution.fanout import FanOut
from sof_core.execution.run import LOCK_RETRY, RunContext
from sof_core.execution.step import Outcome, aexecute_step
from sof_core.execution.watchdog import watchdog
from sof_core.graph.compile import Step


def run_wide_stage(run: RunContext, steps: Sequence[Step]) -> list[Outcome] | None:
    """Every outcome of the stage in plan order; None if this runner was replaced (the
    runner that replaced it collects the stage) or the run ended first."""
    slot = run.runner_slot()
    if slot is not None and run.slot is not slot:
        return None
    fan = FanOut(steps)
    awaited: list[tuple[int, Step]] = []
    for index, step in enumerate(steps):
        if step.spec.is_async and step.isolation != "process":
            awaited.append((index, step))
        else:
            run.submit([step], fan.put, first_index=index)
    if slot is not None:
        run.track_fanout(fan)
    _LoopStage(run, slot, fan, awaited).await_here()
    if slot is not None and run.slot is not slot:  # handed over while its loop was blocked
        return None
    return fan.wait()


class _Resume:
    """What a new runner does with a stage handed over to it: await the async steps that
    never started on the blocked loop, on its own loop, then collect every outcome."""

    __slots__ = ("fan", "rest", "run")

    def __init__(self, run: RunContext, fan: FanOut, rest: list[tuple[int, Step]]) -> None:
        self.run = run
        self.fan = fan
        self.rest = rest

    def wait(self) -> list[Outcome] | None:
        run = self.run
        slot = run.runner_slot()  # the new runner's, set before the walk resumes
        if self.rest:
            _LoopStage(run, slot, self.fan, self.rest).await_here()
            if slot is not None and run.slot is not slot:  # handed over again
                return None
        return self.fan.wait()


class _LoopStage:
    """The async steps of one wide stage awaited on one runner's loop."""

    __slots__ = ("awaited", "fan", "given_up", "lock", "moved", "run", "slot", "started")

    def __init__(self, run: RunContext, slot: Slot | None, fan: FanOut,
                 awaited: list[tuple[int, Step]]) -> None:
        self.run = run
        #: the runner's slot; None when no watchdog watches the run (no timeouts at all)
        self.slot = slot
        self.fan = fan
        self.awaited = awaited
        self.lock = _thread.allocate_lock()
        #: positions of the steps that started on this loop
        self.started: set[int] = set()
        #: the stage went to a new runner: steps not yet started here never start here
        self.moved = False
        #: the position of the step given up on while it blocked this loop
        self.given_up: int | None = None

    def await_here(self) -> None:
        if not self.awaited:
            return
        loop = thread_loop()
        try:
            loop.run_until_complete(self._gather(loop))
        finally:
            reap_tasks(loop)

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        await asyncio.gather(*(self._one(index, step, loop) for index, step in self.awaited))

    async def _one(self, index: int, step: Step, loop: asyncio.AbstractEventLoop) -> None:
        with self.lock:
            if self.moved:  # runs on the new runner's loop instead
                return
            self.started.add(index)
        run = self.run
        if run.quarantined and step.name in run.quarantined:
            self.fan.put(index, run.quarantine_outcome(step))
            return
        now = clock()
        deadline = now + step.timeout if step.timeout is not None else float("inf")
        call = AsyncCall(step, loop, now, deadline, total=run.total_deadline)
        on_blame = None if self.slot is None else functools.partial(self._blamed, index)
        entry = watch(call, on_blame)
        try:
            outcome = await aexecute_step(step, run.uif, run.config.retry_backoff, call,
                                          run._before)
        finally:
            if entry is not None:
                watchdog().cancel(entry)
        with self.lock:
            late = self.given_up == index
        if late:  # its outcome was recorded when it was given up on
            run.hung.returned(step.name)
            return
        self.fan.put(index, outcome)

    def _blamed(self, index: int, call: AsyncCall, now: float) -> None:
        """The watchdog blamed ``call`` for blocking this loop past its deadline: give up on
        the runner stuck in it, and hand the stage to a new runner (see the module
        docstring). Called in the watchdog's thread."""
        run, slot = self.run, self.slot
        assert slot is not None
        if not run.lock.acquire(blocking=False):  # a thread is recording: a moment later
            watchdog().arm(now + LOCK_RETRY, functools.partial(self._blamed, index, call))
            return
        try:
            if run.finished or run.slot is not slot or call.done:
                return
            with self.lock:
                self.moved = True
                self.given_up = index
                rest = [(i, s) for i, s in self.awaited if i not in self.started]
            outcome = run.give_up_call(slot, call, now)
            self.fan.put(index, outcome)
            run.hand_over(slot, _Resume(run, self.fan, rest))
        finally:
            run.lock.release()
