"""One run of a compiled plan: the walk over its stages, deadlines, and what is recorded.

The walk happens in a runner thread while the calling thread supervises deadlines. A skill
that hangs past its timeout is recorded as timed out and the run goes on in a fresh runner;
whatever the hung skill does later is discarded (each runner carries a generation number).
When no timeout applies at all, the run walks its stages inline in the caller's thread.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from sof_core.config import SOFConfig
from sof_core.errors import SkillDependencyError, SkillTimeoutError, SOFError
from sof_core.execution.report import RunStatus, SkillResult, SkillStatus
from sof_core.execution.step import (
    Outcome,
    execute_step,
    failure_trace,
    merge_outcome,
    merge_writes,
    run_step,
)
from sof_core.graph.compile import CompiledPlan, Step
from sof_core.plugins import PluginManager
from sof_core.skills.views import RunFreeze, extra_frozen_fields
from sof_core.uif import UIF

log = logging.getLogger("sof.coordinator")
_monotonic = time.monotonic

_RUNNERS = concurrent.futures.ThreadPoolExecutor(max_workers=512, thread_name_prefix="sof-run")


@runtime_checkable
class Executor(Protocol):
    """What an executor implements; ``run_stage`` returns one outcome per step, in order."""

    name: str
    #: False means "run every skill alone": the coordinator then makes every stage width 1.
    concurrent: bool

    def run_stage(self, run: RunContext, steps: Sequence[Step]) -> list[Outcome]: ...


def timeout_outcome(step: Step, duration: float) -> Outcome:
    """The outcome recorded for a skill that was abandoned at its timeout."""
    error = SkillTimeoutError(f"did not finish within {step.timeout}s; abandoned", step.name)
    return Outcome(step, None, None, None, None, error, duration, 1)


def _alert_skill(plugins: PluginManager, result: SkillResult) -> None:
    if plugins.observers("sof_alert"):
        plugins.notify(
            "sof_alert",
            kind=f"skill_{result.status}",
            message=f"{result.skill}: {result.error}",
            details=result.to_dict(),
        )


def _message(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, SOFError) and getattr(error, "skill", None):
        prefix = f"skill {error.skill!r}: "  # type: ignore[attr-defined]
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text or type(error).__name__


class _Watch:
    """The inline step in progress and when it must be done by (read by the supervisor)."""

    __slots__ = ("deadline", "stage", "started", "step")

    def __init__(self, step: Step, stage: int, started: float, deadline: float) -> None:
        self.step = step
        self.stage = stage
        self.started = started
        self.deadline = deadline


class RunContext:
    """One run of a compiled plan; executors call back into it to run steps."""

    #: Set once the walk is over; created by ``supervise`` (inline runs need no event, and
    #: creating one costs more than running a no-op skill).
    done: threading.Event

    def __init__(
        self,
        plugins: PluginManager,
        config: SOFConfig,
        compiled: CompiledPlan,
        uif: UIF,
        executor: Executor,
    ) -> None:
        self.plugins = plugins
        self.config = config
        self.compiled = compiled
        self.uif = uif
        self.executor = executor
        self.lock = threading.Lock()
        self.generation = 0
        self.stage_index = 0
        self.watch: _Watch | None = None
        self.results: list[SkillResult] = []
        self.errors: list[str] = []
        self.failed = False
        self.stop_status: RunStatus | None = None
        self._before_skill = bool(plugins.observers("sof_before_skill"))
        self._after_skill = bool(plugins.observers("sof_after_skill"))
        # The supervisor is not woken per skill (that would cost a thread switch each); it polls
        # at a quarter of the shortest timeout, so an overrun is caught within 1.25x its limit.
        timeouts = compiled.timeouts
        self.poll_interval = min(timeouts) / 4 if timeouts else math.inf
        if executor.concurrent:
            self.stages: tuple[tuple[str, ...], ...] = compiled.stages
            self.step_stages = compiled.step_stages
        else:
            self.stages = compiled.sequential_stages
            self.step_stages = compiled.sequential_step_stages
        self._before = self._notify_before if self._before_skill else None
        self._backoff = self.config.retry_backoff
        #: The UIF's container fields are read-only while the run goes (see ``RunFreeze``).
        self.frozen = RunFreeze(extra_frozen_fields(type(uif)))

    # --- called by executors -------------------------------------------------------------

    def execute(self, step: Step) -> Outcome:
        """Run one step in the current thread (retries included, no deadline watching)."""
        return execute_step(step, self.uif, self._backoff, self._before)

    def call_inline(self, step: Step) -> Outcome:
        """Run one step in the run's thread while the supervisor watches its deadline."""
        if step.timeout is None:  # nothing to watch
            return execute_step(step, self.uif, self._backoff, self._before)
        started = _monotonic()
        self.watch = _Watch(step, self.stage_index, started, started + step.timeout)
        outcome = execute_step(step, self.uif, self._backoff, self._before)
        self.watch = None
        return outcome

    def timed_out(self, step: Step, duration: float) -> Outcome:
        return timeout_outcome(step, duration)

    def before_skill(self, step: Step, view: UIF) -> None:
        """Tell observers a skill is about to run (for executors that build views themselves)."""
        if self._before is not None:
            self._before(step, view)

    def _notify_before(self, step: Step, view: UIF) -> None:
        self.plugins.notify("sof_before_skill", skill=step.spec, uif=view)

    # --- the walk over stages ------------------------------------------------------------

    def drive_inline(self) -> None:
        """Run every stage in the caller's thread: ``drive`` for runs with no timeout at all.

        Nothing else touches the run meanwhile (no supervisor), so there is no lock to take
        and no generation to check; otherwise the walk is exactly ``drive``'s.
        """
        self.frozen.freeze_uif(self.uif.__dict__, self.compiled.read_only_order)
        try:
            uif = self.uif
            frozen = self.frozen
            run_stage = self.executor.run_stage
            # Executors that say so run a stage of one skill inline anyway (the built-ins
            # do); then call the skill here and save three calls per skill.
            direct = getattr(self.executor, "inline_single_steps", False) is True
            backoff, before, apply = self._backoff, self._before, self._apply
            results, after = self.results, self._after_skill
            for index, stage in enumerate(self.step_stages):
                if self.stop_status is not None:
                    break
                self.stage_index = index
                if direct and len(stage) == 1:
                    step = stage[0]
                    data = uif.__dict__["intermediate_data"]
                    for key in step.required_data:
                        if key not in data:
                            break  # let _ready_steps record why it is skipped
                    else:
                        # execute_step + _apply's success path, inlined without the
                        # Outcome object (the per-skill cost is the headline number)
                        returned, view, scope, error, duration, attempts = run_step(
                            step, uif, backoff, before
                        )
                        if error is None:
                            try:
                                merge_writes(uif, step, returned, view, scope, scope, duration,
                                             frozen)
                            except SOFError as exc:
                                error = exc
                        if error is not None:
                            apply(Outcome(step, None, None, None, None, error, duration,
                                          attempts), index)
                            continue
                        result = SkillResult(step.name, "success", duration, attempts, index,
                                             None, None, step.plugin)
                        results.append(result)
                        if after:
                            self.plugins.notify("sof_after_skill", skill=step.spec,
                                                       result=result)
                        continue
                steps, skipped = self._ready_steps(stage)
                outcomes = run_stage(self, steps) if steps else ()
                for result in skipped:
                    self._record(result)
                for outcome in outcomes:
                    apply(outcome, index)
            else:
                self.stage_index = len(self.step_stages)
        except BaseException as exc:
            log.exception("executor %s crashed", self.executor.name)
            self.errors.append(f"executor {self.executor.name!r} crashed: {exc!r}")
            self.failed = True
            self.stop_status = "failure"
        finally:
            self.finish()

    def finish(self) -> None:
        """The walk is over: give the UIF back its own container fields, among them the
        ``executed_skills`` and ``skill_timings`` the coordinator filled in meanwhile."""
        self.frozen.thaw_uif(self.uif.__dict__)

    def drive(self, generation: int) -> None:
        """Run stages from ``stage_index`` until done, stopped, or superseded."""
        try:
            while True:
                with self.lock:
                    if generation != self.generation or self.done.is_set():
                        return
                    index = self.stage_index
                    if index >= len(self.stages) or self.stop_status is not None:
                        self.done.set()
                        return
                steps, skipped = self._ready_steps(self.step_stages[index])
                outcomes = self.executor.run_stage(self, steps) if steps else []
                with self.lock:
                    if generation != self.generation:
                        return  # superseded by the supervisor; our results are discarded
                    for result in skipped:
                        self._record(result)
                    for outcome in outcomes:
                        self._apply(outcome, index)
                    self.stage_index = index + 1
        except BaseException as exc:  # an executor bug must not hang the supervisor
            log.exception("executor %s crashed", self.executor.name)
            with self.lock:
                self.errors.append(f"executor {self.executor.name!r} crashed: {exc!r}")
                self.failed = True
                self.stop_status = "failure"
                self.done.set()

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
                SkillResult(name, "skipped", 0.0, 0, self.stage_index, _message(error),
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
                self.plugins.notify("sof_after_skill", skill=step.spec, result=result)
            return
        else:
            status: SkillStatus = "timeout" if isinstance(error, SkillTimeoutError) else "failed"
            trace, location = failure_trace(step, error)
            result = SkillResult(step.name, status, outcome.duration, outcome.attempts, stage,
                                 _message(error), type(error).__name__, step.plugin, trace,
                                 location)
        self._record(result)

    def _record(self, result: SkillResult) -> None:
        self.results.append(result)
        if result.status != "success":
            self.failed = True
            self.errors.append(f"{result.skill}: {result.error_type}: {result.error}")
            if self.uif.__dict__["error_details"] is None:
                self.uif.__dict__["error_details"] = f"{result.skill}: {result.error}"
            if not self.config.continue_on_skill_failure and self.stop_status is None:
                self.stop_status = "timeout" if result.status == "timeout" else "failure"
            _alert_skill(self.plugins, result)
        if self._after_skill:
            self.plugins.notify(
                "sof_after_skill", skill=self.compiled.steps[result.skill].spec, result=result
            )

    # --- supervision (caller's thread) ---------------------------------------------------

    def supervise(self, total_deadline: float) -> None:
        """Wait for the runner; time out hung inline steps and the run as a whole."""
        self.done = threading.Event()
        self.frozen.freeze_uif(self.uif.__dict__, self.compiled.read_only_order)
        try:
            self._supervise(total_deadline)
        finally:
            with self.lock:  # a superseded runner may still hold it; it merges nothing more
                self.generation += 1
                self.finish()

    def _supervise(self, total_deadline: float) -> None:
        _RUNNERS.submit(self.drive, 0)
        while True:
            watch = self.watch
            now = _monotonic()
            deadline = min(total_deadline, now + self.poll_interval)
            if watch is not None:
                deadline = min(deadline, watch.deadline)
            wait = None if math.isinf(deadline) else max(0.0, deadline - now)
            if self.done.wait(wait):
                return
            now = _monotonic()
            with self.lock:
                if self.done.is_set():
                    return
                if now >= total_deadline:
                    self._abandon_all(now)
                    return
                current = self.watch
                if current is None or current is not watch or now < current.deadline:
                    continue
                # The inline step overran: record it, supersede the runner, go on without it.
                self.watch = None
                self.generation += 1
                self._apply(timeout_outcome(current.step, now - current.started), current.stage)
                self.stage_index = current.stage + 1
                generation = self.generation
            _RUNNERS.submit(self.drive, generation)

    def _abandon_all(self, now: float) -> None:
        """Total timeout: everything not finished is recorded, the runner is superseded."""
        self.generation += 1
        finished = {r.skill for r in self.results}
        timeout = self.config.total_timeout
        for number, stage in enumerate(self.stages[self.stage_index :], self.stage_index):
            for name in stage:
                if name in finished:
                    continue
                step = self.compiled.steps[name]
                status: SkillStatus = "timeout" if number == self.stage_index else "skipped"
                self.results.append(
                    SkillResult(name, status, 0.0, 0, number,
                                f"run exceeded total_timeout of {timeout}s",
                                "RunTimeoutError", step.plugin)
                )
        self.errors.append(f"run exceeded total_timeout of {timeout}s")
        self.stop_status = "timeout"
        self.failed = True
        self.done.set()

    def status(self) -> RunStatus:
        if self.stop_status is not None:
            return self.stop_status
        if not self.failed:
            return "success"
        return "partial" if any(r.status == "success" for r in self.results) else "failure"
