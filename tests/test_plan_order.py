"""One skill at a time means in the plan's order, wherever the dependencies allow it."""

from __future__ import annotations

from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine


def skill(name: str, reads: list[str], writes: list[str]) -> type[BaseSkillModule]:
    def execute(self: Any, uif: UIF) -> UIF:
        for key in writes:
            uif.intermediate_data[key] = name
        return uif

    return type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"{name} for ordering tests",
        "required_inputs": reads, "output_keys": writes, "execute": execute,
    })


# Y reads X's output; Z needs nothing. Generation order would be X, Z, Y.
X = skill("X", ["input_query"], ["x"])
Y = skill("Y", ["x"], ["y"])
Z = skill("Z", ["input_query"], ["z"])


def test_a_plan_in_dependency_order_runs_exactly_as_written() -> None:
    engine = make_engine([X, Y, Z], executor="sequential")
    report = engine.execute_plan(["X", "Y", "Z"], UIF(input_query="q"))
    assert report.uif.executed_skills == ["X", "Y", "Z"]
    assert report.uif.execution_plan == ["X", "Y", "Z"]
    assert report.stages == [["X"], ["Y"], ["Z"]]


def test_only_what_the_dependencies_force_moves() -> None:
    engine = make_engine([X, Y, Z], executor="sequential")
    report = engine.execute_plan(["Z", "Y", "X"], UIF(input_query="q"))
    # Y must wait for X; Z keeps its place at the front.
    assert report.uif.executed_skills == ["Z", "X", "Y"]


@pytest.mark.parametrize("executor", ["threads", "asyncio"])
def test_concurrent_executors_still_run_generations(executor: str) -> None:
    engine = make_engine([X, Y, Z], executor=executor)
    report = engine.execute_plan(["X", "Y", "Z"], UIF(input_query="q"))
    assert report.stages == [["X", "Z"], ["Y"]]
    assert report.uif.execution_plan == ["X", "Y", "Z"]
