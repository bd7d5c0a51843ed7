"""One run of a compiled plan: the walk over its stages, deadlines, and what is recorded.

When no timeout applies at all, the caller's thread walks the stages itself
(``drive_inline``). Otherwise the caller hands the walk to a runner thread of its engine
(``supervise``: one hand-off per run) and waits, and the process's watchdog holds one
deadline for the run: the sooner of the run's total timeout and the step in progress's.
The runner notes each step it starts in its ``Slot`` (a few attribute writes, no event, no
thread); the watchdog reads the slot at the deadline:

- the step is over its time: the runner is given up on (its thread goes on running the
  skill, counted as hung; see ``hung.py``), the step is recorded as timed out, and a new
  runner goes on with the next stage;
- it is not (the step that was running then has ended): the deadline moves to the current
  step's.

The run's lock is taken once per step, to record it; the watchdog takes it to give a runner
up, and a runner that finds itself replaced throws its step's result away: a late return
can never touch another step's deadline, the UIF, or the report.
"""

from __future__ import annotations

import _thread
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sof_core.config import SOFConfig
from sof_core.errors import (
    SkillDependencyError,
    SkillNotRunError,
    SkillNotStartedError,
    SkillTimeoutError,
    SOFError,
    exceeded_total_timeout,
    stopped_when,
)
from sof_core.execution import observers
from sof_core.execution.deadlines import (
    Slot,
    clock,
    restart_slot,
    set_thread_slot,
    thread_slot,
)
from sof_core.execution.failures import describe_failure, error_text
from sof_core.execution.fanout import NOT_STARTED, QUEUED, RUNNING, FanOut, PoolCall
from sof_core.execution.report import RunStatus, SkillResult, SkillStatus
from sof_core.execution.step import (
    _FAILURE,
    Outcome,
    _perf,
    check_outputs,
    check_returned,
    commit_merge,
    execute_step,
    merge_logs,
    merge_outcome,
    prepare_merge,
    run_step,
)
from sof_core.execution.threads import ABANDONED, DaemonPool
from sof_core.execution.watchdog import Entry, watchdog
from sof_core.graph.compile import CompiledPlan, Step
from sof_core.plugins import PluginManager
from sof_core.skills.views import (
    ATOMIC,
    RunFreeze,
    ScopedData,
    _new,
    _set_extra,
    _set_fields_set,
    _set_private,
    extra_frozen_fields,
    own_writes,
)
from sof_core.uif import UIF

if TYPE_CHECKING:
    from sof_core.execution.resources import EngineThreads

log = logging.getLogger("sof.coordinator")

#: How long past its deadline an isolated step may take to come back: its worker process is
#: killed at the deadline and the step returns a timeout itself.
ISOLATION_GRACE = 1.0
#: How soon the watchdog looks again when a run's lock is busy (it never waits for it).
LOCK_RETRY = 0.001
_INF = math.inf


class Resumable(Protocol):
    """A stage in progress that a new runner collects after the one running it was given
    up on (``FanOut``; the asyncio executor's stage handed over)."""

    def wait(self) -> list[Outcome] | None: ...


@runtime_checkable
class Executor(Protocol):
    """What an executor implements; ``run_stage`` returns one outcome per step, in order."""

    name: str
    #: False means "run every skill alone": the coordinator then makes every stage width 1.
    concurrent: bool

    def run_stage(self, run: RunContext, steps: Sequence[Step]) -> list[Outcome]: ...


def timeout_outcome(step: Step, duration: float, attempts: int = 1,
                    message: str | None = None) -> Outcome:
    """The outcome recorded for a skill that was abandoned at its timeout."""
    error = SkillTimeoutError(
        message or f"did not finish within {step.timeout}s; abandoned", step.name
    )
    return Outcome(step, None, None, None, None, error, duration, attempts)


def broken_stage(executor: Any, steps: Sequence[Step], outcomes: object) -> TypeError:
    """What a run says of an executor whose ``run_stage`` broke its contract (one
    ``Outcome`` per step, for exactly the stage's steps): the run fails naming the executor
    (``_crashed``), instead of waiting for its total timeout or blaming a later skill."""
    names = ", ".join(step.name for step in steps)
    if outcomes is None:
        got = "None"
    else:
        try:
            got = f"{len(outcomes)} outcome(s)"  # type: ignore[arg-type]
        except Exception:
            got = f"a {type(outcomes).__name__}"
        got += " that are not one per step"
    return TypeError(
        f"run_stage returned {got} for the stage of {len(steps)} step(s) ({names}); an "
        f"executor returns one Outcome per step of the stage (docs/api.md, 'Writing an "
        f"executor'): fix or remove executor {getattr(executor, 'name', executor)!r}")


