"""A run on the caller's event loop is watched through one watchdog deadline (issue 10,
item 6): the run's total timeout and every async step's own deadline are kept by that one
entry, re-armed when it fires, instead of one entry per step. These tests pin both the
behaviour (the deadlines still hold) and the cost (one arm per ordinary run)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.execution.watchdog import Watchdog
from sof_core.testing import make_engine


def _async_skill(name: str, needs: list[str], key: str, wait: float,
                 timeout: float | None, state: dict[str, Any]) -> type[BaseSkillModule]:
    async def execute(self: Any, uif: UIF) -> UIF:
        try:
            await asyncio.sleep(wait)
        except asyncio.CancelledError:
            state[name] = "cancelled"
            raise
        uif.intermediate_data[key] = name
        return uif

    return type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"async {name}",
        "required_inputs": needs, "output_keys": [key], "max_execution_time": timeout,
        "execute": execute,
    })


def test_a_later_steps_short_timeout_holds_when_an_earlier_step_has_a_long_one() -> None:
    state: dict[str, Any] = {}
    first = _async_skill("Slowish", ["input_query"], "a", 0.01, 5.0, state)
    second = _async_skill("Stuck", ["a"], "b", 30.0, 0.2, state)
    engine = make_engine([first, second])
    began = time.monotonic()
    report = asyncio.run(engine.aexecute_plan(["Slowish", "Stuck"], UIF(input_query="q")))
    assert time.monotonic() - began < 3.0  # a hang bound, not a performance figure
    assert report.result("Slowish").status == "success"
    assert report.result("Stuck").status == "timeout"
    assert state["Stuck"] == "cancelled"
    assert "b" not in report.uif.intermediate_data


def test_the_total_timeout_ends_a_run_on_the_loop() -> None:
    state: dict[str, Any] = {}
    stuck = _async_skill("Forever", ["input_query"], "a", 30.0, None, state)
    engine = make_engine([stuck], skill_timeout=None, total_timeout=0.3)
    began = time.monotonic()
    report = asyncio.run(engine.aexecute_plan(["Forever"], UIF(input_query="q")))
    assert time.monotonic() - began < 3.0  # a hang bound
    assert report.status == "timeout"
    assert report.result("Forever").status == "timeout"
    assert any("total_timeout" in error for error in report.errors)


def test_an_ordinary_async_run_arms_one_watchdog_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state: dict[str, Any] = {}
    skills = [
        _async_skill("A1", ["input_query"], "a", 0.0, 5.0, state),
        _async_skill("A2", ["a"], "b", 0.0, 5.0, state),
        _async_skill("A3", ["b"], "c", 0.0, 5.0, state),
    ]
    engine = make_engine(skills)
    plan = ["A1", "A2", "A3"]
    asyncio.run(engine.aexecute_plan(plan, UIF(input_query="warm up")))
    armed: list[float] = []
    real_arm = Watchdog.arm

    def counting_arm(self: Watchdog, deadline: float, callback: Any) -> Any:
        armed.append(deadline)
        return real_arm(self, deadline, callback)

    monkeypatch.setattr(Watchdog, "arm", counting_arm)

    async def many() -> list[Any]:
        return [await engine.aexecute_plan(plan, UIF(input_query="q")) for _ in range(20)]

    reports = asyncio.run(many())
    assert all(report.status == "success" for report in reports)
    assert len(armed) == 20  # one per run (it was one per step, plus one per run)


def test_a_hung_sync_step_in_the_pool_is_given_up_on_at_its_deadline() -> None:
    import threading

    release = threading.Event()

    class Hangs(BaseSkillModule):
        skill_name = "Hangs"
        skill_description = "a sync skill that blocks until released"
        required_inputs = ["input_query"]
        output_keys = ["h"]
        max_execution_time = 0.2

        def execute(self, uif: UIF) -> UIF:
            release.wait(30)
            uif.intermediate_data["h"] = True
            return uif

    state: dict[str, Any] = {}
    engine = make_engine([Hangs, _async_skill("After", ["input_query"], "z", 0.0, 5.0, state)],
                         continue_on_skill_failure=True)
    try:
        began = time.monotonic()
        report = asyncio.run(engine.aexecute_plan(["Hangs", "After"], UIF(input_query="q")))
        assert time.monotonic() - began < 3.0  # a hang bound
        assert report.result("Hangs").status == "timeout"
        assert report.result("After").status == "success"
        assert "h" not in report.uif.intermediate_data
        assert engine.abandoned_calls() == {"Hangs": 1}
    finally:
        release.set()
