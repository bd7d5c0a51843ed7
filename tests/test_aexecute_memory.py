"""A run on the caller's event loop holds, while it waits on a step, only what that step
needs: the views of the steps before it are released once their writes are merged. In a
burst of concurrent runs, what each waiting run holds is what the garbage collector walks
again and again."""

from __future__ import annotations

import asyncio
import gc

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine


def _views_alive(of: UIF) -> int:
    """Views of ``of`` alive now: UIFs whose scope reads ``of``'s data. Only this run's, so
    views other tests' hung skills still hold (until their threads wake) are not counted."""
    gc.collect()
    data = of.__dict__["intermediate_data"]
    return sum(1 for o in gc.get_objects() if isinstance(o, UIF) and o is not of
               and getattr(o.__dict__.get("intermediate_data"), "_source", None) is data)


@pytest.mark.parametrize("first_is_async", [False, True], ids=["sync first", "async first"])
def test_a_waiting_run_holds_no_earlier_step_view(first_is_async: bool) -> None:
    entered = asyncio.Event()
    gate = asyncio.Event()

    class First(BaseSkillModule):
        skill_name = "First"
        skill_description = "writes what Waits reads (run in the step pool)"
        required_inputs = ["input_query"]
        output_keys = [("first", list)]

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["first"] = ["x" * 10]
            return uif

    class AsyncFirst(First):
        skill_description = "writes what Waits reads (awaited on the loop)"

        async def execute(self, uif: UIF) -> UIF:  # type: ignore[override]
            return First.execute(self, uif)

    class Waits(BaseSkillModule):
        skill_name = "Waits"
        skill_description = "waits on the test's gate"
        required_inputs = [("first", list)]
        output_keys = ["second"]

        async def execute(self, uif: UIF) -> UIF:  # type: ignore[override]
            entered.set()
            await gate.wait()
            uif.intermediate_data["second"] = True
            return uif

    engine = make_engine([AsyncFirst if first_is_async else First, Waits])

    async def main() -> None:
        uif = UIF(input_query="q")
        run = asyncio.ensure_future(engine.aexecute_plan(["First", "Waits"], uif))
        await asyncio.wait_for(entered.wait(), 10)  # a hang bound: Waits starts at once
        assert _views_alive(of=uif) == 1  # Waits' own view; First's is gone
        gate.set()
        report = await run
        assert report.status == "success", report.errors
        assert report.uif.intermediate_data["first"] == ["x" * 10]

    asyncio.run(main())
    engine.close()
