"""Running one skill and folding what it wrote back into the real UIF.

``execute_step`` is the hot path: build the skill's view, call it (retrying if configured),
check what it returned. ``merge_outcome`` runs later, in plan order, so concurrent skills
always merge the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sof_core.errors import (
    SkillExecutionError,
    SkillNotPicklableError,
    SkillTimeoutError,
    ToolPermissionError,
    ToolRateLimitError,
    UndeclaredReadError,
    UndeclaredWriteError,
)
from sof_core.execution.deadlines import Slot, clock, restart_slot
from sof_core.execution.failures import Failure, describe_failure
from sof_core.graph.compile import Step
from sof_core.skills.spec import type_name
from sof_core.skills.views import (
    RunFreeze,
    ScopedData,
    WriteGuard,
    exact_key,
    freeze,
    own_writes,
    plain_again,
    report_undeclared,
    skill_view,
    write_refused,
)
from sof_core.uif import BOOKKEEPING_FIELDS, UIF, UIFStatus, describe_validation_error

if TYPE_CHECKING:
    from sof_core.execution.aio import AsyncCall

_NOT_RETRIED = (UndeclaredReadError, UndeclaredWriteError, SkillTimeoutError,
                SkillNotPicklableError,
                ToolRateLimitError, ToolPermissionError)  # tool security (issue 11)
_perf = time.perf_counter
_FAILURE = UIFStatus.FAILURE
_CHECK = object()  # a status no view holds: always take check_returned's full check


@dataclass(slots=True)
class Outcome:
    """What came back from one skill: its view (or the UIF it returned) or an error.

    ``data`` and ``guard`` are the skill's scope (one ``ScopedData`` object serves as both).
    """

    step: Step
    result: UIF | None
    view: UIF | None
    data: ScopedData | None
    guard: WriteGuard | None
    error: BaseException | None
    duration: float
    attempts: int
    #: How the report describes ``error`` (``describe_failure``), worked out by the thread
    #: that ran the skill; None for a success, or for SOF's own errors (described later).
    failure: Failure | None = None
    #: A success's writes, checked where the skill ran (``prepare_merge``); None: checked
    #: when merged (an ``Outcome`` an executor made without one).
    merge: Merge | None = None


#: What ``run_step`` returns: (result, view, scope, error, duration, attempts) — the fields
#: of an ``Outcome`` after ``step``, as a plain tuple (the inline walk skips the object).
StepRun = tuple[UIF | None, UIF | None, ScopedData | None, BaseException | None, float, int]


def execute_step(
    step: Step,
    uif: UIF,
    retry_backoff: float = 0.0,
    before: Callable[[Step, UIF], None] | None = None,
    slot: Slot | None = None,
) -> Outcome:
    """Run one skill on its own view of ``uif`` (sync or async), with retries."""
    result, view, scope, error, duration, attempts = run_step(
        step, uif, retry_backoff, before, slot
    )
    if error is not None:
        return failed(step, error, duration, attempts)
    return succeeded(step, result, view, scope, duration, attempts)


def succeeded(step: Step, result: Any, view: Any, scope: Any, duration: float,
              attempts: int) -> Outcome:
    """The outcome of a skill that returned, its writes checked now (``prepare_merge``): in
    the thread that ran it, under its deadline, outside the run's lock. Writes it may not
    make fail it here."""
    try:
        merge = prepare_merge(step, result, view, scope, scope)
    except BaseException as exc:  # its values' own code raised (KeyboardInterrupt too)
        return failed(step, exc, duration, attempts)
    return Outcome(step, result, view, scope, scope, None, duration, attempts, None, merge)


def failed(step: Step, error: BaseException, duration: float, attempts: int) -> Outcome:
    """The outcome of a skill that raised ``error``, described now (``describe_failure``):
    in the thread that ran it, under its deadline, outside the run's lock."""
    return Outcome(step, None, None, None, None, error, duration, attempts,
                   describe_failure(step, error))


