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


@pytest.mark.parametrize("seed", range(12))
def test_plan_order_is_networkx_lexicographical_sort_by_plan_position(seed: int) -> None:
    """The shortcut for plans already in dependency order, and the general case, both give
    exactly networkx's stable topological sort keyed by plan position."""
    import random

    import networkx as nx

    from sof_core.graph.build import build_graph, plan_order

    rng = random.Random(seed)
    count = 40
    skills = []
    for i in range(count):
        reads = sorted({f"k{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []
        skills.append(skill(f"R{seed}_{i}", reads or ["input_query"], [f"k{i}"]))
    order = list(range(count))
    if seed % 2:  # odd seeds: shuffled plans, with consumers before their producers
        rng.shuffle(order)
    from sof_core.skills.spec import SkillSpec

    specs = [SkillSpec.from_skill_class(skills[i]) for i in order]
    graph = build_graph(specs)
    expected = list(nx.lexicographical_topological_sort(
        graph.graph, key=graph.order_hint.__getitem__))
    assert plan_order(graph) == expected
    if seed % 2 == 0:
        assert expected == [spec.name for spec in specs]
