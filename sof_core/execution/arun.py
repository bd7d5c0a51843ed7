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
import functools
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sof_core.errors import SOFError, exceeded_total_timeout
from sof_core.execution.aio import (
    CANCEL,
    CANCEL_GRACE,
    RECHECK,
    AsyncCall,
    _Guarded,
    cancel_soon,
    cancelled_by_caller,
    loop_state,
    overrun,
    stubborn_due,
    undo_cancels,
)
from sof_core.execution.deadlines import _task_deadline, clock
from sof_core.execution.fanout import RUNNING, PoolCall
from sof_core.execution.loop_shutdown import used_on_loop
from sof_core.execution.observers import anotify
from sof_core.execution.report import SkillResult
from sof_core.execution.step import (
    Outcome,
    _perf,
    aexecute_step,
    check_returned,
    merge_writes,
)
from sof_core.execution.watchdog import Entry, watchdog
from sof_core.skills.views import skill_view

if TYPE_CHECKING:
    from sof_core.execution.run import RunContext
    from sof_core.graph.compile import Step
    from sof_core.skills.views import ScopedData
    from sof_core.uif import UIF

_INF = float("inf")


async def drive_async(run: RunContext, total_deadline: float) -> None:
    """Walk ``run`` on the running loop until done, stopped, or out of time."""
    loop = asyncio.get_running_loop()
    run.defer_notes = True  # observers are awaited here (``_tell``), never waited for
    run.frozen.freeze_uif(run.uif.__dict__, run.compiled.read_only_order)
    run.total_deadline = total_deadline
    inflight: list[AsyncCall] = []
    # One watchdog deadline for the whole run (not one per async step): no step can be due
    # before now + the shortest timeout, so the run is looked at then, or at its total
    # deadline; the look re-arms at the next due time (see ``_RunWatch``).
    first = min(total_deadline, clock() + run.min_timeout)
    watch_run = _RunWatch(run, loop, inflight) if first != _INF else None
    if watch_run is not None:
        run.watches_calls = True
        watch_run.arm(first)
    # Single async steps are awaited in this task, on this loop: looked up once per run.
    task = asyncio.current_task()
    state = loop_state(loop)
    try:
        stages = run.step_stages
        for index in range(len(stages)):  # not enumerate: fewer objects for a waiting run
            if run.stop_status is not None or run.finished:
                break
            run.stage_index = index
            stage = stages[index]
            steps, skipped = run._ready_steps(stage)
            if skipped:
                run._record_stage(None, (), index, skipped)
                if run._notes:
                    await _tell(run)
            if not steps:
                continue
            if len(steps) == 1:
                step = steps[0]
                if (step.spec.is_async and not step.retries and step.isolation != "process"
                        and not (run.quarantined and step.name in run.quarantined)):
                    # The usual async step, awaited in this frame and recorded inline
                    # (``_one`` + ``_record_stage``'s success path without the Outcome).
                    now = clock()
                    timeout = step.timeout  # (``_deadline``, inline: once per step)
                    acall = AsyncCall(step, loop, now,
                                      now + timeout if timeout is not None and run._before
                                      is None else _INF, state, total_deadline)
                    inflight.append(acall)
                    try:
                        ran = await _await_once(run, step, acall, task)
                    finally:
                        inflight.remove(acall)
                    if run.finished:  # the total timeout recorded this stage already
                        break
                    _record_one(run, step, index, ran)
                    if run._notes:
                        await _tell(run)
                    # Let the step's view go now, not when the next stage is over: a run
                    # waiting on its next step holds only what that step needs, which is
                    # what the garbage collector walks again and again in a burst of runs.
                    del ran
                    continue
                outcomes = [await _one(run, step, index, loop, inflight)]
            else:
                outcomes = await _gather(run, steps, index, loop, inflight)
            if run.finished:  # the total timeout recorded this stage already
                break
            run._record_stage(None, outcomes, index, ())
            del outcomes  # (the same as ``ran`` above)
            if run._notes:
                await _tell(run)
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
        if watch_run is not None:
            watch_run.stop()
        with run.lock:
            run.finished = True
            run.finish()
        if run._notes:
            await _tell(run)


def _deadline(run: RunContext, step: Step, now: float) -> float:
    """An async step's deadline if it starts now; none yet if ``sof_before_skill`` has
    observers: it begins once they were told (``_tell_then_start``)."""
    if run._before is not None or step.timeout is None:
        return _INF
    return now + step.timeout


async def _tell(run: RunContext) -> None:
    """Send the run's recorded notifications, awaited on this loop: a handed-off observer
    holds this run (at most ``observer_timeout``), never the loop (``observers.anotify``)."""
    with run.lock:
        notes, run._notes = run._notes, []
    for hook, kwargs in notes:
        await anotify(run.plugins, run.threads, run.config.observer_timeout, hook, **kwargs)


