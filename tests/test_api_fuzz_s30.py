"""Bad input to the public API is a typed SOF error naming the argument, declaration or
setting at fault: never a bare TypeError/ValueError/RecursionError/OverflowError from
inside SOF, and never a silently wrong answer (a string read letter by letter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule, CoordinatorEngine
from sof_core.config import SOFConfig
from sof_core.config.manager import SOFConfigManager
from sof_core.errors import (
    ConfigError,
    GoalResolutionError,
    PlanValidationError,
    SkillDefinitionError,
)


def _deep_tuple(depth: int) -> tuple[Any, ...]:
    """A tuple nested ``depth`` levels: its repr recurses past Python's limit."""
    nested: tuple[Any, ...] = ()
    for _ in range(depth):
        nested = (nested,)
    return nested


def _deep_dict(depth: int) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for _ in range(depth):
        nested = {"a": nested}
    return nested


class _Fetch(BaseSkillModule):
    skill_name = "FuzzFetch"
    skill_description = "fetch"
    required_inputs = ["input_query"]
    output_keys = {"docs": list}

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["docs"] = ["a"]
        return uif


class _Summ(BaseSkillModule):
    skill_name = "FuzzSumm"
    skill_description = "summ"
    required_inputs = ["docs"]
    output_keys = {"summary": str}

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["summary"] = "s"
        return uif


@pytest.fixture
def engine() -> CoordinatorEngine:
    built = CoordinatorEngine(config=SOFConfig())
    built.register_skills([_Fetch, _Summ], plugin_name="fuzz")
    return built


# --- available, plans and executors ------------------------------------------------------

def test_resolve_goal_takes_one_available_key_as_a_plain_string(engine: CoordinatorEngine) -> None:
    # read letter by letter, "docs" made the plan include docs' producer needlessly
    assert engine.resolve_goal("summary", available="docs") == ["FuzzSumm"]


def test_validate_plan_takes_one_available_key_as_a_plain_string(
        engine: CoordinatorEngine) -> None:
    assert engine.validate_plan(["FuzzSumm"], "docs") == []
    assert not engine.compile(["FuzzSumm"], "docs").problems


@pytest.mark.parametrize("available", [None, 5, [["docs"]], [3], b"docs"],
                         ids=["None", "int", "unhashable", "int-item", "bytes"])
def test_validate_plan_with_odd_available_is_an_available_type_problem(
        engine: CoordinatorEngine, available: Any) -> None:
    with pytest.raises(PlanValidationError) as info:
        engine.validate_plan(["FuzzSumm"], available)
    assert [p.code for p in info.value.problems] == ["available_type"]
    assert "available must be a key or a list of keys" in str(info.value)


@pytest.mark.parametrize("available", [None, 5, [["docs"]], [3]],
                         ids=["None", "int", "unhashable", "int-item"])
def test_resolve_goal_with_odd_available_is_a_goal_resolution_error(
        engine: CoordinatorEngine, available: Any) -> None:
    with pytest.raises(GoalResolutionError, match="available must be a key or a list of keys"):
        engine.resolve_goal("summary", available=available)


def test_available_as_keys_of_a_mapping_still_counts(engine: CoordinatorEngine) -> None:
    assert engine.resolve_goal("summary", available={"docs": ["a"]}) == ["FuzzSumm"]
    assert engine.validate_plan(["FuzzSumm"], {"docs": ["a"]}) == []


def test_build_graph_given_a_string_is_one_plan_type_problem(engine: CoordinatorEngine) -> None:
    # it was read letter by letter: seven unknown_skill problems
    with pytest.raises(PlanValidationError) as info:
        engine.build_graph("FuzzFetch")  # type: ignore[arg-type]
    assert [p.code for p in info.value.problems] == ["plan_type"]
    assert "['FuzzFetch']" in str(info.value)


def test_build_graph_given_a_list_still_builds(engine: CoordinatorEngine) -> None:
    graph = engine.build_graph(["FuzzFetch", "FuzzSumm"])
    assert graph.edges["FuzzFetch", "FuzzSumm"]["keys"] == ["docs"]


