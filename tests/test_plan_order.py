"""One skill at a time means in the plan's order, wherever the dependencies allow it."""

from __future__ import annotations

import itertools
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


def test_a_container_field_of_a_uif_subclass_defined_after_a_compile_is_copied() -> None:
    """What a skill's declarations imply is worked out once per skill and kept, but a UIF
    subclass defined later (a new container field) still reaches the next compile."""
    from pydantic import Field

    writer = skill("LateFieldWriter", ["input_query"], ["late_field_items"])
    engine = make_engine([writer], executor="sequential", enable_plan_cache=False)
    before = engine.compile(["LateFieldWriter"]).steps["LateFieldWriter"]
    assert before.copied_fields == frozenset()

    class LateUIF(UIF):
        late_field_items: list[str] = Field(default_factory=list)

    after = engine.compile(["LateFieldWriter"]).steps["LateFieldWriter"]
    assert after.copied_fields == {"late_field_items"}
    assert after.writable_fields == before.writable_fields
    assert LateUIF  # defined for its side effect on copyable_fields()


@pytest.mark.parametrize("seed", range(8))
def test_compiled_stages_and_cycles_match_networkx_on_the_full_graph(seed: int) -> None:
    """Compiling builds a lean graph and looks for cycles only when the topological sort
    fails: the stages are still networkx's generations and every cycle is still found."""
    import random

    import networkx as nx

    from sof_core.graph.build import build_graph

    rng = random.Random(seed)
    count = 30
    skills = []
    for i in range(count):
        reads = sorted({f"c{seed}k{rng.randrange(count)}" for _ in range(rng.randint(0, 2))})
        if seed % 2 == 0:  # even seeds: acyclic (read only earlier keys)
            reads = [k for k in reads if int(k.rsplit("k", 1)[1]) < i]
        skills.append(skill(f"C{seed}_{i}", reads or ["input_query"], [f"c{seed}k{i}"]))
    engine = make_engine(skills, executor="sequential", enable_plan_cache=False,
                         max_plan_length=count)
    plan = [s.skill_name for s in skills]
    compiled = engine.compile(plan)
    full = build_graph([engine.registry.skill(n).spec for n in plan]).graph
    cyclic = not nx.is_directed_acyclic_graph(full)
    assert cyclic == any(p.code == "cycle" for p in compiled.problems)
    if cyclic:
        assert compiled.stages == ()
        groups = [c for c in nx.strongly_connected_components(full) if len(c) > 1]
        reported = [p for p in compiled.problems if p.code == "cycle"]
        assert len(reported) == len(groups)
        for problem in reported:  # each names a real cycle, hop by hop
            path = problem.path
            assert path[0] == path[-1]
            assert all(full.has_edge(a, b) for a, b in itertools.pairwise(path))
    else:
        generations = [set(g) for g in nx.topological_generations(full)]
        assert [set(stage) for stage in compiled.stages] == generations


@pytest.mark.parametrize("executor", ["sequential", "threads", "asyncio"])
def test_execution_plan_is_the_dependency_order_whatever_the_executor(executor: str) -> None:
    # docs/concepts.md: "That order is the UIF's execution_plan whatever the executor: a
    # concurrent one starts each stage's skills together, and the stage's skills keep that
    # order in execution_plan and report.stages."
    skills = [skill("A", [], ["a"]), skill("B", ["a"], ["b"]), skill("C", [], ["c"]),
              skill("D", ["b", "c"], ["d"])]
    engine = make_engine(skills, executor=executor)

    report = engine.execute_plan(["D", "B", "C", "A"], UIF(input_query="q"))

    assert report.status == "success", report.errors
    assert report.uif.execution_plan == ["C", "A", "B", "D"]
    assert [name for stage in report.stages for name in stage] == ["C", "A", "B", "D"]
    if executor != "sequential":
        assert report.stages == [["C", "A"], ["B"], ["D"]]
