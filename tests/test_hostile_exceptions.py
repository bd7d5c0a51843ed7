"""A skill's exception is the skill's own code: its ``__str__`` may raise, or never return.

Before: an exception whose ``__str__`` raised ended the run as "executor 'threads' crashed"
with no result for the skill; one whose ``__str__`` hung did so while the run held its lock,
so neither the step's timeout nor the run's ``total_timeout`` could end it, and
``execute_plan`` never returned.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine

RELEASE = threading.Event()


class Unreadable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


class Endless(Exception):
    def __str__(self) -> str:
        RELEASE.wait(60)  # "forever", until the test is over
        return "finally"


class RaisesUnreadable(BaseSkillModule):
    skill_name = "RaisesUnreadable"
    skill_description = "raises an exception whose str() raises"
    required_inputs = ["input_query"]
    output_keys = ["unreadable"]

    def execute(self, uif: UIF) -> UIF:
        raise Unreadable()


class RaisesEndless(BaseSkillModule):
    skill_name = "RaisesEndless"
    skill_description = "raises an exception whose str() never returns"
    required_inputs = ["input_query"]
    output_keys = ["endless"]
    max_execution_time = 0.5

    def execute(self, uif: UIF) -> UIF:
        raise Endless()


class After(BaseSkillModule):
    skill_name = "After"
    skill_description = "runs after the others"
    required_inputs = ["input_query"]
    output_keys = ["after"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["after"] = True
        return uif


@pytest.fixture(autouse=True)
def _release() -> Iterator[None]:
    RELEASE.clear()
    yield
    RELEASE.set()  # lets the abandoned str() calls end


def _run_bounded(engine: Any, plan: list[str], limit: float = 10.0) -> Any:
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(
        engine.execute_plan(plan, UIF(input_query="q"))), daemon=True)
    worker.start()
    worker.join(limit)
    assert box, f"execute_plan({plan}) did not return within {limit} s"
    return box[0]


@pytest.mark.parametrize("executor", ["threads", "sequential", "asyncio"])
def test_an_exception_whose_str_raises_fails_its_skill_not_the_run(executor: str) -> None:
    engine = make_engine([RaisesUnreadable, After], executor=executor,
                         continue_on_skill_failure=True)
    report = _run_bounded(engine, ["RaisesUnreadable", "After"])
    result = next(r for r in report.results if r.skill == "RaisesUnreadable")
    assert result.status == "failed"
    assert result.error_type == "Unreadable"
    assert "its message could not be read: str() raised RuntimeError" in result.error
    assert report.uif.intermediate_data["after"] is True
    assert not any("crashed" in error for error in report.errors)


def test_an_exception_whose_str_never_returns_is_given_up_on_at_the_steps_deadline() -> None:
    engine = make_engine([RaisesEndless, After], continue_on_skill_failure=True)
    report = _run_bounded(engine, ["RaisesEndless", "After"])
    result = next(r for r in report.results if r.skill == "RaisesEndless")
    assert result.status == "timeout"
    assert report.uif.intermediate_data["after"] is True
    again = _run_bounded(engine, ["After"])  # the engine, and the watchdog, go on
    assert again.status == "success", again.errors


def test_in_a_wide_stage_too() -> None:
    engine = make_engine([RaisesEndless, RaisesUnreadable, After],
                         continue_on_skill_failure=True)
    report = _run_bounded(engine, ["RaisesEndless", "RaisesUnreadable", "After"])
    by_skill = {r.skill: r for r in report.results}
    assert by_skill["RaisesEndless"].status == "timeout"
    assert by_skill["RaisesUnreadable"].error_type == "Unreadable"
    assert by_skill["After"].status == "success"