def _interrupts(error: BaseException) -> bool:
    """KeyboardInterrupt: recorded against the skill, then raised (docs/errors.md: the one
    exception that leaves ``execute_plan``). Any other a skill raises, ``SystemExit``,
    ``GeneratorExit``, a ``CancelledError`` of its own or a bare ``BaseException``
    included, is that skill's failure and stays in the report."""
    return isinstance(error, KeyboardInterrupt)


class RunContext:
    """One run of a compiled plan; executors call back into it to run steps."""

    # Where every run starts; class-level, so a run stores only what it changes.
    stage_index = 0
    failed = False
    stop_status: RunStatus | None = None
    #: A KeyboardInterrupt a skill raised: reported, then raised.
    interrupt: BaseException | None = None
    #: The live runner's slot; None once the run is over. A runner whose slot is no
    #: longer this one has been replaced and records nothing more.
    slot: Slot | None = None
    finished = False
    #: The walk happens in runner threads (``supervise``), not in the caller's.
    supervised = False
    total_deadline = _INF
    #: The earliest deadline armed with the watchdog for this run (a hint, see _arm).
    armed = _INF
    _waiter: Any = None
    #: The run's own watch looks at its pool calls' deadlines (a run on an event loop:
    #: ``arun._RunWatch``); otherwise each call arms its own.
    watches_calls = False

    def __init__(
        self,
        plugins: PluginManager,
        config: SOFConfig,
        compiled: CompiledPlan,
        uif: UIF,
        executor: Executor,
        threads: EngineThreads | None = None,
    ) -> None:
        if threads is None:
            from sof_core.execution.resources import default_threads

            threads = default_threads()
        self.plugins = plugins
        self.config = config
        self.compiled = compiled
        self.uif = uif
        self.executor = executor
        self.threads = threads
        self.hung = hung = threads.hung
        #: Skills failing fast; the engine's set, read per step (usually empty).
        self.quarantined = hung.quarantined
        self.lock = _thread.allocate_lock()
        self.results: list[SkillResult] = []
        self.errors: list[str] = []
        self._entries: list[Entry] = []
        #: Pool calls of the stage in progress (given up on or reported at the run's end).
        self.calls: list[PoolCall] = []
        self._fanouts: list[FanOut] = []
        #: Observer notifications recorded under the lock, sent outside it.
        self._notes: list[tuple[str, dict[str, Any]]] = []
        #: Set by a walk on an event loop: it awaits the notes itself (``arun._tell``).
        self.defer_notes = False
        #: The run hooks' observers, as the run starts (``PluginManager.run_observers``).
        self.observing = observing = plugins.run_observers()
        self._after_skill = bool(observing["sof_after_skill"])
        self._alerts = bool(observing["sof_alert"])
        self.min_timeout = compiled.min_timeout
        if executor.concurrent:
            self.stages: tuple[tuple[str, ...], ...] = compiled.stages
            self.step_stages = compiled.step_stages
        else:
            self.stages = compiled.sequential_stages
            self.step_stages = compiled.sequential_step_stages
        self._before = self._notify_before if observing["sof_before_skill"] else None
        self._backoff = config.retry_backoff
        #: The UIF's container fields are read-only while the run goes (see ``RunFreeze``).
        self.frozen = RunFreeze(extra_frozen_fields(type(uif)))

    # --- called by executors -------------------------------------------------------------

    def execute(self, step: Step) -> Outcome:
        """Run one step in the current thread (retries included, no deadline watching)."""
        return execute_step(step, self.uif, self._backoff, self._before)

    def call_inline(self, step: Step) -> Outcome:
        """Run one step in the run's thread, under the watchdog (its deadline starts now)."""
        slot = self.runner_slot()
        if slot is None:  # not one of this run's runners: nothing watches this thread
            return execute_step(step, self.uif, self._backoff, self._before)
        if self.slot is not slot:  # this runner was replaced: run nothing more
            return timeout_outcome(step, 0.0, 0, "not run: its stage was abandoned")
        outcome = self._run_here(step, slot, self.stage_index)
        if outcome is None:
            return timeout_outcome(step, 0.0, 1, "abandoned at its timeout")
        return outcome

    def fan_out(self, steps: Sequence[Step]) -> list[Outcome] | None:
        """Run a wide stage: the first step in this thread, the others in the engine's
        step pool; every outcome in plan order. None when this runner was replaced while
        its own step ran (the runner that replaced it collects the stage)."""
        slot = self.runner_slot()
        if slot is not None and self.slot is not slot:
            return None
        fan = FanOut(steps)
        self.submit(steps[1:], fan.put, first_index=1)
        if slot is None:
            first = execute_step(steps[0], self.uif, self._backoff, self._before)
        else:
            self._fanouts.append(fan)
            slot.fanout = fan
            ran = self._run_here(steps[0], slot, self.stage_index)
            slot.fanout = None
            if ran is None:
                return None
            first = ran
        fan.put(0, first)
        return fan.wait()

    def submit(self, steps: Sequence[Step], deliver: Callable[[int, Outcome], None],
               first_index: int = 0, eager: bool = True) -> None:
        """Send ``steps`` to the engine's step pool; each outcome goes to ``deliver``.

        ``eager=False`` lets them wait for a busy thread instead of starting new ones
        (``DaemonPool.submit``): for the sync skills of runs on an event loop.
        """
        if not steps:
            return
        pool = self.threads.steps()
        calls = [PoolCall(self, step, self.stage_index, index, deliver)
                 for index, step in enumerate(steps, first_index)]
        with self.lock:
            self.calls.extend(calls)
        for call in calls:
            pool.submit(call, eager=eager)

    def timed_out(self, step: Step, duration: float) -> Outcome:
        return timeout_outcome(step, duration)

    def before_skill(self, step: Step, view: UIF) -> None:
        """Tell observers a skill is about to run (for executors that build views themselves)."""
        if self._before is not None:
            self._before(step, view)

    def _notify_before(self, step: Step, view: UIF) -> None:
        """``sof_before_skill``, in the thread about to run the skill: its observers' time
        is not the skill's. While they are told, the step's deadline is pushed back by the
        observers' bound (``observer_timeout``), so no watcher gives up on the skill for a
        slow observer; then it starts afresh. A retry's attempts share the first one's
        deadline, as before (their observers are told within it)."""
        slot = thread_slot()
        bound = self.config.observer_timeout
        if (slot is None or slot.step is not step or bound is None
                or step.timeout is None or slot.deadline == _INF
                or (slot.retried is not None and slot.retried[0] is step)):
            self._observe("sof_before_skill", skill=step.spec, uif=view)
            return
        slot.deadline += bound
        try:
            self._observe("sof_before_skill", skill=step.spec, uif=view)
        finally:
            restart_slot(slot, step.timeout)

    def _observe(self, hook_name: str, **kwargs: Any) -> None:
        """Notify an observer hook, each call given at most ``observer_timeout`` (an
        observer that hangs is blamed and left behind, not the skill or the run)."""
        observers.notify(self.plugins, self.threads, self.config.observer_timeout,
                         hook_name, **kwargs)

    def runner_slot(self) -> Slot | None:
        """This thread's slot if the thread is (or was) one of this run's runners."""
        slot = thread_slot()
        return slot if slot is not None and slot.owner is self else None

    def track_fanout(self, fan: FanOut) -> None:
        """A wide stage an executor collects itself: the run's end (its total timeout)
        keeps the outcomes that came in time and wakes whoever waits for the rest."""
        with self.lock:
            self._fanouts.append(fan)

    def _run_here(self, step: Step, slot: Slot, stage: int) -> Outcome | None:
        """One step in this runner thread, noted in its slot; None if it was given up on."""
        if self.quarantined and step.name in self.quarantined:
            return self.quarantine_outcome(step)
        now = slot.started = clock()
        deadline = now + step.timeout if step.timeout is not None else _INF
        slot.deadline = deadline
        slot.stage = stage
        slot.step = step
        if deadline < self.armed:
            self._arm(deadline)
        outcome = execute_step(step, self.uif, self._backoff, self._before, slot)
        with self.lock:
            if self.slot is not slot:
                self._returned_late(slot, step)
                return None
            slot.step = None
        return outcome

    # --- the walk over stages ------------------------------------------------------------

    def drive_inline(self) -> None:
        """Run every stage in the caller's thread: for runs with no timeout at all."""
        self.frozen.freeze_uif(self.uif.__dict__, self.compiled.read_only_order)
        try:
            self._walk(0, None)
        except BaseException as exc:
            self._crashed(exc)
        finally:
            self.finish()

    def _walk(self, start: int, slot: Slot | None, resume: Resumable | None = None) -> bool:
        """Run the stages from ``start``; False if this walk was replaced on the way.

        ``slot`` is the runner's (None for an inline run: nothing else touches the run, so
        no lock is taken). ``resume`` is the wide stage at ``start`` whose first step the
        replaced runner was running: its outcomes are collected first.
        """
        uif = self.uif
        uif_type = type(uif)
        frozen = self.frozen
        executed, timings = frozen.executed, frozen.timings  # the run froze the UIF first
        lock = self.lock if slot is not None else None
        run_stage = self.executor.run_stage
        # Executors that say so run a stage of one skill in the run's thread anyway (the
        # built-ins do); then the walk calls the skill itself and saves a few calls per
        # skill (the per-skill cost is the headline number).
        direct = getattr(self.executor, "inline_single_steps", False) is True
        backoff, before, apply = self._backoff, self._before, self._apply
        results, after, quarantined = self.results, self._after_skill, self.quarantined
        stages = self.step_stages
        if resume is not None:
            outcomes = resume.wait()
            if outcomes is None or not self._record_stage(slot, outcomes, start, ()):
                return False
            start += 1
        for index in range(start, len(stages)):
            if self.stop_status is not None:
                break
            self.stage_index = index
            stage = stages[index]
            if direct and len(stage) == 1:
                step = stage[0]
                data = uif.__dict__["intermediate_data"]
                for key in step.required_data:
                    if key not in data:
                        break  # _ready_steps records why it is skipped, below
                else:
                    if quarantined and step.name in quarantined:
                        if not self._record_stage(slot, [self.quarantine_outcome(step)], index, ()):
                            return False
                        continue
                    if slot is not None:  # noted for the watchdog: deadline before step
                        now = slot.started = clock()
                        deadline = now + step.timeout if step.timeout is not None else _INF
                        slot.deadline = deadline
                        slot.stage = index
                        slot.step = step
                        if deadline < self.armed:
                            self._arm(deadline)
                    view: UIF | None
                    scope: ScopedData | None
                    error: BaseException | None
                    if step.plain:
                        # run_step for a plain step (sync, in this thread, no retries, no
                        # container fields of its own), inlined: the per-skill cost is the
                        # headline number, and this is the step almost every plan is made of.
                        # Same view, same checks; anything unusual takes the general path.
                        attempts = 1
                        started = _perf()
                        source = uif.__dict__
                        status = source["status"]
                        scope = step.scope_type(step.name, source["intermediate_data"],
                                                step.readable, step.writable,
                                                step.writable_fields)
                        view = _new(uif_type)
                        fields = view.__dict__
                        fields.update(source)
                        fields["intermediate_data"] = scope
                        fields["log_trace"] = []
                        fields["warnings"] = []
                        fields["skill_outputs"] = {}
                        _set_fields_set(view, set(uif.__pydantic_fields_set__))
                        _set_extra(view, None)
                        _set_private(view, {"_sof_guard": scope})
                        try:
                            if before is not None:
                                before(step, view)
                            returned = step.instance.execute(view)
                            if ((returned is not view and returned is not None)
                                    or view.__dict__["status"] is not status
                                    or status == _FAILURE):
                                returned = check_returned(step, view, returned)
                            else:
                                returned = view
                            error = None
                        except BaseException as exc:  # as run_step with no retries left
                            returned = view = scope = None
                            error = exc
                        duration = _perf() - started
                    else:
                        returned, view, scope, error, duration, attempts = run_step(
                            step, uif, backoff, before, slot
                        )
                    # Checked here, under the step's deadline and outside the lock: the
                    # skill's values and exception are its own code (an output's __class__
                    # or an exception's __str__ may hang); under the lock only stores.
                    merge = None
                    if error is None:
                        try:
                            if (returned is view and step.plain and scope is not None
                                    and not scope.written_fields):
                                # prepare_merge for a plain step that wrote data keys only,
                                # inlined (same checks, same order).
                                for value in scope.written.values():
                                    if type(value) not in ATOMIC:
                                        own_writes(scope.written)
                                        break
                                if step.output_checks and scope.written:
                                    check_outputs(step, scope.written)
                            else:
                                merge = prepare_merge(step, returned, view, scope, scope)
                        except BaseException as exc:
                            error = exc
                    failure = describe_failure(step, error) if error is not None else None
                    if lock is not None:
                        lock.acquire()
                        if self.slot is not slot:
                            lock.release()
                            self._returned_late(slot, step)  # type: ignore[arg-type]
                            return False
                        slot.step = None  # type: ignore[union-attr]
                    try:
                        if error is None:
                            if merge is None:  # commit_merge for the plain step, inlined
                                writes = scope.written  # type: ignore[union-attr]
                                if writes:
                                    uif.__dict__["intermediate_data"].update(writes)
                                produced = view.__dict__
                                if (produced["log_trace"] or produced["warnings"]
                                        or produced["skill_outputs"]):
                                    merge_logs(uif, produced)
                                executed.append(step.name)
                                timings[step.name] = duration
                            else:
                                commit_merge(uif, step, merge, duration, frozen)
                        if error is None:
                            result = SkillResult(step.name, "success", duration, attempts,
                                                 index, None, None, step.plugin)
                            results.append(result)
                        else:
                            apply(Outcome(step, None, None, None, None, error, duration,
                                          attempts, failure), index)
                    finally:
                        if lock is not None:
                            lock.release()
                    if error is None:
                        if after:
                            self._observe("sof_after_skill", skill=step.spec,
                                          result=result)
                    elif self._notes:
                        self._flush()
                    continue
            steps, skipped = self._ready_steps(stage)
            if skipped and not self._record_stage(slot, (), index, skipped):
                return False
            if not steps:
                continue
            outcomes = run_stage(self, steps)
            if outcomes is None:
                if slot is not None and self.slot is not slot:
                    return False  # this runner was replaced meanwhile (the built-ins say so)
                raise broken_stage(self.executor, steps, outcomes)
            if len(outcomes) != len(steps) or {id(getattr(o, "step", None)) for o in outcomes} \
                    != {id(step) for step in steps}:
                raise broken_stage(self.executor, steps, outcomes)
            if not self._record_stage(slot, outcomes, index, ()):
                return False
        else:
            self.stage_index = len(stages)
        return True

    def _record_stage(self, slot: Slot | None, outcomes: Sequence[Outcome], index: int,
                      skipped: Sequence[SkillResult]) -> bool:
        """Record a stage's outcomes in plan order; False if this walk was replaced."""
        if slot is not None:
            self.lock.acquire()
            if self.slot is not slot:
                self.lock.release()
                return False
        try:
            for result in skipped:
                self._record(result)
            for outcome in outcomes:
                self._apply(outcome, index)
            self.calls.clear()
        finally:
            if slot is not None:
                self.lock.release()
        if self._notes:
            self._flush()
        return True

    def quarantine_outcome(self, step: Step) -> Outcome:
        """``step`` fails fast, unrun: too many of its calls are still hung (``hung.py``)."""
        return Outcome(step, None, None, None, None, self.hung.error(step.name), 0.0, 0)

    def _crashed(self, exc: BaseException) -> None:
        """An executor (not a skill) raised: the run fails with the reason."""
        log.exception("executor %s crashed", self.executor.name)
        self.errors.append(f"executor {self.executor.name!r} crashed: "
                           f"{type(exc).__name__}: {error_text(exc)}")
        self.failed = True
        self.stop_status = "failure"
        if _interrupts(exc) and self.interrupt is None:
            self.interrupt = exc

    def finish(self) -> None:
        """The walk is over: give the UIF back its own container fields, among them the
        ``executed_skills`` and ``skill_timings`` the coordinator filled in meanwhile."""
        self.frozen.thaw_uif(self.uif.__dict__)

    # --- supervision: the caller's side ----------------------------------------------------

    def supervise(self, total_deadline: float) -> None:
        """Hand the walk to a runner thread and wait until the run is over (the runner
        finished, or the watchdog ended the run at its total deadline)."""
        self.frozen.freeze_uif(self.uif.__dict__, self.compiled.read_only_order)
        self.total_deadline = total_deadline
        # Every step starts from now on, so none is due before now + the shortest timeout:
        # one deadline for the whole run, moved only when the watchdog finds it early.
        first = min(total_deadline, clock() + self.min_timeout)
        waiter = self._waiter = _thread.allocate_lock()
        waiter.acquire()
        self.supervised = True
        slot = self.slot = Slot(self, total_deadline)
        try:
            if first != _INF:
                self._arm(first)
            self.threads.runners().submit(self._runner, slot, 0, None)
            waiter.acquire()  # released by _end (runner or watchdog)
        except BaseException as exc:  # Ctrl-C while waiting, or no thread could start
            with self.lock:
                if not self.finished:
                    self.errors.append(f"run interrupted: {exc!r}")
                    self.failed = True
                    self.stop_status = self.stop_status or "failure"
                    self._end()
            raise
        finally:
            dog = watchdog() if self._entries else None
            for entry in self._entries:
                dog.cancel(entry)  # type: ignore[union-attr]
            with self.lock:
                self.finish()
            if self._notes:
                self._flush()

    def _runner(self, slot: Slot, start: int, resume: Resumable | None) -> object:
        """A runner thread's job: walk from ``start`` until done or replaced."""
        set_thread_slot(slot)
        try:
            if self._notes:
                self._flush()
            completed = self._walk(start, slot, resume)
        except BaseException as exc:  # an executor bug must not hang the caller
            with self.lock:
                if self.slot is slot:
                    self._crashed(exc)
                    self._end()
            return ABANDONED if slot.abandoned else None
        finally:
            set_thread_slot(None)
        if not completed:
            return ABANDONED if slot.abandoned else None
        with self.lock:
            if self.slot is slot:
                self._end()
        return None

    def _end(self) -> None:
        """The run is over (under the lock): no runner records anything more, the caller
        goes on."""
        if self.finished:
            return
        self.finished = True
        self.slot = None
        for fan in self._fanouts:
            fan.abort()
        if self._waiter is not None:
            self._waiter.release()

    def watch_from(self, deadline: float) -> None:
        """A step of this run has a new ``deadline`` (it started late: an isolated step
        that waited for a worker): the run is looked at by then."""
        if deadline < self.armed:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        """Have the watchdog look at this run at ``deadline``. ``armed`` only ever says
        there is an entry at least that early; an extra entry costs one spare look."""
        self.armed = deadline
        self._entries.append(watchdog().arm(deadline, self._on_deadline))

    # --- the watchdog's side ---------------------------------------------------------------

    def _on_deadline(self, now: float) -> None:
        """The watchdog's callback: end the run at its total deadline, give up on a step
        past its own, or move the deadline to the step now in progress."""
        lock = self.lock
        if not lock.acquire(blocking=False):  # a runner is recording a step: a moment later
            self._entries.append(watchdog().arm(now + LOCK_RETRY, self._on_deadline))
            return
        try:
            if self.finished:
                return
            self.armed = _INF  # from here on, a runner starting a step arms it itself
            if now >= self.total_deadline:
                self._abandon_all(now)
                return
            later = self.total_deadline
            slot = self.slot
            step = slot.step if slot is not None else None
            if slot is None or step is None:  # between steps: the next one starts after now
                later = min(later, now + self.min_timeout)
            elif now < slot.deadline:
                later = min(later, slot.deadline)
            else:
                again = self.look_again_at(slot, step, now)
                if again is None:
                    self._replace_runner(slot, step, now)
                    again = now + self.min_timeout
                later = min(later, again)
            if not self.finished and later != _INF:
                self._arm(later)
        finally:
            lock.release()

    def look_again_at(self, slot: Slot, step: Step, now: float) -> float | None:
        """A step is past its deadline: when to look again, or None to give up on it now.

        An isolated step's worker process is killed at the deadline and the step comes back
        with its own timeout: it gets ``ISOLATION_GRACE``. An async step is cancelled for
        real, and gets ``CANCEL_GRACE`` to end; one blocking its event loop is given up on
        at once, and one whose loop another skill blocked gets the time it lost.
        """
        if step.isolation == "process":
            grace = slot.deadline + ISOLATION_GRACE
            return grace if now < grace else None
        call = slot.call
        if call is None or call.done:
            return None
        if call.verdict is not None:  # cancelled already, and still running
            return None
        # Only async skills have a call here: asyncio stays unimported for sync-only plans.
        from sof_core.execution.aio import (
            BLAME,
            CANCEL,
            CANCEL_GRACE,
            RECHECK,
            cancel_soon,
            overrun,
        )

        action = overrun(call, now)
        if action == RECHECK:
            deadline: float = call.deadline
            slot.deadline = deadline
            return deadline
        if action == CANCEL:
            cancel_soon(call)
            return now + CANCEL_GRACE
        assert action == BLAME
        return None

    def give_up(self, slot: Slot, step: Step, now: float, pool: DaemonPool,
                call: Any = None) -> Outcome:
        """A call is given up on (under the lock): its thread's place goes to a new
        thread, it counts as hung until it returns, and observers hear of it. ``call``:
        the async call to report when it is not the slot's own (one of a wide stage
        awaited on the runner's loop)."""
        slot.abandoned = True
        pool.abandon()
        running, quarantined = self.hung.abandoned(step.name)
        attempts = slot.attempts(step)
        started = slot.started if call is None else call.started
        call = slot.call if call is None else call
        message = call.verdict if call is not None and call.verdict else None
        outcome = timeout_outcome(step, now - started, attempts, message)
        if self._alerts:
            self._notes.append(("sof_alert", {
                "kind": "skill_abandoned",
                "message": f"{step.name}: abandoned at its {step.timeout}s timeout; "
                           f"{running} call(s) of it still running",
                "details": {"skill": step.name, "still_running": running,
                            "timeout": step.timeout},
            }))
            if quarantined:
                self._notes.append(("sof_alert", {
                    "kind": "skill_quarantined",
                    "message": self.hung.error(step.name).args[0],
                    "details": {"skill": step.name, "still_running": running,
                                "limit": self.hung.limit},
                }))
        return outcome

    def give_up_call(self, slot: Slot, call: Any, now: float) -> Outcome:
        """(Under the lock.) Give up on the runner in ``slot``, stuck in the async ``call``
        (an ``AsyncCall`` blamed for blocking the runner's loop, one of a wide stage)."""
        return self.give_up(slot, call.step, now, self.threads.runners(), call)

    def hand_over(self, slot: Slot, resume: Resumable) -> None:
        """(Under the lock.) The runner in ``slot`` was given up on in the middle of the
        stage in progress: a new runner collects that stage through ``resume`` and goes
        on from there."""
        new = self.slot = Slot(self, self.total_deadline)
        self.threads.runners().submit(self._runner, new, self.stage_index, resume)

    def _replace_runner(self, slot: Slot, step: Step, now: float) -> None:
        """Give up on the runner's step (under the lock) and go on in a new runner."""
        outcome = self.give_up(slot, step, now, self.threads.runners())
        self.slot = None
        fan = slot.fanout
        if fan is not None:  # a wide stage: its other steps go on; a new runner collects
            fan.put(0, outcome)
            start = slot.stage
        else:
            self._apply(outcome, slot.stage)
            start = slot.stage + 1
            if self.stop_status is not None:
                self._end()
                return
        new = self.slot = Slot(self, self.total_deadline)
        self.threads.runners().submit(self._runner, new, start, fan)

    def _abandon_all(self, now: float, awaited: Mapping[str, float] | None = None) -> None:
        """Total timeout (under the lock): whatever is not finished is recorded, running
        calls are given up on, and the caller goes on. ``awaited``: the start times of the
        async steps a run on an event loop was awaiting, by name."""
        slot = self.slot
        busy = self.threads.steps().stats()["live"] if self.calls else 0  # before giving up
        # What each step cut short had spent: (seconds, attempts), as its report says.
        spent = {name: (now - started, 1) for name, started in (awaited or {}).items()}
        never_started = set()
        #: steps still waiting for an isolation worker process: they never started either
        no_worker = set()
        if slot is not None and slot.step is not None:
            waiting = slot.waiting
            cut = self.give_up(slot, slot.step, now, self.threads.runners())
            if waiting:
                no_worker.add(cut.step.name)
            else:
                spent[cut.step.name] = (cut.duration, cut.attempts)
        for call in self.calls:
            call_slot = call.slot
            state = call.end_with_run(now)
            if state == QUEUED:
                never_started.add(call.step.name)
            elif state == RUNNING and call_slot is not None:
                if call_slot.waiting:
                    no_worker.add(call.step.name)
                else:
                    spent[call.step.name] = (now - call_slot.started,
                                             call_slot.attempts(call.step))
        fan = self._fanouts[-1] if self._fanouts else None
        if fan is not None and fan.pending and not fan.aborted:  # keep what ended in time
            for outcome in fan.outcomes:
                if outcome is not None:
                    self._apply(outcome, self.stage_index)
        finished = {r.skill for r in self.results}
        timeout = self.config.total_timeout
        cut_short: list[str] = []
        for number, stage in enumerate(self.stages[self.stage_index :], self.stage_index):
            for name in stage:
                if name in finished:
                    continue
                step = self.compiled.steps[name]
                if name in never_started:
                    self.results.append(self._not_started(step, number, busy))
                    continue
                if name in no_worker:
                    self.results.append(self._no_worker(step, number))
                    continue
                status: SkillStatus = "timeout" if number == self.stage_index else "skipped"
                if status == "timeout":
                    cut_short.append(name)
                duration, attempts = spent.get(name, (0.0, 0))
                self.results.append(
                    SkillResult(name, status, duration, attempts, number,
                                exceeded_total_timeout(timeout),
                                "RunTimeoutError", step.plugin)
                )
        line = exceeded_total_timeout(timeout)
        if cut_short:  # the skills it was waiting for: the ones to look at
            if self.uif.__dict__["error_details"] is None:
                self.uif.__dict__["error_details"] = f"{cut_short[0]}: {line}"
            verb = "was" if len(cut_short) == 1 else "were"
            line += f" while {', '.join(cut_short)} {verb} running"
        self.errors.append(line)
        self.stop_status = "timeout"
        self.failed = True
        self._end()

    def _not_started(self, step: Step, stage: int, busy: int) -> SkillResult:
        pool = self.threads.steps()
        return self._never_started(
            step, stage, f"the {busy} threads of the engine's step pool (max_workers "
            f"{pool.max_workers}) stayed busy", "it starts")

    def _no_worker(self, step: Step, stage: int) -> SkillResult:
        return self._never_started(
            step, stage, "every isolation worker process stayed busy",
            "a worker takes it (raise isolation_workers or shorten the calls)")

    def _never_started(self, step: Step, stage: int, busy: str, starts: str) -> SkillResult:
        """A step still waiting for a thread or a worker when the run's total_timeout ended
        it: ``skipped``, ``SkillNotStartedError``, not a timeout (it never ran)."""
        error = SkillNotStartedError(
            f"never started: {busy} until the run's total_timeout of "
            f"{self.config.total_timeout}s; its own timeout starts when {starts}",
            step.name,
        )
        return SkillResult(step.name, "skipped", 0.0, 0, stage, error_text(error),
                           type(error).__name__, step.plugin)

    def not_run(self) -> list[SkillResult]:
        """The planned skills a stopped run never reached (under the lock), so that the
        report has one result per skill. Not in ``errors``: the failure that stopped the
        run is there already."""
        if self.stop_status is None:
            return []
        done = {r.skill for r in self.results}
        unrun = [(number, name) for number, stage in enumerate(self.stages)
                 for name in stage if name not in done]
        if not unrun:
            return []
        first = next((r for r in self.results if r.status != "success"), None)
        if first is not None and self.interrupt is not None:
            why = (f"the run stopped when {first.skill!r} raised "
                   f"{type(self.interrupt).__name__}")
        elif first is not None and not self.config.continue_on_skill_failure:
            why = stopped_when(first.skill, first.status)
        else:
            why = f"the run stopped: {self.errors[0] if self.errors else self.stop_status}"
        results = []
        for number, name in unrun:
            error = SkillNotRunError(f"not run: {why}", name)
            results.append(SkillResult(name, "skipped", 0.0, 0, number, error_text(error),
                                       type(error).__name__,
                                       self.compiled.steps[name].plugin))
        return results

    def _returned_late(self, slot: Slot, step: Step) -> None:
        """A replaced runner's step came back: its result is thrown away."""
        if slot.abandoned:
            self.hung.returned(step.name)

    # --- recording ---------------------------------------------------------------------------

    def _ready_steps(
        self, stage: Sequence[Step]
    ) -> tuple[Sequence[Step], Sequence[SkillResult]]:
        """Steps whose required inputs are present; the others are skipped with the reason."""
        data = self.uif.__dict__["intermediate_data"]
        for step in stage:  # fast path: usually every input is there
            for key in step.required_data:
                if key not in data:
                    return self._split_ready(stage, data)
        return stage, ()

    def _split_ready(
        self, stage: Sequence[Step], data: Mapping[str, Any]
    ) -> tuple[list[Step], list[SkillResult]]:
        ready: list[Step] = []
        skipped: list[SkillResult] = []
        for step in stage:
            name = step.name
            missing = [k for k in step.required_data if k not in data]
            if not missing:
                ready.append(step)
                continue
            key = missing[0]
            producer = step.producer_of.get(key)
            why = f"its producer {producer!r} did not write it" if producer else "nobody wrote it"
            error = SkillDependencyError(f"required input {key!r} is missing: {why}", name)
            skipped.append(
                SkillResult(name, "skipped", 0.0, 0, self.stage_index, error_text(error),
                            type(error).__name__, step.plugin)
            )
        return ready, skipped

    def _apply(self, outcome: Outcome, stage: int) -> None:
        step = outcome.step
        error = outcome.error
        if error is None:
            try:
                merge_outcome(self.uif, outcome, self.frozen)
            except SOFError as exc:
                error = exc
        if error is None:  # the common case: _record's success path, inlined
            result = SkillResult(step.name, "success", outcome.duration, outcome.attempts, stage,
                                 None, None, step.plugin)
            self.results.append(result)
            if self._after_skill:
                self._notes.append(("sof_after_skill", {"skill": step.spec, "result": result}))
            return
        status: SkillStatus = ("timeout" if isinstance(error, SkillTimeoutError)
                               else "skipped" if isinstance(error, SkillNotStartedError)
                               else "failed")
        # Described by the thread that ran the skill; else SOF's own error (a refused
        # write found in the merge above, a timeout), which is safe to read here.
        message, error_type, trace, location = (outcome.failure
                                                or describe_failure(step, error))
        self._record(SkillResult(step.name, status, outcome.duration, outcome.attempts, stage,
                                 message, error_type, step.plugin, trace, location))
        if _interrupts(error):  # reported against the skill; the coordinator raises it
            if self.interrupt is None:
                self.interrupt = error
            self.stop_status = self.stop_status or "failure"

    def _record(self, result: SkillResult) -> None:
        self.results.append(result)
        if result.status != "success":
            self.failed = True
            self.errors.append(f"{result.skill}: {result.error_type}: {result.error}")
            if self.uif.__dict__["error_details"] is None:
                self.uif.__dict__["error_details"] = f"{result.skill}: {result.error}"
            if not self.config.continue_on_skill_failure and self.stop_status is None:
                self.stop_status = ("timeout" if result.status == "timeout"
                                    or result.error_type == "SkillNotStartedError"
                                    else "failure")
            if self._alerts:
                self._notes.append(("sof_alert", {
                    "kind": f"skill_{result.status}",
                    "message": f"{result.skill}: {result.error}",
                    "details": result.to_dict(),
                }))
        if self._after_skill:
            self._notes.append(("sof_after_skill", {
                "skill": self.compiled.steps[result.skill].spec, "result": result,
            }))

    def _flush(self) -> None:
        """Send the notifications recorded under the lock (observers never run under it)."""
        if self.defer_notes:
            return
        with self.lock:
            notes, self._notes = self._notes, []
        for hook, kwargs in notes:
            self._observe(hook, **kwargs)

    def status(self) -> RunStatus:
        if self.stop_status is not None:
            return self.stop_status
        if not self.failed:
            return "success"
        return "partial" if any(r.status == "success" for r in self.results) else "failure"


__all__ = ["ISOLATION_GRACE", "NOT_STARTED", "Executor", "RunContext", "timeout_outcome"]