def run_step(
    step: Step,
    uif: UIF,
    retry_backoff: float = 0.0,
    before: Callable[[Step, UIF], None] | None = None,
    slot: Slot | None = None,
) -> StepRun:
    """``execute_step`` without the ``Outcome``: the per-skill hot path of inline runs.

    ``slot`` is the thread's record of the step for the watchdog (None when no deadline
    applies): retries stop at its deadline, and an async skill is cancelled there.
    ``KeyboardInterrupt`` (and any other ``BaseException`` that is not an ``Exception``)
    comes back as the step's error, never retried: the run reports it against the skill
    (and raises a ``KeyboardInterrupt`` then).
    """
    attempts = 0
    started = _perf()
    # The status the run set (the UIF class's own value for RUNNING); a skill that left it
    # as it was did not call set_error. Compared by identity below: equal is not enough.
    status = uif.__dict__["status"]
    if status == _FAILURE:
        status = _CHECK
    while True:
        attempts += 1
        view, scope = skill_view(uif, step)
        try:
            if before is not None:
                before(step, view)
            if step.isolation == "process":
                returned = isolated_call(step, uif, view, started, slot)
            elif step.spec.is_async:
                from sof_core.execution.aio import run_coroutine

                returned = run_coroutine(step.instance.execute(view), step, slot)
            else:
                returned = step.instance.execute(view)
            # view.__dict__ afresh: pydantic replaces it on every validated field assignment.
            if (returned is view or returned is None) and view.__dict__["status"] is status:
                result = view  # the common case, checked inline (same as check_returned)
            else:
                result = check_returned(step, view, returned)
            return result, view, scope, None, _perf() - started, attempts
        except _NOT_RETRIED as exc:
            return None, None, None, exc, _perf() - started, attempts
        except (Exception, SystemExit) as exc:
            if attempts <= step.retries and _retry(step, attempts, retry_backoff, slot):
                continue
            return None, None, None, exc, _perf() - started, attempts
        except BaseException as exc:  # KeyboardInterrupt: reported, then raised by the run
            return None, None, None, exc, _perf() - started, attempts


def _retry(step: Step, attempts: int, backoff: float, slot: Slot | None) -> bool:
    """Wait out the backoff before another attempt; False when the deadline comes first."""
    deadline = slot.deadline if slot is not None else math.inf
    pause = backoff * (2 ** (attempts - 1)) if backoff else 0.0
    if clock() + pause >= deadline:
        return False
    if pause:
        time.sleep(pause)
    if slot is not None:
        slot.retried = (step, attempts + 1)  # the watchdog reports the attempts made
    return True


async def aexecute_step(
    step: Step,
    uif: UIF,
    retry_backoff: float = 0.0,
    call: AsyncCall | None = None,
    before: Callable[[Step, UIF], Awaitable[None] | None] | None = None,
) -> Outcome:
    """``execute_step`` for an async skill on the running event loop, with retries.

    Awaited as ``call`` (see ``sof_core.execution.aio``): cancelled at its deadline, blamed
    if it blocks the loop; retries stop at the deadline. A cancellation that is not the
    deadline's (the caller's) propagates.
    """
    import asyncio

    from sof_core.execution.aio import await_step, cancelled_by_caller

    attempts = 0
    started = _perf()
    while True:
        attempts += 1
        view, data = skill_view(uif, step)
        try:
            if before is not None:
                told = before(step, view)
                if told is not None:  # observers awaited on this loop (``arun._tell``)
                    await told
            coro = step.instance.execute(view)
            returned = await (coro if call is None else await_step(coro, call))
            result = check_returned(step, view, returned)
            return succeeded(step, result, view, data, _perf() - started, attempts)
        except _NOT_RETRIED as exc:
            return failed(step, exc, _perf() - started, attempts)
        except (Exception, SystemExit) as exc:
            deadline = call.deadline if call is not None else math.inf
            pause = retry_backoff * (2 ** (attempts - 1)) if retry_backoff else 0.0
            if attempts <= step.retries and clock() + pause < deadline:
                if pause:
                    await asyncio.sleep(pause)
                continue
            return failed(step, exc, _perf() - started, attempts)
        except asyncio.CancelledError as exc:
            if cancelled_by_caller():
                raise
            return failed(step, exc, _perf() - started, attempts)
        except BaseException as exc:  # KeyboardInterrupt: reported, then raised by the run
            return failed(step, exc, _perf() - started, attempts)


def isolated_call(step: Step, uif: UIF, view: UIF, started: float,
                  slot: Slot | None = None) -> UIF:
    """Run an isolated step (``isolation == "process"``) in a worker process, which is
    killed at the step's deadline: the slot's, else ``started`` (a ``perf_counter`` time)
    plus its timeout."""
    from sof_core.execution.isolation import run_isolated

    deadline = math.inf
    start = None
    if slot is not None:
        deadline = _monotonic(slot.deadline)
        if (step.timeout is not None and slot.step is step
                and not (slot.retried is not None and slot.retried[0] is step)):
            start = _StartWhenTaken(step, slot)
    elif step.timeout is not None:
        deadline = time.monotonic() + step.timeout - (_perf() - started)
    return run_isolated(step, uif, view, deadline, start)


def _monotonic(deadline: float) -> float:
    """A ``clock()`` deadline on the monotonic clock (isolation's)."""
    if clock is time.monotonic or deadline == math.inf:
        return deadline
    return time.monotonic() + (deadline - clock())


