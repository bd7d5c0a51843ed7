"""An async skill that ignores its cancellation (catches ``CancelledError`` and awaits on)
cannot hold a run past its deadline (issue 10, item 3: "async skills are cancelled for
real"; a hung skill must not take the host down).

On the caller's loop (``aexecute_plan``) the skill is awaited in the run's own task, so such
a skill used to keep ``aexecute_plan`` from returning until it chose to end (5 s under a
0.3 s limit; forever for a loop). It is now abandoned ``CANCEL_GRACE`` after its verdict:
its coroutine is closed and never run again, and the run goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.execution.aio import CANCEL_GRACE
from sof_core.testing import make_engine

#: Each ignoring skill records a tick per loop here, to show it stopped being run.
TICKS: list[str] = []
CLEANED: list[str] = []


async def ignore_cancellation(name: str) -> None:
    """Await for 30 s, catching every cancellation (the fault under test)."""
    end = time.monotonic() + 30
    while time.monotonic() < end:
        TICKS.append(name)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.02)


class IgnoresCancel(BaseSkillModule):
    skill_name = "IgnoresCancel"
    skill_description = "catches CancelledError and keeps awaiting for 30 s"
    output_keys = ["ignored"]
    max_execution_time = 0.3

    async def execute(self, uif: UIF) -> UIF:
        await ignore_cancellation(self.skill_name)
        uif.intermediate_data[self.output_keys[0]] = True
        return uif


class IgnoresWithoutOwnLimit(IgnoresCancel):
    skill_name = "IgnoresWithoutOwnLimit"
    output_keys = ["ignored_too"]
    max_execution_time = None


class BlocksThenIgnores(BaseSkillModule):
    skill_name = "BlocksThenIgnores"
    skill_description = "blocks its loop past its limit, then ignores the cancellation"
    output_keys = ["blocked"]
    max_execution_time = 0.2

    async def execute(self, uif: UIF) -> UIF:
        time.sleep(0.4)
        await ignore_cancellation(self.skill_name)
        return uif


class CleansUp(BaseSkillModule):
    skill_name = "CleansUp"
    skill_description = "awaits its clean-up when cancelled, then lets the cancellation go"
    output_keys = ["clean"]
    max_execution_time = 0.2

    async def execute(self, uif: UIF) -> UIF:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(CANCEL_GRACE / 5)
            CLEANED.append(self.skill_name)
            raise
        return uif


class Polite(BaseSkillModule):
    skill_name = "Polite"
    skill_description = "awaits 0.1 s and answers"
    output_keys = ["polite"]
    max_execution_time = 5.0

    async def execute(self, uif: UIF) -> UIF:
        await asyncio.sleep(0.1)
        uif.intermediate_data["polite"] = True
        return uif


ENGINE_SKILLS = [IgnoresCancel, IgnoresWithoutOwnLimit, BlocksThenIgnores, CleansUp, Polite]


def result(report: Any, skill: str) -> Any:
    return next(r for r in report.results if r.skill == skill)


def arun(plan: list[str], **config: Any) -> tuple[Any, float]:
    """``aexecute_plan`` on a fresh loop, bounded (a hang bound: the skills run 30 s)."""
    engine = make_engine(ENGINE_SKILLS, **config)

    async def go() -> tuple[Any, float]:
        started = time.monotonic()
        report = await asyncio.wait_for(engine.aexecute_plan(plan, UIF.for_query("q")), 10)
        took = time.monotonic() - started
        # The host's task is not left cancelled, and the skill's coroutine is not run again.
        task = asyncio.current_task()
        assert task is not None and getattr(task, "cancelling", lambda: 0)() == 0
        ticks = len(TICKS)
        await asyncio.sleep(0.2)
        assert len(TICKS) == ticks, "the abandoned skill was still being run"
        return report, took

    return asyncio.run(go())


def test_on_the_callers_loop_a_skill_ignoring_its_cancellation_is_abandoned() -> None:
    report, took = arun(["IgnoresCancel", "Polite"])
    ignored = result(report, "IgnoresCancel")
    assert ignored.status == "timeout" and ignored.error_type == "SkillTimeoutError"
    assert ignored.error == (
        f"did not finish within 0.3s; cancelled; it went on past its cancellation and was "
        f"abandoned {CANCEL_GRACE}s later (a skill must let CancelledError through)")
    assert result(report, "Polite").status == "success"
    assert "ignored" not in report.uif.intermediate_data
    assert took < 5, f"the run waited {took:.1f}s for the skill"


def test_at_the_total_timeout_a_skill_ignoring_its_cancellation_lets_the_run_end() -> None:
    report, took = arun(["IgnoresWithoutOwnLimit"], total_timeout=0.5)
    assert report.status == "timeout"
    assert result(report, "IgnoresWithoutOwnLimit").error == "run exceeded total_timeout of 0.5s"
    assert took < 5, f"the run waited {took:.1f}s for the skill"


def test_a_skill_blocking_its_loop_then_ignoring_the_cancellation_is_abandoned() -> None:
    report, took = arun(["BlocksThenIgnores"])
    blocked = result(report, "BlocksThenIgnores")
    assert blocked.status == "timeout"
    assert "it blocked its event loop" in blocked.error
    assert "abandoned" in blocked.error
    assert took < 5


def test_a_skill_that_awaits_its_clean_up_and_lets_the_cancellation_go_is_not_abandoned(
) -> None:
    CLEANED.clear()
    report, _ = arun(["CleansUp"])
    cleaned = result(report, "CleansUp")
    assert cleaned.error == "did not finish within 0.2s; cancelled"
    assert CLEANED == ["CleansUp"]


@pytest.mark.parametrize("executor", ["asyncio", "threads"])
def test_the_executors_running_async_skills_in_threads_do_not_wait_for_it_either(
    executor: str,
) -> None:
    engine = make_engine(ENGINE_SKILLS)
    started = time.monotonic()
    report = engine.execute_plan(["IgnoresCancel", "Polite"], UIF.for_query("q"),
                                 executor=executor)
    assert time.monotonic() - started < 5
    assert result(report, "IgnoresCancel").status == "timeout"
    assert result(report, "Polite").status == "success"