async def _tell_then_start(run: RunContext, call: AsyncCall, step: Step, view: UIF) -> None:
    """``sof_before_skill`` for an async step, awaited on this loop (see ``_tell``); then
    the step's deadline starts, if it has none yet (``_deadline``: a retry's later attempts
    share the first one's). If the run ended meanwhile, the skill is not started: the run
    records nothing of it."""
    await anotify(run.plugins, run.threads, run.config.observer_timeout, "sof_before_skill",
                  skill=step.spec, uif=view)
    if run.finished or call.verdict is not None:
        raise call.timeout_error()
    if call.deadline == _INF:
        call.begin(clock(), run.total_deadline)


async def _gather(run: RunContext, steps: Sequence[Step], stage: int,
                  loop: asyncio.AbstractEventLoop, inflight: list[AsyncCall]) -> list[Outcome]:
    """A wide stage's steps, together. A function of its own: the generator expression
    would make every variable it reads a cell of the walk's frame, in every run."""
    return list(await asyncio.gather(*(_one(run, step, stage, loop, inflight)
                                       for step in steps)))


async def _one(run: RunContext, step: Step, stage: int, loop: asyncio.AbstractEventLoop,
               inflight: list[AsyncCall]) -> Outcome:
    """One step of the run: awaited here if async, else run by a pool thread."""
    if run.quarantined and step.name in run.quarantined:
        return run.quarantine_outcome(step)
    if step.spec.is_async and step.isolation != "process":
        now = clock()
        call = AsyncCall(step, loop, now, _deadline(run, step, now), total=run.total_deadline)
        inflight.append(call)  # the run's watch looks at its deadline (``_RunWatch``)
        try:
            if step.retries:
                before = (None if run._before is None
                          else functools.partial(_tell_then_start, run, call))
                return await aexecute_step(step, run.uif, run._backoff, call, before)
            result, view, data, error, duration = await _await_once(run, step, call)
            return Outcome(step, result, view, data, data, error, duration, 1)
        finally:
            inflight.remove(call)
    future: asyncio.Future[Outcome] = loop.create_future()
    inbox = _inbox(loop)

    def deliver(index: int, outcome: Outcome) -> None:  # a pool thread, or the watchdog's
        inbox.put(future, outcome)

    # Not eager: a burst of runs on the loop must not start a thread per sync skill (the
    # pool grows only when its queue stands still; threads.py, "Growth").
    run.submit([step], deliver, eager=False)
    used_on_loop(loop, run.threads)  # its idle threads end when the loop shuts down
    return await future


#: What ``_await_once`` returns: (result, view, scope, error, duration), an ``Outcome``'s
#: fields for one attempt.
_Ran = tuple["UIF | None", "UIF | None", "ScopedData | None", "BaseException | None", float]


async def _await_once(run: RunContext, step: Step, call: AsyncCall,
                      task: asyncio.Task[object] | None = None) -> _Ran:
    """``aexecute_step`` + ``await_step`` for a step with no retries, in one coroutine
    frame (the per-step cost of a run on the loop): the same view, the same deadline
    handling, the same outcomes. ``task``: the current task, if the caller knows it."""
    started = _perf()
    view, data = skill_view(run.uif, step)
    try:
        if run._before is not None:
            await _tell_then_start(run, call, step, view)
            started = _perf()  # the skill's time, not its observers'
        coro = step.instance.execute(view)
        if task is None:
            task = asyncio.current_task()
        call.task = task
        call.done = False
        token = _task_deadline.set(call.limit)
        try:
            returned = await _Guarded(coro, call)
            if call.verdict is not None:  # it finished, but only after the watchdog ended it
                raise call.timeout_error()
        except asyncio.CancelledError:
            if call.verdict is None:
                raise
            if undo_cancels(task, call) > 0:
                raise  # cancelled by its caller as well: that one wins
            raise call.timeout_error() from None
        except Exception as exc:
            if call.verdict is None:
                raise
            raise call.timeout_error() from exc  # the cancellation turned into another error
        finally:
            call.done = True
            _task_deadline.reset(token)
        result = check_returned(step, view, returned)
        return result, view, data, None, _perf() - started
    except asyncio.CancelledError as exc:
        if cancelled_by_caller():
            raise
        return None, None, None, exc, _perf() - started  # the skill's own
    except BaseException as exc:  # the skill's error (KeyboardInterrupt: raised by the run)
        return None, None, None, exc, _perf() - started


def _record_one(run: RunContext, step: Step, index: int, ran: _Ran) -> None:
    """``_record_stage`` for one step's attempt: merged and recorded (success inline)."""
    result, view, data, error, duration = ran
    if error is None:
        try:
            merge_writes(run.uif, step, result, view, data, data, duration, run.frozen)
        except SOFError as exc:
            error = exc
    if error is None:
        record = SkillResult(step.name, "success", duration, 1, index, None, None, step.plugin)
        run.results.append(record)
        if run._after_skill:
            run._notes.append(("sof_after_skill", {"skill": step.spec, "result": record}))
    else:
        run._apply(Outcome(step, None, None, None, None, error, duration, 1), index)
    run.calls.clear()


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