class _StartWhenTaken:
    """An isolated step's deadline, started once a worker takes the call (as a thread
    step's starts when a thread takes it): while it waits for one, only the run's total
    deadline applies, so steps queued behind busy workers are not killed for the wait. A
    retry's attempts share the first one's deadline, as in-thread."""

    __slots__ = ("slot", "step", "wait_until")

    def __init__(self, step: Step, slot: Slot) -> None:
        self.step = step
        self.slot = slot
        self.wait_until = _monotonic(slot.total)
        slot.deadline = slot.total  # the watch waits for the run's end meanwhile
        slot.waiting = True

    def __call__(self) -> float:
        assert self.step.timeout is not None  # (checked before it was made)
        self.slot.waiting = False
        return _monotonic(restart_slot(self.slot, self.step.timeout, self.slot.total))


def check_returned(step: Step, view: UIF, returned: Any) -> UIF:
    """The UIF a skill handed back; a skill that returned nothing is taken to mean its view."""
    result = view if returned is None else returned
    if not isinstance(result, UIF):
        raise SkillExecutionError(
            f"execute() returned {type(returned).__name__}; return the uif it was given",
            step.name,
        )
    # == rather than is: a UIF subclass may keep the status as its string value (SAM_UIF).
    if result.__dict__["status"] == _FAILURE:
        raise SkillExecutionError(
            result.__dict__["error_details"] or "set_error() was called", step.name
        )
    return result


@dataclass(slots=True)
class Merge:
    """A successful skill's writes, checked and ready to fold into the run's UIF.

    Made by ``prepare_merge`` in the thread that ran the skill, under its deadline and
    outside the run's lock: everything that can run the skill's own code (an output's
    ``__class__`` in the type check, ``==`` when diffing a returned UIF, iterating a
    container to freeze it, validating a container field) happens there. ``commit_merge``
    then does only dict and list stores under the lock, so a value that hangs in any of
    those holds its own step until the watchdog gives up on it, never the run.
    """

    #: ``intermediate_data`` writes, keys exact ``str``
    writes: dict[str, Any]
    #: UIF field -> the value to store (validated)
    fields: dict[str, Any]
    #: container field -> its read-only version, stored instead while a run goes on
    frozen: dict[str, Any]
    #: what the skill logged, warned and recorded, as ``merge_logs`` reads it (None when
    #: all are empty)
    logs: dict[str, Any] | None


def merge_outcome(main: UIF, outcome: Outcome, frozen: RunFreeze | None = None) -> None:
    """Fold a successful skill's writes into ``main`` (raises for undeclared writes).

    An executor that built the ``Outcome`` without a ``merge`` gets it prepared here.
    """
    merge = outcome.merge
    if merge is None:
        merge = prepare_merge(outcome.step, outcome.result, outcome.view, outcome.data,
                              outcome.guard)
    commit_merge(main, outcome.step, merge, outcome.duration, frozen)


def merge_writes(
    main: UIF,
    step: Step,
    result: Any,
    view: Any,
    data: Any,
    guard: Any,
    duration: float,
    frozen: RunFreeze | None = None,
) -> None:
    """``merge_outcome`` from the outcome's parts (all set for a successful skill)."""
    commit_merge(main, step, prepare_merge(step, result, view, data, guard), duration, frozen)


def prepare_merge(step: Step, result: Any, view: Any, data: Any, guard: Any) -> Merge:
    """Check a successful skill's writes and put them in the form ``commit_merge`` stores.

    Raises (a ``SkillExecutionError``, ``UndeclaredWriteError``, or whatever the skill's
    values raise) when they are refused: call it where the skill ran (see ``Merge``).
    """
    produced = result.__dict__
    if result is view:
        writes = data.written
        written_fields = guard.written_fields
    else:  # the skill returned another UIF object: compare it with the view it was given
        before = view.__dict__
        returned_data = produced["intermediate_data"]
        writes = dict(data.written) if returned_data is data else {}
        writes.update(_diff_data(step, before["intermediate_data"], returned_data))
        written_fields = set(guard.written_fields) | _diff_fields(
            step, before, produced, type(result)._sof_bookkeeping
        )
        writes = {exact_key(key): value for key, value in writes.items()}
    if writes:
        own_writes(writes)  # what it was lent and stored is the host's to change later
        if step.output_checks:
            check_outputs(step, writes)
    fields: dict[str, Any] = {}
    frozen: dict[str, Any] = {}
    if written_fields:
        if step.copied_fields:
            _validate_copied(step, result)
            produced = result.__dict__  # validation gives the model a new __dict__
        for name in written_fields:
            name = exact_key(name)
            value = fields[name] = plain_again(produced[name])
            if name in step.copied_fields:  # later views of a run share it: read-only
                frozen[name] = freeze(value, (name, True))[0]
    # Empty lists/dicts are the norm: skip them without a copy.
    logs = None
    if produced["log_trace"] or produced["warnings"] or produced["skill_outputs"]:
        logs = {"log_trace": list(produced["log_trace"]), "warnings": list(produced["warnings"]),
                "skill_outputs": {exact_key(key): value
                                  for key, value in dict(produced["skill_outputs"]).items()}}
    return Merge(writes, fields, frozen, logs)


