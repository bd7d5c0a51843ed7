"""A run on the caller's event loop (``aexecute_plan``): no thread hosts it.

The walk is a coroutine of the caller's task. Async skills are awaited right there, on the
host's loop, so they can share the host's clients; each is cancelled for real at its
deadline (``sof_core.execution.aio``). Sync skills, and isolated ones, go to the engine's
step pool, and the walk awaits their outcome. The run's total timeout is one watchdog
deadline that ends the run on its loop.

A skill that blocks the loop (``time.sleep`` inside ``async def``) holds the host's loop:
nothing can run meanwhile, this run included. It is blamed at its deadline, and the time
it held the loop is not counted against the other skills waiting on it.
"""

from __future__ import annotations

import _thread
import asyncio
import weakref
from typing import TYPE_CHECKING

from sof_core.execution.aio import AsyncCall, cancel_soon, watch
from sof_core.execution.deadlines import clock
from sof_core.execution.fanout import PoolCall
from sof_core.execution.step import Outcome, aexecute_step
from sof_core.execution.watchdog import watchdog

if TYPE_CHECKING:
    from sof_core.execution.run import RunContext
    from sof_core.graph.compile import Step


async def drive_async(run: RunContext, total_deadline: float) -> None:
    """Walk ``run`` on the running loop until done, stopped, or out of time."""
    loop = asyncio.get_running_loop()
    run.frozen.freeze_uif(run.uif.__dict__, run.compiled.read_only_order)
    run.total_deadline = total_deadline
    inflight: list[AsyncCall] = []
    entry = None
    if total_deadline != float("inf"):
        def total(now: float) -> None:  # the watchdog's thread: end the run on its loop
            try:  # noqa: SIM105 - hot path: suppress() costs a context manager per call
                loop.call_soon_threadsafe(_end_at_total, run, inflight, now)
            except RuntimeError:  # the loop is closed: nothing is waiting any more
                pass

        entry = watchdog().arm(total_deadline, total)
    try:
        for index, stage in enumerate(run.step_stages):
            if run.stop_status is not None or run.finished:
                break
            run.stage_index = index
            steps, skipped = run._ready_steps(stage)
            if skipped:
                run._record_stage(None, (), index, skipped)
            if not steps:
                continue
            if len(steps) == 1:
                outcomes = [await _one(run, steps[0], index, loop, inflight)]
            else:
                outcomes = list(await asyncio.gather(
                    *(_one(run, step, index, loop, inflight) for step in steps)
                ))
            if run.finished:  # the total timeout recorded this stage already
                break
            run._record_stage(None, outcomes, index, ())
        else:
            run.stage_index = len(run.step_stages)
    except asyncio.CancelledError:
        with run.lock:  # the caller gave up on the run: it records nothing more
            if not run.finished:
                run.errors.append("run cancelled by its caller")
                run.failed = True
                run.stop_status = run.stop_status or "failure"
                for call in run.calls:
                    call.end_with_run(clock())
                run._end()
        raise
    except BaseException as exc:
        run._crashed(exc)
    finally:
        if entry is not None:
            watchdog().cancel(entry)
        with run.lock:
            run.finished = True
            run.finish()
        if run._notes:
            run._flush()


async def _one(run: RunContext, step: Step, stage: int, loop: asyncio.AbstractEventLoop,
               inflight: list[AsyncCall]) -> Outcome:
    """One step of the run: awaited here if async, else run by a pool thread."""
    if run.quarantined and step.name in run.quarantined:
        return Outcome(step, None, None, None, None, run.hung.error(step.name), 0.0, 0)
    if step.spec.is_async and step.isolation != "process":
        now = clock()
        deadline = now + step.timeout if step.timeout is not None else float("inf")
        call = AsyncCall(step, loop, now, deadline)
        inflight.append(call)
        entry = watch(call)
        try:
            return await aexecute_step(step, run.uif, run._backoff, call, run._before)
        finally:
            if entry is not None:
                watchdog().cancel(entry)
            inflight.remove(call)
    future: asyncio.Future[Outcome] = loop.create_future()
    inbox = _inbox(loop)

    def deliver(index: int, outcome: Outcome) -> None:  # a pool thread, or the watchdog's
        inbox.put(future, outcome)

    run.submit([step], deliver)
    return await future


class _Inbox:
    """Outcomes from pool threads for one event loop, handed over in batches: the loop is
    woken (``call_soon_threadsafe``, a pipe write) once per batch, not once per outcome, so
    a thousand concurrent runs do not pay a thousand wake-ups while the loop is busy."""

    __slots__ = ("__weakref__", "_items", "_lock", "_loop", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # weakly: the inbox is the value of its loop's entry in a WeakKeyDictionary
        self._loop = weakref.ref(loop)
        self._items: list[tuple[asyncio.Future[Outcome], Outcome]] = []
        self._lock = _thread.allocate_lock()
        self._scheduled = False

    def put(self, future: asyncio.Future[Outcome], outcome: Outcome) -> None:
        with self._lock:
            self._items.append((future, outcome))
            if self._scheduled:
                return
            self._scheduled = True
        loop = self._loop()
        try:
            if loop is None:
                raise RuntimeError("the loop is gone")
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody waits for it
            with self._lock:
                self._items.clear()
                self._scheduled = False

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
            self._scheduled = False
        for future, outcome in items:
            if not future.done():
                future.set_result(outcome)


_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox] = (
    weakref.WeakKeyDictionary()
)


def _inbox(loop: asyncio.AbstractEventLoop) -> _Inbox:
    inbox = _inboxes.get(loop)
    if inbox is None:
        inbox = _inboxes.setdefault(loop, _Inbox(loop))
    return inbox


def _end_at_total(run: RunContext, inflight: list[AsyncCall], now: float) -> None:
    """On the run's loop, at its total deadline: record the run as timed out, give up on
    its pool calls and cancel its async skills (their outcomes are not recorded)."""
    with run.lock:
        if run.finished:
            return
        pending: list[PoolCall] = list(run.calls)
        run._abandon_all(now)
    for call in inflight:
        if not call.done:
            call.verdict = f"run exceeded total_timeout of {run.config.total_timeout}s"
            cancel_soon(call)
    for pool_call in pending:  # wake the walk: the stage's awaits end now
        pool_call.deliver(pool_call.index, Outcome(pool_call.step, None, None, None, None,
                                                   None, 0.0, 0))
