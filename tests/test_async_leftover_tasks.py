"""Tasks an async skill starts and leaves running, when the skill runs in a sync run.

Such a skill is awaited on its thread's own event loop, which runs only while a skill is
awaited: a task left on it would sleep until the next async skill on that thread, run inside
that skill's time (blocking it past its timeout), or be destroyed pending with the thread.
Like ``asyncio.run``, SOF cancels them when the skill returns and says which skill left them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine

LEFT: list[asyncio.Task[Any]] = []


class Leaves(BaseSkillModule):
    skill_name = "Leaves"
    skill_description = "Starts a task it neither awaits nor cancels"
    required_inputs = ["input_query"]
    output_keys = ["left"]

    async def execute(self, uif: UIF) -> UIF:
        LEFT.append(asyncio.ensure_future(asyncio.sleep(30)))
        uif.intermediate_data["left"] = True
        return uif


async def _hog() -> None:
    await asyncio.sleep(0)
    time.sleep(1.5)  # blocks whatever loop it runs on


class LeavesAHog(BaseSkillModule):
    skill_name = "LeavesAHog"
    skill_description = "Starts a task that blocks its loop once it gets to run"
    required_inputs = ["input_query"]
    output_keys = ["hog"]

    async def execute(self, uif: UIF) -> UIF:
        LEFT.append(asyncio.ensure_future(_hog()))
        uif.intermediate_data["hog"] = True
        return uif


class Quick(BaseSkillModule):
    skill_name = "Quick"
    skill_description = "Awaits briefly, well within its timeout"
    required_inputs = ["hog"]
    output_keys = ["quick"]
    max_execution_time = 1.0

    async def execute(self, uif: UIF) -> UIF:
        await asyncio.sleep(0.01)
        uif.intermediate_data["quick"] = True
        return uif


class Stubborn(BaseSkillModule):
    skill_name = "Stubborn"
    skill_description = "Starts a task that ignores its cancellation"
    required_inputs = ["input_query"]
    output_keys = ["stubborn"]

    async def execute(self, uif: UIF) -> UIF:
        async def ignores() -> None:
            while True:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    continue

        LEFT.append(asyncio.ensure_future(ignores()))
        uif.intermediate_data["stubborn"] = True
        return uif


@pytest.fixture(autouse=True)
def _forget() -> None:
    LEFT.clear()


@pytest.mark.parametrize("executor", ["threads", "sequential", "asyncio"])
def test_a_task_a_skill_leaves_running_is_cancelled_and_blamed_on_it(
        executor: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine([Leaves], executor=executor)
    with caplog.at_level(logging.WARNING, logger="sof.coordinator"):
        report = engine.execute_plan(["Leaves"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert LEFT[0].cancelled()
    assert "skill 'Leaves' left 1 asyncio task(s) running" in caplog.text


def test_a_left_task_does_not_run_in_the_next_skills_time() -> None:
    engine = make_engine([LeavesAHog, Quick])
    report = engine.execute_plan(["LeavesAHog", "Quick"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert LEFT[0].cancelled()


def test_a_task_that_ignores_its_cancellation_costs_its_loop_not_the_run(
        caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine([Stubborn, Leaves])
    with caplog.at_level(logging.WARNING, logger="sof.coordinator"):
        report = engine.execute_plan(["Stubborn"], UIF(input_query="q"))
        assert report.status == "success", report.errors
        assert "1 task(s) went on" in caplog.text
        again = engine.execute_plan(["Leaves"], UIF(input_query="q"))  # a fresh loop
    assert again.status == "success", again.errors
    assert not LEFT[0].done()  # its loop was closed with it still pending
    assert LEFT[1].cancelled()
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        LEFT.clear()
        gc.collect()  # the abandoned task goes: said once above, not again by asyncio
    assert "Task was destroyed but it is pending" not in caplog.text


def test_a_skill_that_awaits_what_it_starts_is_left_alone(
        caplog: pytest.LogCaptureFixture) -> None:
    class Tidy(BaseSkillModule):
        skill_name = "Tidy"
        skill_description = "Awaits the tasks it starts"
        required_inputs = ["input_query"]
        output_keys = ["tidy"]

        async def execute(self, uif: UIF) -> UIF:
            parts = await asyncio.gather(*(asyncio.ensure_future(asyncio.sleep(0, i))
                                           for i in range(3)))
            uif.intermediate_data["tidy"] = sum(parts)
            return uif

    engine = make_engine([Tidy])
    with caplog.at_level(logging.WARNING, logger="sof.coordinator"):
        report = engine.execute_plan(["Tidy"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["tidy"] == 3
    assert "asyncio task(s) running" not in caplog.text


def test_under_aexecute_plan_the_tasks_a_skill_starts_are_the_hosts() -> None:
    engine = make_engine([Leaves])

    async def host() -> bool:
        report = await engine.aexecute_plan(["Leaves"], UIF(input_query="q"))
        assert report.status == "success", report.errors
        await asyncio.sleep(0)
        running = not LEFT[0].done()
        LEFT[0].cancel()
        return running

    assert asyncio.run(host())


def test_a_cancelled_task_gets_to_await_its_clean_up() -> None:
    cleaned: list[str] = []

    class CleansUp(BaseSkillModule):
        skill_name = "CleansUp"
        skill_description = "Starts a task that cleans up when cancelled"
        required_inputs = ["input_query"]
        output_keys = ["cleans"]

        async def execute(self, uif: UIF) -> UIF:
            async def background() -> None:
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    await asyncio.sleep(0.05)  # closing a connection, say
                    cleaned.append("closed")
                    raise

            LEFT.append(asyncio.ensure_future(background()))
            await asyncio.sleep(0)
            uif.intermediate_data["cleans"] = True
            return uif

    report = make_engine([CleansUp]).execute_plan(["CleansUp"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert cleaned == ["closed"] and LEFT[0].cancelled()
