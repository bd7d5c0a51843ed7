"""ConflictDetectorSkill inside SOF: its contract, its place in a plan, and its plugin."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import pytest
import sof_conflict.plugin
from sof_conflict import ConflictDetectorSkill

from sof_core import UIF, BaseSkillModule, SkillSpec
from sof_core.testing import (
    check_plugin_module,
    check_skill_contract,
    import_footprint,
    make_engine,
)

PLANTED = [
    {
        "id": "wiki-1",
        "text": "SAM keeps memories. The SAM memory system was redesigned in 2023.",
        "source": "sam-wiki/memory-history.md",
        "score": 0.92,
        "created_at": "2023-06-01T00:00:00Z",
        "metadata": {"tags": ["sam"]},
    },
    {
        "id": "notes-7",
        "text": "Release notes for SAM 2.0: the SAM memory system was redesigned in 2024.",
        "source": "release-notes/sam-2.0.md",
        "score": 0.88,
        "created_at": "2024-02-01T00:00:00Z",
        "metadata": {},
    },
    {
        "id": "caps-2",
        "text": "Knowledge capsules can be exported and shared.",
        "source": "sam-wiki/knowledge-capsules.md",
        "score": 0.41,
        "created_at": None,
        "metadata": {},
    },
]


class PlantedMemorySkill(BaseSkillModule):
    """Stands in for MemoryRetrievalSkill: writes fixed ``memory_results`` with a conflict."""

    skill_name = "MemoryRetrievalSkill"
    skill_description = "Test double: returns planted memories"
    required_inputs = ["input_query"]
    output_keys = {"memory_results": list}

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["memory_results"] = [dict(p) for p in PLANTED]
        return uif


class EchoResponseSkill(BaseSkillModule):
    """Stands in for ResponseGenerationSkill: reports which conflicts it was given."""

    skill_name = "ResponseGenerationSkill"
    skill_description = "Test double: answers by listing conflicts it saw"
    required_inputs = [("memory_results", list)]
    optional_inputs = [("conflicts", list)]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        conflicts = uif.intermediate_data.get("conflicts") or []
        uif.final_response = " | ".join(c["description"] for c in conflicts) or "no conflicts"
        return uif


# --- the declared contract ---------------------------------------------------------------


def test_declarations_are_the_documented_ones() -> None:
    spec = SkillSpec.from_skill_class(ConflictDetectorSkill)
    assert spec.name == "ConflictDetectorSkill"
    assert spec.required_inputs == ("memory_results",)
    assert spec.key_types["memory_results"] is list
    assert spec.optional_inputs == ("tool_results",)
    assert spec.output_keys == ("conflicts",)
    assert spec.output_types == {"conflicts": list}
    assert not spec.requires_external_access


def test_keeps_the_skill_contract_with_memory_results() -> None:
    report = check_skill_contract(ConflictDetectorSkill, inputs={"memory_results": PLANTED})
    conflicts = report.uif.intermediate_data["conflicts"]
    assert [c["kind"] for c in conflicts] == ["date"]


def test_keeps_the_skill_contract_with_tool_results_and_no_conflict() -> None:
    report = check_skill_contract(
        ConflictDetectorSkill,
        inputs={
            "memory_results": PLANTED[2:],
            "tool_results": [{"tool": "calculator", "content": "2 + 2 = 4"}],
        },
    )
    assert report.uif.intermediate_data["conflicts"] == []


def test_a_tool_result_can_contradict_memory() -> None:
    report = check_skill_contract(
        ConflictDetectorSkill,
        inputs={
            "memory_results": PLANTED[:1],
            "tool_results": [
                {"tool": "web_search", "content": "The SAM memory system was redesigned in 2022."}
            ],
        },
    )
    (conflict,) = report.uif.intermediate_data["conflicts"]
    assert [p["source"] for p in conflict["passages"]] == [
        "sam-wiki/memory-history.md",
        "tool:web_search",
    ]


def test_writes_only_conflicts() -> None:
    engine = make_engine([ConflictDetectorSkill])
    data = {"memory_results": PLANTED, "tool_results": [], "unrelated": {"keep": 1}}
    uif = UIF(input_query="When was memory redesigned?", intermediate_data=dict(data))
    before = uif.model_dump()
    report = engine.execute_plan(["ConflictDetectorSkill"], uif)
    assert report.status == "success"
    after = report.uif.model_dump()
    assert set(after["intermediate_data"]) == {*data, "conflicts"}
    for key, value in data.items():
        assert after["intermediate_data"][key] == value
    bookkeeping = {
        "status", "log_trace", "skill_outputs", "execution_plan", "executed_skills",
        "skill_timings", "start_time", "end_time", "intermediate_data",
    }
    changed = {name for name in before if before[name] != after[name]}
    assert changed <= bookkeeping, changed - bookkeeping


# --- in a plan ---------------------------------------------------------------------------


def test_runs_between_retrieval_and_response_and_finds_the_planted_conflict() -> None:
    engine = make_engine([EchoResponseSkill, ConflictDetectorSkill, PlantedMemorySkill])
    plan = ["ResponseGenerationSkill", "ConflictDetectorSkill", "MemoryRetrievalSkill"]
    report = engine.execute_plan(plan, UIF(input_query="When was SAM memory redesigned?"))

    assert report.status == "success", report.errors
    assert report.stages == [
        ["MemoryRetrievalSkill"], ["ConflictDetectorSkill"], ["ResponseGenerationSkill"]
    ]
    (conflict,) = report.uif.intermediate_data["conflicts"]
    assert conflict["kind"] == "date"
    assert conflict["values"] == ["2023", "2024"]
    assert [(p["id"], p["source"]) for p in conflict["passages"]] == [
        ("wiki-1", "sam-wiki/memory-history.md"),
        ("notes-7", "release-notes/sam-2.0.md"),
    ]
    assert conflict["passages"][0]["text"] == "The SAM memory system was redesigned in 2023."
    assert conflict["passages"][1]["text"] == (
        "Release notes for SAM 2.0: the SAM memory system was redesigned in 2024."
    )
    assert report.final_response == conflict["description"]


def test_goal_planning_with_optional_inputs_places_it_before_the_response() -> None:
    engine = make_engine([EchoResponseSkill, ConflictDetectorSkill, PlantedMemorySkill])
    everything = engine.resolve_goal(["final_response"], include_optional=True)
    order = ["MemoryRetrievalSkill", "ConflictDetectorSkill", "ResponseGenerationSkill"]
    assert [name for name in everything if name in order] == order
    others = {"AgentZeroWebBrowserTool", "CalculatorTool", "ContentVettingSkill"}
    present = others & set(engine.registry.skill_names())
    assert set(everything) == set(order) | present
    assert everything[-1] == "ResponseGenerationSkill"


@pytest.mark.parametrize("executor", ["sequential", "threads", "asyncio"])
def test_same_conflicts_under_every_builtin_executor(executor: str) -> None:
    engine = make_engine([EchoResponseSkill, ConflictDetectorSkill, PlantedMemorySkill])
    plan = ["MemoryRetrievalSkill", "ConflictDetectorSkill", "ResponseGenerationSkill"]
    report = engine.execute_plan(plan, UIF(input_query="q"), executor=executor)
    assert report.status == "success", report.errors
    assert len(report.uif.intermediate_data["conflicts"]) == 1


def test_malformed_memory_fails_the_skill_with_a_message_naming_the_field() -> None:
    engine = make_engine([ConflictDetectorSkill])
    uif = UIF(input_query="q", intermediate_data={"memory_results": [{"id": "a", "text": 3}]})
    report = engine.execute_plan(["ConflictDetectorSkill"], uif)
    result = report.result("ConflictDetectorSkill")
    assert result is not None and result.status == "failed"
    assert result.error_type == "SkillExecutionError"
    assert "memory_results[0]['text']" in (result.error or "")
    assert any("ConflictDetectorSkill" in e and "memory_results[0]" in e for e in report.errors)
    assert "conflicts" not in report.uif.intermediate_data


# --- the plugin --------------------------------------------------------------------------


def test_plugin_module_registers_the_skill() -> None:
    assert check_plugin_module("conflict", sof_conflict.plugin) == ["ConflictDetectorSkill"]


def test_entry_point_is_declared_in_the_installed_distribution() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="sof.plugins")}
    assert found.get("conflict") == "sof_conflict.plugin"


def test_autoloading_finds_the_skill() -> None:
    engine = make_engine(autoload=True, plugins_only=["conflict"])
    assert "ConflictDetectorSkill" in engine.registry


def test_with_the_bundled_memory_and_response_plugins(tmp_path: Any) -> None:
    """The real neighbours, when installed: SQLite memory -> conflicts -> extractive answer."""
    memory = pytest.importorskip("sof_memory")
    backend_module = pytest.importorskip("sof_memory.sqlite_backend")
    response = pytest.importorskip("sof_response")
    store = backend_module.SQLiteMemoryBackend(tmp_path / "memory.db")
    try:
        store.add(PLANTED[0]["text"], source=PLANTED[0]["source"])
        store.add(PLANTED[1]["text"], source=PLANTED[1]["source"])
        engine = make_engine(
            [
                memory.MemoryRetrievalSkill(backend=store),
                ConflictDetectorSkill,
                response.ResponseGenerationSkill(),
            ]
        )
        plan = ["MemoryRetrievalSkill", "ConflictDetectorSkill", "ResponseGenerationSkill"]
        report = engine.execute_plan(plan, UIF(input_query="When was the SAM memory redesigned?"))
    finally:
        store.close()
    assert report.status == "success", report.errors
    assert report.stages == [[name] for name in plan]
    (conflict,) = report.uif.intermediate_data["conflicts"]
    assert {p["source"] for p in conflict["passages"]} == {
        "sam-wiki/memory-history.md",
        "release-notes/sam-2.0.md",
    }
    assert "disagree" in (report.final_response or "")


def test_goal_planning_over_the_installed_bundled_plugins_matches_the_docs() -> None:
    from sof_core import CoordinatorEngine, SOFConfig

    engine = CoordinatorEngine(config=SOFConfig())
    assert engine.resolve_goal(["final_response"]) == ["ResponseGenerationSkill"]
    everything = engine.resolve_goal(["final_response"], include_optional=True)
    order = ["MemoryRetrievalSkill", "ConflictDetectorSkill", "ResponseGenerationSkill"]
    assert [name for name in everything if name in order] == order
    others = {"AgentZeroWebBrowserTool", "CalculatorTool", "ContentVettingSkill"}
    present = others & set(engine.registry.skill_names())
    assert set(everything) == set(order) | present
    assert everything[-1] == "ResponseGenerationSkill"


def test_loading_the_plugin_leaves_the_detector_for_the_first_run() -> None:
    """Every ``sof`` process loads the plugin; many run no conflict detection. Loading and
    registering it imports neither the detector nor its claim extraction and compiles none
    of their patterns; the skill's first run does, finds the conflict, and reports a
    malformed input as before."""
    load, first_run = import_footprint(
        """
        from sof_conflict import plugin
        [skill_class] = plugin.sof_register_skills()
        """,
        f"""
        from sof_core import UIF, SkillExecutionError
        skill = skill_class()
        uif = skill.execute(UIF(input_query="q", intermediate_data={{
            "memory_results": {PLANTED!r}}}))
        [conflict] = uif.intermediate_data["conflicts"]
        assert conflict["kind"] == "date", conflict
        try:
            skill.execute(UIF(input_query="q", intermediate_data={{
                "memory_results": [{{"id": "x"}}]}}))
        except SkillExecutionError as error:
            assert "memory_results[0]" in str(error), error
        else:
            raise AssertionError("a malformed memory passed")
        from sof_conflict import Claim, detect_conflicts, extract_claims
        assert isinstance(extract_claims("SAM was redesigned in 2023.")[0], Claim)
        assert detect_conflicts({PLANTED!r}) == uif.intermediate_data["conflicts"]
        """,
    )
    deferred = ["sof_conflict.detector", "sof_conflict._claims", "sof_conflict._text"]
    assert not load.compiled_in("sof_conflict")
    assert not load.loaded(deferred)
    assert first_run.loaded(deferred) == sorted(deferred)
    assert first_run.compiled_in("sof_conflict")


def test_a_bad_entry_in_a_run_is_named_by_the_type_the_host_wrote() -> None:
    # In a run the skill reads read-only views of lists and dicts; the error says "list".
    engine = make_engine([ConflictDetectorSkill])
    uif = UIF(input_query="q", intermediate_data={"memory_results": [["not", "a", "dict"]]})
    report = engine.execute_plan(["ConflictDetectorSkill"], uif)
    assert report.status == "failure"
    assert report.errors == [
        "ConflictDetectorSkill: SkillExecutionError: memory_results[0]: expected a dict with "
        "'text', 'id' and 'source', got list; inputs must follow the documented shape (see "
        "docs/plugins/conflict.md)"]