#: The last loop's inbox (see ``aio.loop_state``: the same loop, asked for again and again).
_last_inbox: _Inbox | None = None


def _inbox(loop: asyncio.AbstractEventLoop) -> _Inbox:
    global _last_inbox
    last = _last_inbox
    if last is not None and last._loop() is loop:
        return last
    inbox = _inboxes.get(loop)
    if inbox is None:
        inbox = _inboxes.setdefault(loop, _Inbox(loop))
    _last_inbox = inbox
    return inbox


def _end_at_total(run: RunContext, inflight: list[AsyncCall], now: float) -> None:
    """On the run's loop, at its total deadline: record the run as timed out, give up on
    its pool calls and cancel its async skills (their outcomes are not recorded)."""
    with run.lock:
        if run.finished:
            return
        pending: list[PoolCall] = list(run.calls)
        run._abandon_all(now, {call.step.name: call.started for call in inflight
                               if not call.done})
    for call in inflight:
        if not call.done:
            call.verdict = exceeded_total_timeout(run.config.total_timeout)
            call.verdict_at = now
            cancel_soon(call)
    for pool_call in pending:  # wake the walk: the stage's awaits end now
        pool_call.deliver(pool_call.index, Outcome(pool_call.step, None, None, None, None,
                                                   None, 0.0, 0))


class _RunWatch:
    """The run's one watchdog deadline: its total timeout, its async steps' deadlines and
    those of its sync steps running in pool threads.

    A step's deadline is never earlier than its start plus the shortest timeout, so one
    entry per run does: armed at the run's start for ``start + min_timeout`` (or the total
    deadline, if sooner), and when it fires (in the watchdog's thread) it ends the run at
    its total deadline, or cancels or blames the async steps past theirs (``overrun``),
    gives up on pool calls past theirs (``PoolCall._expired``), and re-arms at the next
    time something can be due. A run that ends first cancels its entry:
    the usual run costs one arm and one cancel, whatever its number of async steps.
    An async step still going ``CANCEL_GRACE`` after its verdict (cancelled, blamed, or
    cut by the total timeout) is abandoned (``aio.stubborn_due``): the look comes back
    for that too, after the run has finished if need be.
    """

    __slots__ = ("entry", "inflight", "loop", "run", "stopped")

    def __init__(self, run: RunContext, loop: asyncio.AbstractEventLoop,
                 inflight: list[AsyncCall]) -> None:
        self.run = run
        self.loop = loop
        self.inflight = inflight
        #: The entry armed last: the only one not yet due (``look`` re-arms once it fired).
        self.entry: Entry | None = None
        self.stopped = False

    def arm(self, deadline: float) -> None:
        self.entry = watchdog().arm(deadline, self.look)

    def stop(self) -> None:
        """The run is over (on its loop): nothing more to look at."""
        self.stopped = True
        entry = self.entry
        if entry is not None:
            watchdog().cancel(entry)

    def look(self, now: float) -> None:
        """The watchdog's callback (its thread): see the class docstring."""
        if self.stopped:
            return
        run = self.run
        if run.finished:  # at its total timeout: its async skills still have to let go
            later = _INF
            for call in list(self.inflight):
                if call.done:
                    continue
                if call.verdict is None:  # ``_end_at_total`` has not run yet: look again
                    later = min(later, now + CANCEL_GRACE)
                else:
                    later = min(later, stubborn_due(call, now))
            if later != _INF and not self.stopped:
                self.arm(later)
            return
        total = run.total_deadline
        if now >= total:  # end the run on its loop
            try:
                self.loop.call_soon_threadsafe(_end_at_total, run, self.inflight, now)
            except RuntimeError:  # the loop is closed: nothing is waiting any more
                return
            self.arm(now + CANCEL_GRACE)  # for skills that go on past the cancellation
            return
        later = min(total, now + run.min_timeout)  # a step starting from now on
        for call in list(self.inflight):  # a copy: the loop adds and removes calls
            if call.done:
                continue
            if call.verdict is not None:  # cancelled or blamed: abandoned if it goes on
                later = min(later, stubborn_due(call, now))
                continue
            if call.deadline <= now:
                action = overrun(call, now)
                if action != RECHECK:  # over its time (the verdict is set)
                    if action == CANCEL:  # suspended: cancelled for real; one blocking
                        cancel_soon(call)  # the loop is stopped at its next await
                    later = min(later, now + CANCEL_GRACE)
                    continue
            later = min(later, call.deadline)
        for pool_call in list(run.calls):  # sync steps running in pool threads
            slot = pool_call.slot
            if pool_call.state != RUNNING or slot is None:
                continue
            if slot.deadline <= now:
                pool_call._expired(now)  # gives it up, or arms its own look for later
            else:
                later = min(later, slot.deadline)
        if later != _INF and not self.stopped:
            self.arm(later)
