"""Validation reports every problem of a plan at once, each naming its skills and key."""

from __future__ import annotations

from typing import Any

import pytest

from sof_core import SkillDefinitionError
from sof_core.testing import make_engine


def problems(engine: Any, plan: list[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for problem in engine.validate_plan(plan):
        found.setdefault(problem.code, []).append(problem)
    return found


def test_every_problem_is_reported_at_once(make_skill: Any) -> None:
    engine = make_engine(
        [
            make_skill("NeedsX", ["x"], ["y"]),
            make_skill("WritesZ1", ["input_query"], ["z"]),
            make_skill("WritesZ2", ["input_query"], ["z"]),
            make_skill("Loop1", ["l2"], ["l1"]),
            make_skill("Loop2", ["l1"], ["l2"]),
        ],
        max_plan_length=5,
    )
    found = problems(engine, ["NeedsX", "WritesZ1", "WritesZ2", "Loop1", "Loop2", "Ghost"])
    assert set(found) == {
        "plan_too_long", "unknown_skill", "missing_producer", "duplicate_producer", "cycle"
    }
    assert "'x'" in str(found["missing_producer"][0]) and "NeedsX" in str(found["missing_producer"][0])
    assert found["duplicate_producer"][0].skills == ("WritesZ1", "WritesZ2")
    assert found["duplicate_producer"][0].key == "z"
    assert "6 skills" in str(found["plan_too_long"][0])


def test_a_chain_of_1000_skills_runs_with_the_default_settings(make_skill: Any) -> None:
    # Before: max_plan_length defaulted to 32, so a 100-skill chain (the benchmarks'
    # chains of 10, 100 and 1,000, a 64-wide fan-out) was refused with CoordinatorEngine().
    from sof_core import UIF, CoordinatorEngine, SOFConfig

    classes = [make_skill("Link0", ["input_query"], ["k0"])]
    classes += [make_skill(f"Link{i}", [f"k{i - 1}"], [f"k{i}"]) for i in range(1, 1000)]
    engine = CoordinatorEngine()
    engine.register_skills(classes, plugin_name="chain")
    plan = [c.skill_name for c in classes]
    assert SOFConfig().max_plan_length == 10_000
    assert engine.validate_plan(plan) == []
    assert engine.execute_plan(plan, UIF(input_query="q")).status == "success"
    engine.close()


def test_cycle_message_names_the_path_and_keys(make_skill: Any) -> None:
    engine = make_engine([
        make_skill("A", ["c_out"], ["a_out"]),
        make_skill("B", ["a_out"], ["b_out"]),
        make_skill("C", ["b_out"], ["c_out"]),
    ])
    (cycle,) = engine.validate_plan(["A", "B", "C"])
    assert cycle.code == "cycle"
    assert cycle.path == ("A", "B", "C", "A")
    assert "A -[a_out]-> B" in str(cycle) and "C -[c_out]-> A" in str(cycle)


def test_unknown_skill_suggests_a_close_name(make_skill: Any) -> None:
    engine = make_engine([make_skill("MemoryRetrievalSkill", ["input_query"], ["m"])])
    (problem,) = engine.validate_plan(["MemoryRetrivalSkill"])
    assert "did you mean 'MemoryRetrievalSkill'" in str(problem)


def test_type_mismatch_names_both_ends(make_skill: Any) -> None:
    engine = make_engine([
        make_skill("Producer", ["input_query"], [("passages", list)]),
        make_skill("Consumer", [("passages", dict)], ["out"]),
        make_skill("Fine", [("passages", list[Any])], ["fine"]),
        make_skill("BadField", ["input_query"], [("final_response", int)]),
    ])
    found = problems(engine, ["Producer", "Consumer", "Fine", "BadField"])
    messages = [str(p) for p in found["type_mismatch"]]
    assert len(messages) == 2
    assert any("'Producer' produces list but 'Consumer' expects dict" in m for m in messages)
    assert any("'final_response' is a UIF field of type" in m and "BadField" in m for m in messages)


def test_untrusted_output_must_pass_a_vetting_skill(make_skill: Any) -> None:
    web = make_skill("WebTool", ["input_query"], ["web_results"], requires_external_access=True)
    vet = make_skill("Vetter", ["web_results"], ["vetted_results"], vets_content=True)
    direct = make_skill("RespDirect", ["web_results"], ["final_response"])
    vetted = make_skill("RespVetted", ["vetted_results"], ["final_response"])
    engine = make_engine([web, vet, direct, vetted])
    (problem,) = engine.validate_plan(["WebTool", "RespDirect"])
    assert problem.code == "untrusted_output"
    assert problem.path == ("WebTool", "RespDirect")
    assert engine.validate_plan(["WebTool", "Vetter", "RespVetted"]) == []
    assert make_engine([web, direct], require_vetting=False).validate_plan(["WebTool", "RespDirect"]) == []


def test_duplicate_and_empty_plans(make_skill: Any) -> None:
    engine = make_engine([make_skill("Once", ["input_query"], ["o"])])
    assert [p.code for p in engine.validate_plan(["Once", "Once"])] == ["duplicate_skill"]
    assert [p.code for p in engine.validate_plan([])] == ["empty_plan"]


def test_optional_inputs_need_no_producer_but_order_after_one(make_skill: Any) -> None:
    engine = make_engine([
        make_skill("Main", ["input_query"], ["answer"], optional=["extra"]),
        make_skill("Extra", ["input_query"], ["extra"]),
    ])
    assert engine.validate_plan(["Main"]) == []
    assert engine.compile(["Main", "Extra"]).stages == (("Extra",), ("Main",))


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"skill_name": ""}, "skill_name must be a non-empty string"),
        ({"skill_description": " "}, "skill_description"),
        ({"required_inputs": ["a"], "optional_inputs": ["a"]}, "both required and optional"),
        ({"required_inputs": "input_query"}, "must be a list of key names"),
        ({"output_keys": ["a", "a"]}, "lists 'a' twice"),
        ({"output_keys": ["status"]}, "managed by the coordinator"),
        ({"max_execution_time": -1}, "max_execution_time must be a positive number"),
        ({"output_keys": [("a", int, "extra")]}, "must be a key name or a (name, type) pair"),
    ],
)
def test_skill_definitions_are_checked_at_class_creation(attrs: dict[str, Any], message: str) -> None:
    from sof_core import BaseSkillModule

    namespace = {
        "skill_name": "Broken",
        "skill_description": "x",
        "execute": lambda self, uif: uif,
        **attrs,
    }
    with pytest.raises(SkillDefinitionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        type("Broken", (BaseSkillModule,), namespace)


def test_unnamed_intermediate_bases_are_allowed() -> None:
    from sof_core import BaseSkillModule, SkillSpec

    class Base(BaseSkillModule):
        skill_description = "shared behaviour"

        def execute(self, uif: Any) -> Any:
            return uif

    class Concrete(Base):
        skill_name = "Concrete"
        output_keys = {"k": int}

    spec = SkillSpec.from_skill_class(Concrete)
    assert spec.output_types == {"k": int} and not spec.is_async
    with pytest.raises(SkillDefinitionError):
        SkillSpec.from_skill_class(Base)
