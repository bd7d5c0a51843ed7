"""Async skills under deadlines: cancelled for real, and blamed when they block their loop.

An async skill is awaited through ``guarded``, which notes when each of its slices of work
on the loop starts and ends (``LoopState``, one per event loop). At the skill's deadline
the watchdog (another thread) looks at that record, with ``overrun``:

- the skill is suspended: it is cancelled for real (``task.cancel()`` on its loop);
- the skill is running on the loop right now, past its deadline (``time.sleep`` or CPU work
  inside ``async def``): it is blamed; nothing can interrupt it, and it is stopped at its
  next ``await`` (a thread that hosts the loop is abandoned like a hung sync skill);
- another skill is blocking the loop: the time it blocked is not counted against this one
  (``excused``), whose deadline moves on by as much, so a well-behaved skill beside a
  blocking one is not timed out in its place.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import functools
import logging
import math
import threading
import weakref
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, TypeVar

from sof_core.errors import SkillTimeoutError
from sof_core.execution.deadlines import Slot, _task_deadline, clock
from sof_core.execution.watchdog import Entry, watchdog

if TYPE_CHECKING:
    from sof_core.graph.compile import Step

log = logging.getLogger("sof.coordinator")
_T = TypeVar("_T")

#: A slice of work on the loop at least this long counts as blocking it.
BLOCKING = 0.02
#: After cancelling, how long a skill has to end before its thread is given up on.
CANCEL_GRACE = 0.25

#: What ``overrun`` decided.
RECHECK = "recheck"  # not over its own time yet (excused): look again at ``call.deadline``
CANCEL = "cancel"  # suspended past its deadline: cancel it, give it CANCEL_GRACE to end
BLAME = "blame"  # blocking its loop past its deadline: give up on it now


class LoopState:
    """What runs on one event loop right now, and how long slices blocked it in total."""

    __slots__ = ("__weakref__", "blocked", "current", "since")

    def __init__(self) -> None:
        self.current: AsyncCall | None = None
        self.since = 0.0
        self.blocked = 0.0


_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState] = (
    weakref.WeakKeyDictionary()
)
_states_lock = threading.Lock()


#: The last loop asked about and its state: a run's steps ask for the same loop again and
#: again, and a ``WeakKeyDictionary`` look-up makes a weak reference each time.
_last_state: tuple[weakref.ref[asyncio.AbstractEventLoop], LoopState] | None = None


def loop_state(loop: asyncio.AbstractEventLoop) -> LoopState:
    global _last_state
    last = _last_state
    if last is not None and last[0]() is loop:
        return last[1]
    state = _states.get(loop)
    if state is None:
        with _states_lock:
            state = _states.get(loop)
            if state is None:
                state = _states[loop] = LoopState()
    _last_state = (weakref.ref(loop), state)
    return state


class AsyncCall:
    """One async step on a loop: its deadline and what the watchdog made of it."""

    __slots__ = ("abandoned", "blocked_at_start", "cancels", "deadline", "done", "limit",
                 "loop", "own_blocked", "started", "state", "step", "task", "thrown",
                 "verdict", "verdict_at")

    def __init__(self, step: Step, loop: asyncio.AbstractEventLoop, started: float,
                 deadline: float, state: LoopState | None = None,
                 total: float = math.inf) -> None:
        self.step = step
        self.loop = loop
        self.state = state = loop_state(loop) if state is None else state
        self.started = started
        self.deadline = deadline
        #: What the skill's ``current_deadline()`` says: its deadline, or the run's total
        #: deadline if that comes first; None when neither ends.
        limit = deadline if deadline < total else total
        self.limit = None if limit == math.inf else limit
        self.blocked_at_start = state.blocked
        self.own_blocked = 0.0
        self.task: asyncio.Task[Any] | None = None
        #: Why the watchdog ended the call (set before it is cancelled), or None; when.
        self.verdict: str | None = None
        self.verdict_at = math.inf
        self.done = False
        #: ``task.cancel()`` calls made for the verdict (each is undone when it ends).
        self.cancels = 0
        #: A cancellation was thrown into the skill's coroutine for the verdict.
        self.thrown = False
        #: It went on ``CANCEL_GRACE`` past its verdict: it is no longer driven (``abandon``).
        self.abandoned = False

    def timeout_error(self) -> SkillTimeoutError:
        return SkillTimeoutError(self.verdict or "cancelled", self.step.name)

    def begin(self, now: float, total: float = math.inf) -> None:
        """Start the deadline at ``now``: for a call made with no deadline while its
        ``sof_before_skill`` observers were awaited (their time is not the skill's). The
        deadline is set last: the watchdog reads it from another thread."""
        timeout = self.step.timeout
        deadline = now + timeout if timeout is not None else math.inf
        limit = deadline if deadline < total else total
        self.limit = None if limit == math.inf else limit
        self.started = now
        self.blocked_at_start = self.state.blocked
        self.deadline = deadline


def overrun(call: AsyncCall, now: float) -> str:
    """What to do with ``call`` at (or after) its deadline; sets ``call.verdict`` when it
    is over. Called from the watchdog's thread."""
    state = call.state
    current = state.current
    timeout = call.step.timeout
    if current is call:  # running on the loop right now: blocking it
        blocked = now - state.since
        call.verdict_at = now
        call.verdict = (
            f"did not finish within {timeout}s: it blocked its event loop, without "
            f"awaiting, for the last {blocked:.2f}s before its deadline (synchronous work "
            "such as time.sleep inside async def; use await asyncio.sleep or run it in a "
            "thread)"
        )
        return BLAME
    excused = state.blocked - call.blocked_at_start - call.own_blocked
    if current is not None:  # another skill holds the loop at this moment
        excused += now - state.since
    if timeout is not None and excused > 0:
        due = call.started + timeout + excused
        if now < due:
            call.deadline = due
            return RECHECK
    call.verdict_at = now
    call.verdict = f"did not finish within {timeout}s; cancelled"
    return CANCEL


def abandon(call: AsyncCall) -> None:
    """``call`` is still going ``CANCEL_GRACE`` after its verdict (any thread): it ignores
    its cancellation (catches ``CancelledError`` and awaits on). Its task is cancelled once
    more and, seeing ``abandoned``, its guard closes the skill's coroutine instead of
    handing it the cancellation: the run goes on without it."""
    if call.done or call.abandoned:
        return
    call.abandoned = True
    call.verdict = (f"{call.verdict or 'cancelled'}; it went on past its cancellation and was "
                    f"abandoned {CANCEL_GRACE}s later (a skill must let CancelledError through)")
    cancel_soon(call)


def stubborn_due(call: AsyncCall, now: float) -> float:
    """For a call with a verdict: abandon it if its grace is over (``math.inf`` then, or when
    it is done), else the time its grace ends."""
    if call.done or call.abandoned:
        return math.inf
    due = call.verdict_at + CANCEL_GRACE
    if now >= due:
        abandon(call)
        return math.inf
    return due


def cancel_soon(call: AsyncCall) -> None:
    """Cancel ``call``'s task on its own loop (from any thread), if it is still running."""
    try:  # noqa: SIM105 - hot path: suppress() costs a context manager per call
        call.loop.call_soon_threadsafe(_cancel, call)
    except RuntimeError:  # the loop is closed: nothing left to cancel
        pass


def _cancel(call: AsyncCall) -> None:
    # On the loop's thread: the call cannot have finished between this check and the
    # cancel, and a finished call's task has moved on to other awaits (never cancel those).
    task = call.task
    if not call.done and task is not None and not task.done():
        call.cancels += 1
        task.cancel()


class _Guarded:
    """Awaits a skill's coroutine, recording each slice it runs on the loop."""

    __slots__ = ("_call", "_coro")

    def __init__(self, coro: Coroutine[Any, Any, Any], call: AsyncCall) -> None:
        self._coro = coro
        self._call = call

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, call = self._coro, self._call
        state = call.state
        value: Any = None
        error: BaseException | None = None
        while True:
            state.current = call
            started = state.since = clock()
            try:
                yielded = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:  # it returned
                _slice_ended(state, call, started)
                return stop.value
            except BaseException:
                _slice_ended(state, call, started)
                raise
            _slice_ended(state, call, started)
            if call.abandoned:  # it went on past its cancellation and its grace
                _close(coro)
                raise asyncio.CancelledError
            if call.verdict is not None and not call.thrown:  # blamed while it ran: stop it
                call.thrown = True  # at this await (once: it may await its clean-up)
                error = asyncio.CancelledError()
                continue
            try:
                value = yield yielded
                error = None
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation, or what its awaitable raised
                if call.abandoned:
                    _close(coro)
                    raise
                if call.verdict is not None and isinstance(exc, asyncio.CancelledError):
                    call.thrown = True
                error = exc
                value = None


def _close(coro: Coroutine[Any, Any, Any]) -> None:
    """Close an abandoned skill's coroutine now, whatever it does about it (it may catch
    ``GeneratorExit`` too): it is not run again."""
    with contextlib.suppress(BaseException):  # "coroutine ignored GeneratorExit", say
        coro.close()


def _slice_ended(state: LoopState, call: AsyncCall, started: float) -> None:
    state.current = None
    spent = clock() - started
    if spent >= BLOCKING:
        state.blocked += spent
        call.own_blocked += spent


async def await_step(coro: Coroutine[Any, Any, Any], call: AsyncCall) -> Any:
    """Await a skill's coroutine as ``call``: a deadline cancellation becomes
    ``SkillTimeoutError``; any other cancellation propagates."""
    task = call.task = asyncio.current_task()
    call.done = False  # a retry awaits again under the same call
    token = _task_deadline.set(call.limit)
    skill = _task_skill.set(call.step.name)
    try:
        result = await _Guarded(coro, call)
        if call.verdict is not None:  # it finished, but only after the watchdog ended it
            raise call.timeout_error()
        return result
    except asyncio.CancelledError:
        if call.verdict is None:
            raise
        if undo_cancels(task, call) > 0:
            raise  # cancelled by its caller as well: that one wins
        raise call.timeout_error() from None
    except Exception as exc:
        if call.verdict is None:
            raise
        # Cancelled at its deadline, it raised something else (a wrapper turning the
        # cancellation into its own error): still the deadline's doing.
        raise call.timeout_error() from exc
    finally:
        call.done = True
        _task_deadline.reset(token)
        _task_skill.reset(skill)


def cancelled_by_caller() -> bool:
    """Whether the ``CancelledError`` being handled is a cancellation of the current task
    (its caller's, say ``asyncio.timeout``), not one a skill raised or let out of an await
    of its own. Before Python 3.11 tasks cannot tell: on the caller's loop it is taken as
    the caller's; on SOF's own thread loop (``execute_plan``) no caller awaits, so it is the
    skill's."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    if cancelling is None:  # Python 3.10: no caller awaits on SOF's own thread loop
        return getattr(_local, "loop", None) is not asyncio.get_running_loop()
    return int(cancelling()) > 0


def undo_cancels(task: asyncio.Task[Any] | None, call: AsyncCall) -> int:
    """Take back the cancellations made for ``call``'s verdict; the cancellations left
    (others': its caller's). 0 where tasks cannot say (before Python 3.11)."""
    uncancel = getattr(task, "uncancel", None)
    cancelling = getattr(task, "cancelling", None)
    if uncancel is None or cancelling is None:
        return 0
    for _ in range(call.cancels):  # none when the guard itself threw it (a blamed skill)
        uncancel()
    call.cancels = 0
    return int(cancelling())


# --- sync threads running async skills on a loop of their own -------------------------------

_local = threading.local()

#: The skill whose call is awaited (in ``await_step``): the tasks it starts inherit it, so a
#: task left behind on a thread's loop is reported against the skill that started it.
_task_skill: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "sof_task_skill", default=None)


class _Started(list[tuple[asyncio.Task[Any], str | None]]):
    """A thread loop's task factory: every task made on the loop, noted with the skill that
    started it (``reap_tasks`` looks at them once the loop stops)."""

    def __call__(self, loop: asyncio.AbstractEventLoop,
                 coro: Generator[Any, None, _T] | Coroutine[Any, Any, _T], /,
                 **kwargs: Any) -> asyncio.Future[_T]:
        task: asyncio.Task[_T] = asyncio.Task(coro, loop=loop, **kwargs)
        self.append((task, _task_skill.get()))  # called in the context of the code starting it
        return task


def thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's own reusable event loop (for async skills run from sync threads)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.started = started = _Started()
        loop.set_task_factory(started)
        _local.loop = loop
    return loop


def close_thread_loop() -> None:
    """Close the calling thread's own loop (``thread_loop``), if it made one: a pool thread
    that ends takes its loop with it, rather than leaving its selector and self-pipe open
    until the garbage collector finds them (``engine.close()`` releases an engine's
    threads, and so their loops). The tasks skills left on it were cancelled after each
    skill (``reap_tasks``)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None:
        return
    _local.loop = None
    if not loop.is_closed() and not loop.is_running():
        loop.close()


# The main thread's loop (async skills a run without timeouts awaited in the caller's
# thread) is closed at exit, as a pool thread's is when the thread ends.
atexit.register(close_thread_loop)


def reap_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks skills started on this thread's ``loop`` and left running.

    The loop runs only while this thread awaits a skill, so such a task would otherwise
    sleep until the next async skill on the thread and then run inside that skill's time
    (blocking it, or timing it out), or be destroyed pending with the thread. As
    ``asyncio.run`` does at its end, each is cancelled and given ``CANCEL_GRACE`` to end;
    the loop of a task that will not end is closed and replaced. Logged against the skill
    that started it.
    """
    started: _Started = _local.started
    if all(task.done() for task, _ in started):  # the usual case: nothing left
        started.clear()
        return
    counts: dict[str, int] = {}
    cancelled: set[asyncio.Task[Any]] = set()
    ends = clock() + CANCEL_GRACE
    while True:  # rounds: a task may start others as it ends
        left = [(task, name) for task, name in started if not task.done()]
        started.clear()
        if not left:
            break
        for task, name in left:
            if task not in cancelled:  # once: a second cancel would cut its clean-up short
                cancelled.add(task)
                skill = name or "an unknown skill"
                counts[skill] = counts.get(skill, 0) + 1
                task.cancel()
        remaining = ends - clock()
        if remaining <= 0:
            break
        loop.run_until_complete(asyncio.wait([task for task, _ in left], timeout=remaining))
        started.extend((task, name) for task, name in left if not task.done())
    for task in cancelled:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" later
    for name, count in sorted(counts.items()):
        log.warning("skill %r left %d asyncio task(s) running when it returned; they were "
                    "cancelled (await or cancel the tasks a skill starts)", name, count)
    if left:
        log.warning("%d task(s) went on %.2fs after they were cancelled; their event loop "
                    "was closed", len(left), CANCEL_GRACE)
        for task, _ in left:
            # Said above, once: not again as "Task was destroyed but it is pending!" from
            # whichever later code the garbage collector happens to run in (asyncio's own
            # switch, on its Task in C and in Python).
            with contextlib.suppress(AttributeError):
                task._log_destroy_pending = False  # type: ignore[attr-defined]
        _local.loop = None
        loop.close()


def run_coroutine(coro: Coroutine[Any, Any, Any], step: Step, slot: Slot | None) -> Any:
    """Run an async skill in this thread on its own loop, until its deadline.

    The deadline is the slot's (the watchdog finds the call as ``slot.call`` and cancels it
    there); without a slot, the step's own timeout from now, kept by the loop itself.
    """
    loop = thread_loop()
    if slot is not None:
        deadline = slot.deadline
    else:
        deadline = clock() + step.timeout if step.timeout is not None else float("inf")
    call = AsyncCall(step, loop, clock(), deadline,
                     total=slot.total if slot is not None else math.inf)
    timer = None
    if slot is not None:
        slot.call = call
    elif deadline != float("inf"):  # nobody watches this thread: the loop cancels it itself
        timer = loop.call_at(loop.time() + (deadline - clock()), _expire_locally, call)
    try:
        return loop.run_until_complete(await_step(coro, call))
    finally:
        if slot is not None:
            slot.call = None
        elif timer is not None:
            timer.cancel()
        reap_tasks(loop)


def _expire_locally(call: AsyncCall) -> None:
    if not call.done:
        call.verdict = f"did not finish within {call.step.timeout}s; cancelled"
        call.verdict_at = clock()
        _cancel(call)
        call.loop.call_later(CANCEL_GRACE, abandon, call)


# --- the watchdog's side for calls on a shared loop --------------------------------------------


#: Told (in the watchdog's thread) that a call was blamed for blocking its loop.
OnBlame = Callable[[AsyncCall, float], None]


def watch(call: AsyncCall, on_blame: OnBlame | None = None) -> Entry | None:
    """Arm ``call``'s deadline with the watchdog (None when it has none)."""
    if call.deadline == float("inf"):
        return None
    return watchdog().arm(call.deadline, functools.partial(_expired, call, on_blame))


def _expired(call: AsyncCall, on_blame: OnBlame | None, now: float) -> None:
    """At the deadline: cancel a suspended call, blame one blocking its loop (it is stopped
    at its next await; ``on_blame`` hears of it), or give one another skill held up the
    time it lost."""
    if call.done or call.verdict is not None:
        return
    action = overrun(call, now)
    if action == RECHECK:
        watchdog().arm(call.deadline, functools.partial(_expired, call, on_blame))
        return
    if action == CANCEL:
        cancel_soon(call)
    elif on_blame is not None:
        on_blame(call, now)
    # cancelled, or blamed (stopped at its next await): abandoned if it goes on regardless
    watchdog().arm(now + CANCEL_GRACE, functools.partial(_grace_over, call))


def _grace_over(call: AsyncCall, now: float) -> None:
    stubborn_due(call, now)
