"""Executors: how the skills of one stage run. Chosen by ``SOFConfig.executor``.

A stage of one skill always runs in the run's own thread (no pool hop); the watchdog
enforces its timeout. Wider stages run concurrently on the engine's step pool (daemon
threads sized for I/O-bound skills, ``max_workers``): ``threads`` runs the first step in
the run's thread and the others in the pool; ``asyncio`` awaits the async skills together
in the run's event loop and sends the sync ones to the pool. Each step's deadline starts
when it starts. Third-party executors (``sof-dask``) register through
``sof_register_executors`` exactly as these built-ins do.

``aexecute_plan`` does not use ``run_stage`` for the built-ins: it walks the plan on the
caller's event loop itself (``sof_core.execution.arun``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sof_core.execution.run import RunContext
from sof_core.execution.step import Outcome
from sof_core.graph.compile import Step


class SequentialExecutor:
    """One skill at a time in the run's thread: simplest to debug, no concurrency."""

    name = "sequential"
    concurrent = False
    #: Optional flag: a stage of one skill runs in the run's thread, so the coordinator may
    #: call such a skill itself (a few calls cheaper).
    inline_single_steps = True
    #: Optional flag: ``aexecute_plan`` may walk the plan on the caller's event loop.
    native_async = True

    def run_stage(self, run: RunContext, steps: Sequence[Step]) -> list[Outcome]:
        return [run.call_inline(step) for step in steps]


class ThreadExecutor:
    """Concurrent stages on the engine's step pool; the default, right for blocking I/O."""

    name = "threads"
    concurrent = True
    inline_single_steps = True
    native_async = True

    def run_stage(self, run: RunContext, steps: Sequence[Step]) -> list[Outcome] | None:
        if len(steps) == 1:
            return [run.call_inline(steps[0])]
        return run.fan_out(steps)  # None: this runner was replaced meanwhile


class AsyncioExecutor:
    """Concurrent stages in one event loop: async skills awaited, sync ones on the pool."""

    name = "asyncio"
    concurrent = True
    inline_single_steps = True
    native_async = True

    def run_stage(self, run: RunContext, steps: Sequence[Step]) -> list[Outcome] | None:
        if len(steps) == 1:
            return [run.call_inline(steps[0])]
        # asyncio is imported when a wide stage needs it, not by every `sof` command.
        from sof_core.execution.asyncio_stage import run_wide_stage

        return run_wide_stage(run, steps)  # None: this runner was replaced meanwhile
