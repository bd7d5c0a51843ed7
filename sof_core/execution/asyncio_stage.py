"""The asyncio executor's wide stages: async skills awaited together on the run thread's
event loop, each under its own deadline. Its own module so that asyncio is imported only by
runs that need it (``sof_core.execution.executors`` is loaded by every engine)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sof_core.execution.aio import AsyncCall, reap_tasks, thread_loop, watch
from sof_core.execution.deadlines import clock
from sof_core.execution.run import RunContext
from sof_core.execution.step import Outcome, aexecute_step
from sof_core.execution.watchdog import watchdog
from sof_core.graph.compile import Step


def await_steps(run: RunContext, steps: Sequence[Step]) -> list[Outcome]:
    """Run the async ``steps`` to completion on this thread's loop, in plan order."""
    loop = thread_loop()
    try:
        return loop.run_until_complete(_gather(run, steps))
    finally:
        reap_tasks(loop)


async def _gather(run: RunContext, steps: Sequence[Step]) -> list[Outcome]:
    """Await async steps together on this loop, each under its own deadline."""
    loop = asyncio.get_running_loop()
    return list(await asyncio.gather(*(_await_one(run, step, loop) for step in steps)))


async def _await_one(run: RunContext, step: Step, loop: asyncio.AbstractEventLoop) -> Outcome:
    if run.quarantined and step.name in run.quarantined:
        return Outcome(step, None, None, None, None, run.hung.error(step.name), 0.0, 0)
    now = clock()
    deadline = now + step.timeout if step.timeout is not None else float("inf")
    call = AsyncCall(step, loop, now, deadline, total=run.total_deadline)
    entry = watch(call)
    try:
        return await aexecute_step(step, run.uif, run.config.retry_backoff, call,
                                   run._before)
    finally:
        if entry is not None:
            watchdog().cancel(entry)
