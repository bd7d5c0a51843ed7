"""Batches run I/O-bound queries side by side by default (issue 10, item 6): ``run_batch``
as many at once as the engine's ``max_workers``, ``arun_batch`` up to
``ASYNC_CONCURRENCY``, not 8."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from sof_core import UIF, BaseSkillModule, arun_batch, run_batch
from sof_core.execution.batch import ASYNC_CONCURRENCY
from sof_core.testing import make_engine

WIDE = 24  # more than the old default of 8


def _gated(barrier: threading.Barrier) -> type[BaseSkillModule]:
    class Gate(BaseSkillModule):
        """Waits until WIDE queries are inside at once: proves they run side by side."""

        skill_name = "Gate"
        skill_description = "meets the other queries at a barrier"
        required_inputs = ["input_query"]
        output_keys = ["final_response"]
        max_execution_time = 20.0

        def execute(self, uif: UIF) -> UIF:
            barrier.wait()
            uif.final_response = "met"
            return uif

    return Gate


def test_run_batch_runs_max_workers_queries_at_once_by_default() -> None:
    engine = make_engine([_gated(threading.Barrier(WIDE, timeout=10))])
    batch = run_batch(engine, [f"q{i}" for i in range(WIDE)], ["Gate"])
    assert batch.summary.errors == 0, [i.report.errors for i in batch.items if i.report]
    assert batch.summary.concurrency == engine.config.max_workers == 64


def test_arun_batch_runs_many_async_queries_at_once_by_default() -> None:
    met: list[int] = []

    class Meet(BaseSkillModule):
        skill_name = "Meet"
        skill_description = "awaits until WIDE queries are inside at once"
        required_inputs = ["input_query"]
        output_keys = ["final_response"]
        max_execution_time = 20.0

        async def execute(self, uif: UIF) -> UIF:
            met.append(1)
            for _ in range(1000):
                if len(met) >= WIDE:
                    break
                await asyncio.sleep(0.01)
            assert len(met) >= WIDE, "the queries did not run side by side"
            uif.final_response = "met"
            return uif

    engine = make_engine([Meet])
    batch: Any = asyncio.run(arun_batch(engine, [f"q{i}" for i in range(WIDE)], ["Meet"]))
    assert batch.summary.errors == 0, [i.report.errors for i in batch.items if i.report]
    assert batch.summary.concurrency == ASYNC_CONCURRENCY
