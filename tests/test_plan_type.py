"""A plan is a list of skill-name strings; anything else is a ``plan_type`` problem.

Found by the fault matrix of issue 8: a plan that was not a list of strings raised a bare
``TypeError``/``AttributeError`` from deep inside validation, and a plan given as one string
was validated letter by letter ("unknown skill 'M'", ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule, CoordinatorEngine, PlanValidationError
from sof_core.testing import make_engine


class Echo(BaseSkillModule):
    skill_name = "Echo"
    skill_description = "copies the query to the response"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = uif.input_query
        return uif


@pytest.fixture
def engine() -> CoordinatorEngine:
    return make_engine([Echo])


ENTRY_POINTS: dict[str, Callable[[CoordinatorEngine, Any], object]] = {
    "compile": lambda e, plan: e.compile(plan),
    "validate_plan": lambda e, plan: e.validate_plan(plan),
    "execute_plan": lambda e, plan: e.execute_plan(plan, UIF(input_query="q")),
    "run_query": lambda e, plan: e.run_query("q", plan),
}

BAD_PLANS = [
    pytest.param("Echo", ["plan is a str ('Echo'), not a list of skill names; pass a list "
                          "such as ['Echo']"], id="str"),
    pytest.param("Echo, Other", ["plan is a str ('Echo, Other'), not a list of skill names; "
                                 "pass a list such as ['Echo', 'Other']"], id="str-commas"),
    pytest.param(b"Echo", ["plan is a bytes (b'Echo'), not a list of skill names; pass a "
                           "list such as ['Echo']"], id="bytes"),
    pytest.param(5, ["plan is an int (5), not a list of skill names; pass a list of strings "
                     "such as ['MemoryRetrievalSkill']"], id="int"),
    pytest.param({"Echo": 1}, ["plan is a dict ({'Echo': 1}), not a list of skill names; "
                               "pass a list of strings such as ['MemoryRetrievalSkill']"],
                 id="dict"),
    pytest.param({"Echo"}, ["plan is a set ({'Echo'}), not a list of skill names; pass a "
                            "list of strings such as ['MemoryRetrievalSkill']"], id="set"),
    pytest.param(["Echo", 3, None], [
        "plan item 1 is an int (3), not a skill name; a plan is a list of skill-name strings",
        "plan item 2 is None, not a skill name; a plan is a list of skill-name strings",
    ], id="mixed-items"),
    pytest.param([["Echo"]], ["plan item 0 is a list (['Echo']), not a skill name; a plan is "
                              "a list of skill-name strings"], id="unhashable-item"),
    pytest.param(("Echo", 1.5), ["plan item 1 is a float (1.5), not a skill name; a plan is "
                                 "a list of skill-name strings"], id="tuple"),
]


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize(("plan", "messages"), BAD_PLANS)
def test_a_plan_of_the_wrong_type_is_a_plan_validation_error(
    engine: CoordinatorEngine, entry: str, plan: Any, messages: list[str]
) -> None:
    with pytest.raises(PlanValidationError) as info:
        ENTRY_POINTS[entry](engine, plan)
    problems = info.value.problems
    assert [p.code for p in problems] == ["plan_type"] * len(messages)
    assert [p.message for p in problems] == messages


@pytest.mark.parametrize("entry", ["compile", "validate_plan", "execute_plan"])
def test_none_is_not_a_plan_except_where_it_means_the_default(
    engine: CoordinatorEngine, entry: str
) -> None:
    with pytest.raises(PlanValidationError, match="plan is None, not a list of skill names"):
        ENTRY_POINTS[entry](engine, None)


def test_run_query_without_a_plan_still_runs_the_default_plan() -> None:
    engine = make_engine([Echo], default_plan=["Echo"])
    assert engine.run_query("hello").final_response == "hello"
    assert engine.run_query("hello", None).final_response == "hello"


def test_a_generator_is_refused_rather_than_consumed_half_way(
    engine: CoordinatorEngine,
) -> None:
    with pytest.raises(PlanValidationError, match="plan is a generator"):
        engine.validate_plan(name for name in ["Echo"])


@pytest.mark.parametrize("plan", [["Echo"], ("Echo",)])
def test_lists_and_tuples_of_names_are_plans(engine: CoordinatorEngine, plan: Any) -> None:
    assert engine.validate_plan(plan) == []
    assert engine.execute_plan(plan, UIF(input_query="hi")).final_response == "hi"


def test_the_problem_is_in_the_json_of_validation_errors(engine: CoordinatorEngine) -> None:
    with pytest.raises(PlanValidationError) as info:
        engine.validate_plan("Echo")
    (problem,) = info.value.problems
    assert problem.to_dict() == {
        "code": "plan_type",
        "message": "plan is a str ('Echo'), not a list of skill names; pass a list such as "
                   "['Echo']",
        "skills": [], "key": None, "path": [],
    }


class _One(BaseSkillModule):
    skill_name = "E"
    skill_description = "a skill with a one-letter name"
    output_keys = ["e"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["e"] = 1
        return uif


def test_a_cached_plan_never_lets_a_bad_plan_through() -> None:
    """Runs of a list or tuple look the compiled plan up before checking its items (they
    were checked when it was compiled); a str whose letters name a cached plan, or bad items
    after cached runs, are still refused."""
    engine = make_engine([_One, Echo])
    assert engine.execute_plan(["E"], UIF(input_query="q")).succeeded
    assert engine.execute_plan(("E",), UIF(input_query="q")).succeeded
    with pytest.raises(PlanValidationError, match=r"plan is a str \('E'\)"):
        engine.execute_plan("E", UIF(input_query="q"))
    with pytest.raises(PlanValidationError, match="plan item 1 is a list"):
        engine.execute_plan(["E", ["Echo"]], UIF(input_query="q"))
    assert engine.execute_plan(["E"], UIF(input_query="q")).succeeded