def test_execute_plan_with_unhashable_executor_is_config_error(engine: CoordinatorEngine) -> None:
    with pytest.raises(ConfigError, match="executor") as info:
        engine.execute_plan(["FuzzFetch"], UIF(input_query="q"),
                            executor=["threads"])  # type: ignore[arg-type]
    assert info.value.key == "executor"


# --- skill declarations ------------------------------------------------------------------

def _skill(attr: str, value: Any, name: str) -> type[BaseSkillModule]:
    namespace = {"skill_name": name, "skill_description": "d", "output_keys": [name.lower()],
                 "execute": lambda self, uif: uif, attr: value}
    return type(name, (BaseSkillModule,), namespace)


@pytest.mark.parametrize("attr", ["max_execution_time", "estimated_execution_time"])
def test_huge_int_seconds_is_skill_definition_error(attr: str) -> None:
    with pytest.raises(SkillDefinitionError, match=attr):
        _skill(attr, 10**400, f"FuzzHuge_{attr}")


@pytest.mark.parametrize("value", [float("nan"), float("-inf"), float("inf"), -5],
                         ids=["nan", "-inf", "inf", "neg"])
def test_estimated_execution_time_must_be_a_number_of_seconds(value: float) -> None:
    with pytest.raises(SkillDefinitionError, match="estimated_execution_time"):
        _skill("estimated_execution_time", value, f"FuzzEst{abs(hash(str(value)))}")


def test_estimated_execution_time_zero_and_fractions_are_fine() -> None:
    assert _skill("estimated_execution_time", 0, "FuzzEstZero").estimated_execution_time == 0
    assert _skill("estimated_execution_time", 0.25, "FuzzEstQ").estimated_execution_time == 0.25


@pytest.mark.parametrize("attr,value", [
    ("output_keys", [_deep_tuple(5000)]),
    ("can_run_parallel", _deep_tuple(5000)),
    ("isolation", _deep_tuple(5000)),
    ("permissions", [_deep_tuple(5000)]),
    ("skill_version", 10**5000),
], ids=["output_keys", "can_run_parallel", "isolation", "permissions", "skill_version"])
def test_bad_declaration_with_unprintable_value_is_skill_definition_error(
        attr: str, value: Any) -> None:
    with pytest.raises(SkillDefinitionError, match=attr) as info:
        _skill(attr, value, f"FuzzDeep_{attr}")
    assert len(str(info.value)) < 1000


# --- configuration -----------------------------------------------------------------------

@pytest.mark.parametrize("ext", [".json", ".toml"])
def test_update_config_deeply_nested_mapping_is_config_error(tmp_path: Path, ext: str) -> None:
    path = tmp_path / ("config" + ext)
    manager = SOFConfigManager(path)
    manager.update_config(planner="rule_based")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="planner_options") as info:
        manager.update_config(planner_options=_deep_dict(2000))
    assert info.value.key == "planner_options"
    assert path.read_bytes() == before


def test_update_config_huge_int_is_config_error(tmp_path: Path) -> None:
    manager = SOFConfigManager(tmp_path / "config.json")
    with pytest.raises(ConfigError, match="use_sof_framework") as info:
        manager.update_config(use_sof_framework=10**5000)
    assert info.value.key == "use_sof_framework"
    assert len(str(info.value)) < 1000


@pytest.mark.parametrize("ext", [".json", ".toml"])
def test_update_config_lone_surrogate_is_config_error(tmp_path: Path, ext: str) -> None:
    # a config.toml write failed with a bare UnicodeEncodeError; a config.json stored it
    path = tmp_path / ("config" + ext)
    manager = SOFConfigManager(path)
    manager.update_config(planner="rule_based")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="planner") as info:
        manager.update_config(planner="x\ud800")
    assert info.value.key == "planner"
    assert path.read_bytes() == before
    assert SOFConfigManager(path).config.planner == "rule_based"


def test_update_config_int_too_long_to_write_is_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    manager = SOFConfigManager(path)
    with pytest.raises(ConfigError, match="too long to write") as info:
        manager.update_config(planner_options={"rule_based": {"n": 10**5000}})
    assert info.value.key == "planner_options"
    assert not path.exists()
