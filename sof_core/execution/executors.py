"""Executors: how the skills of one stage run. Chosen by ``SOFConfig.executor``.

A stage of one skill always runs inline in the run's thread (no pool hop); the coordinator's
supervisor enforces its timeout. Wider stages run concurrently: ``threads`` uses a pool sized
for I/O-bound skills (stage width, up to ``max_workers``), ``asyncio`` awaits async skills in
one event loop and sends sync ones to the pool. Third-party executors (``sof-dask``) register
through ``sof_register_executors`` exactly as these built-ins do.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Sequence

from sof_core.execution.run import RunContext
from sof_core.execution.step import Outcome, _thread_loop, aexecute_step
from sof_core.graph.compile import Step


class SequentialExecutor:
    """One skill at a time in the run's thread: simplest to debug, no concurrency."""

    name = "sequential"
    concurrent = False
    #: Optional flag: a stage of one skill runs inline in the run's thread, so when no
    #: timeout applies the coordinator may call such a skill itself (a few calls cheaper).
    inline_single_steps = True

    def run_stage(self, run: RunContext, steps: Sequence[Step]) -> list[Outcome]:
        if len(steps) == 1:  # always so when run by the coordinator (stages of one skill)
            return [run.call_inline(steps[0])]
        return [run.call_inline(step) for step in steps]


class _PoolOwner:
    """Lazily creates one shared thread pool, sized for I/O rather than CPU count."""

    name = "pool"

    def __init__(self, max_workers: int | None = None) -> None:
        self._max_workers = max_workers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def pool(self, run: RunContext) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    workers = self._max_workers or run.config.max_workers
                    self._pool = concurrent.futures.ThreadPoolExecutor(
                        max_workers=workers, thread_name_prefix=f"sof-{self.name}"
                    )
        return self._pool

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class ThreadExecutor(_PoolOwner):
    """Concurrent stages on a thread pool; the default, right for blocking I/O skills."""

    name = "threads"
    concurrent = True
    inline_single_steps = True

    def run_stage(self, run: RunContext, steps: Sequence[Step]) -> list[Outcome]:
        if len(steps) == 1:
            return [run.call_inline(steps[0])]
        pool = self.pool(run)
        started = time.monotonic()
        futures = [pool.submit(run.execute, step) for step in steps]
        outcomes = []
        for step, future in zip(steps, futures, strict=True):
            remaining = None
            if step.timeout is not None:
                remaining = max(0.0, started + step.timeout - time.monotonic())
            try:
                outcomes.append(future.result(timeout=remaining))
            except concurrent.futures.TimeoutError:
                future.cancel()
                outcomes.append(run.timed_out(step, time.monotonic() - started))
        return outcomes


class AsyncioExecutor(_PoolOwner):
    """Concurrent stages in one event loop: async skills awaited, sync ones on the pool."""

    name = "asyncio"
    concurrent = True
    inline_single_steps = True

    def run_stage(self, run: RunContext, steps: Sequence[Step]) -> list[Outcome]:
        if len(steps) == 1:
            return [run.call_inline(steps[0])]
        return _thread_loop().run_until_complete(self._gather(run, steps))

    async def _gather(self, run: RunContext, steps: Sequence[Step]) -> list[Outcome]:
        import asyncio  # imported on first use: hosts without async work never pay for it

        loop = asyncio.get_running_loop()
        pool = self.pool(run)
        started = time.monotonic()

        async def one(step: Step) -> Outcome:
            if step.spec.is_async:
                return await aexecute_step(step, run.uif, run.config.retry_backoff)
            future = loop.run_in_executor(pool, run.execute, step)
            try:
                return await asyncio.wait_for(asyncio.shield(future), step.timeout)
            except asyncio.TimeoutError:
                return run.timed_out(step, time.monotonic() - started)

        return list(await asyncio.gather(*(one(step) for step in steps)))