def commit_merge(main: UIF, step: Step, merge: Merge, duration: float,
                 frozen: RunFreeze | None = None) -> None:
    """Store a prepared ``Merge`` in ``main``: no code of the skill's runs here.

    In a run (``frozen`` given), container fields are stored read-only (later views share
    them), and ``executed_skills`` and ``skill_timings`` are recorded in the lists ``frozen``
    holds.
    """
    fields = main.__dict__
    if merge.writes:
        fields["intermediate_data"].update(merge.writes)
    if merge.fields:
        for name, value in merge.fields.items():
            if frozen is not None and name in merge.frozen:
                value = frozen.keep(name, merge.frozen[name], value)
            fields[name] = value
    if merge.logs is not None:
        merge_logs(main, merge.logs)
    if frozen is None:
        fields["executed_skills"].append(step.name)
        fields["skill_timings"][step.name] = duration
    else:  # the UIF shows read-only versions until the run ends
        frozen.executed.append(step.name)
        frozen.timings[step.name] = duration


def check_outputs(step: Step, writes: dict[str, Any]) -> None:
    """Raise for a write whose value is not of the type its key declares."""
    for key, check in step.output_checks:
        if key in writes and not isinstance(writes[key], check):
            declared = step.spec.output_types.get(key, check)
            raise SkillExecutionError(
                f"wrote {key!r} as {type(writes[key]).__name__} but declared "
                f"{type_name(declared)}",
                step.name,
            )


def merge_logs(main: UIF, produced: dict[str, Any]) -> None:
    """Add what a skill logged, warned and recorded as its outputs (``produced``: its
    view's or returned UIF's fields) to ``main``'s."""
    fields = main.__dict__
    log_trace = produced["log_trace"]
    if log_trace and log_trace is not fields["log_trace"]:
        fields["log_trace"].extend(log_trace)
    warnings = produced["warnings"]
    if warnings and warnings is not fields["warnings"]:
        fields["warnings"].extend(warnings)
    outputs = produced["skill_outputs"]
    if outputs and outputs is not fields["skill_outputs"]:
        main._sof_merge_skill_outputs(outputs)  # per UIF class: SAM_UIF replaces


def _validate_copied(step: Step, result: UIF) -> None:
    """Container fields the skill may have changed in place are checked like assignments."""
    from pydantic import ValidationError

    validator = type(result).__pydantic_validator__
    for name in step.copied_fields:
        try:
            validator.validate_assignment(result, name, result.__dict__[name])
        except ValidationError as exc:
            raise SkillExecutionError(
                "left an invalid value in a UIF field it declares as output: "
                + describe_validation_error(exc, "UIF").removeprefix("invalid UIF: "),
                step.name,
            ) from None


def _diff_data(step: Step, before: Any, after: Any) -> dict[str, Any]:
    """Writes of a skill that returned a UIF with other data than its view's (slow path)."""
    if after is before:
        return {}
    items = after.to_dict() if isinstance(after, ScopedData) else dict(after)
    old = before.given() if isinstance(before, ScopedData) else dict(before)
    writes = {}
    for key, value in items.items():
        if key in old and (old[key] is value or _equal(old[key], value)):
            continue
        if key not in step.writable:
            if step.scope_type is ScopedData:
                raise UndeclaredWriteError(step.name, key)
            report_undeclared(step.name, key, "write")
        writes[key] = value
    return writes


def _diff_fields(
    step: Step,
    before: dict[str, Any],
    after: dict[str, Any],
    bookkeeping: frozenset[str] = BOOKKEEPING_FIELDS,
) -> set[str]:
    """Field writes of a skill that returned a different UIF object (slow path)."""
    written = set()
    for name, value in after.items():
        if name == "intermediate_data" or name in bookkeeping:
            continue
        if before.get(name) is value or _equal(before.get(name), value):
            continue
        if name == "task_id":  # task_id cannot be declared: say what can be done
            raise write_refused(step.name, name, "returned a different UIF (another task: "
                                "its task_id differs) instead of the one it was given; "
                                "change the uif it was given and return it")
        if name not in step.writable_fields:
            if step.scope_type is ScopedData:
                raise UndeclaredWriteError(step.name, name)
            report_undeclared(step.name, name, "set")
        written.add(name)
    return written


def _equal(before: Any, after: Any) -> bool:
    try:
        return bool(before == after)
    except Exception:  # an exotic __eq__ must not hide a write
        return False
