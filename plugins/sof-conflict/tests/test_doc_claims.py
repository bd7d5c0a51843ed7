"""Claims of docs/plugins/conflict.md that no other test checked: input defaults, the error
and its attributes, record details, the rules planner's hooks and the taint rule."""

from __future__ import annotations

import os
import re
from importlib.metadata import requires
from pathlib import Path

import pytest
from sof_conflict import ConflictDetectorSkill, ConflictInputError, detect_conflicts

from sof_core import UIF, BaseSkillModule, CoordinatorEngine, PluginManager, SOFConfig, SOFError
from sof_core.testing import SofCLI, make_engine

GENERIC = ["default", "value", "result", "output", "input", "answer", "return", "type", "name",
           "option", "setting", "parameter", "argument", "example", "one", "thing"]


def test_the_distribution_depends_on_sof_core_alone() -> None:
    needed = [r for r in requires("sof-conflict") or [] if "extra ==" not in r]

    assert [re.split(r"[<>=!~ ;]", r)[0] for r in needed] == ["sof-core"]


# --- inputs ------------------------------------------------------------------------------------


def test_id_defaults_to_memory_index_and_source_to_empty() -> None:
    [conflict] = detect_conflicts([{"text": "X has 12 modules."}, {"text": "X has 15 modules."}])

    assert [(p["id"], p["source"]) for p in conflict["passages"]] == [
        ("memory-0", ""), ("memory-1", "")]


def test_the_error_names_the_entry_and_the_field_as_documented() -> None:
    with pytest.raises(ConflictInputError) as caught:
        detect_conflicts([{"id": "a", "text": 3}])

    error = caught.value
    assert str(error) == (
        "memory_results[0]['text']: expected the passage text as a string, got int")
    assert (error.key, error.index, error.field) == ("memory_results", 0, "text")
    assert isinstance(error, SOFError) and isinstance(error, ValueError)


# --- the record --------------------------------------------------------------------------------


def test_the_documented_record_of_the_planted_contradiction() -> None:
    [conflict] = detect_conflicts([
        {"id": "6e56", "source": "sam-wiki/memory-history.md",
         "text": "The SAM memory system was redesigned in 2023."},
        {"id": "91ab", "source": "release-notes/sam-2.0.md",
         "text": "Release notes for SAM 2.0: the SAM memory system was redesigned in 2024."},
    ])

    assert conflict["subject"] == "The SAM memory system was redesigned in \u2026"
    assert conflict["kind"] == "date"
    assert conflict["values"] == ["2023", "2024"]
    assert conflict["key"] == ["memory", "redesign", "sam", "system"]  # sorted subject stems
    assert [p["origin"] for p in conflict["passages"]] == ["memory", "memory"]
    assert conflict["description"] == (
        'Sources disagree on the date in "The SAM memory system was redesigned in \u2026": '
        "sam-wiki/memory-history.md says 2023, while release-notes/sam-2.0.md says 2024.")


def test_a_negation_holds_both_statements_in_the_order_seen_and_the_affirmed_subject() -> None:
    [conflict] = detect_conflicts([{"text": "The feature is not enabled."},
                                   {"text": "The feature is enabled."}])

    assert conflict["kind"] == "negation"
    assert conflict["values"] == ["The feature is not enabled", "The feature is enabled"]
    assert conflict["subject"] == "The feature is enabled"


def test_named_values_whose_words_contain_the_others_are_compatible() -> None:
    assert detect_conflicts([{"text": "The CEO is Alice Smith."},
                             {"text": "The CEO is Alice."}]) == []


@pytest.mark.parametrize("word", GENERIC)
def test_a_subject_of_one_generic_word_is_never_enough(word: str) -> None:
    for first, second in ((f"The {word} is SQLite.", f"The {word} is Postgres."),
                          (f"The {word} is 5.", f"The {word} is 10.")):
        assert detect_conflicts([{"text": first}, {"text": second}]) == []


# --- the rules planner -----------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "Do the sources disagree about the redesign?",
    "Do they contradict each other?",
    "Are there conflicting dates?",
    "Do the documents agree on the date?",
])
def test_the_triggers_match_questions_about_disagreement(query: str) -> None:
    assert any(re.search(p, query, re.IGNORECASE) for p in ConflictDetectorSkill.triggers)


def test_planning_joins_wants_passages_from_more_than_one_source() -> None:
    skill = ConflictDetectorSkill()
    two = [{"text": "a", "source": "x.md"}, {"text": "b", "source": "y.md"}]
    one = [{"text": "a", "source": "x.md"}, {"text": "b", "source": "x.md"}]

    assert skill.planning_joins({"memory_results": two}) is True
    assert skill.planning_joins({"memory_results": one}) is False
    assert skill.planning_joins({"memory_results": []}) is False


@pytest.fixture
def sample_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CoordinatorEngine:
    """The installed memory, conflict and response plugins over the sample memory."""
    pytest.importorskip("sof_memory", reason="the memory plugin (plugins/sof-memory)")
    pytest.importorskip("sof_response", reason="the response plugin (plugins/sof-response)")
    sof = SofCLI(tmp_path)
    assert sof("memory", "import", "--sample").ok
    for key in [k for k in os.environ if k.startswith("SOF_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SOF_MEMORY_PATH", str(sof.memory_path))
    monkeypatch.setenv("SOF_CONFIG", str(sof.config_path))
    config = SOFConfig(plugins_only=["memory", "conflict", "response"])
    return CoordinatorEngine(PluginManager(config), config)


def test_a_question_about_disagreement_is_planned_with_memory_retrieval(
    sample_engine: CoordinatorEngine,
) -> None:
    planned = sample_engine.planning.plan("Do the documents agree on when SAM was redesigned?")

    assert planned.plan == ["MemoryRetrievalSkill", "ConflictDetectorSkill",
                            "ResponseGenerationSkill"]


def test_a_planned_run_adds_the_detector_when_memory_has_several_sources(
    sample_engine: CoordinatorEngine,
) -> None:
    query = "When was the SAM memory system redesigned?"
    assert "ConflictDetectorSkill" not in sample_engine.planning.plan(query).plan

    report = sample_engine.run_query(query)

    assert report.status == "success", report.errors
    assert report.uif.executed_skills == ["MemoryRetrievalSkill", "ConflictDetectorSkill",
                                          "ResponseGenerationSkill"]
    # the sample's planted contradiction: a note naming both sources
    note = report.uif.final_response.split("Note: sources disagree")[1]
    assert "release-notes/sam-2.0.md" in note and "sam-wiki/memory-history.md" in note


def test_a_planned_run_whose_memory_found_nothing_skips_the_detector(
    sample_engine: CoordinatorEngine,
) -> None:
    report = sample_engine.run_query("zzqx wvvy kkpj")

    assert report.status == "success", report.errors
    assert report.uif.executed_skills == ["MemoryRetrievalSkill", "ResponseGenerationSkill"]


# --- the taint rule ----------------------------------------------------------------------------


class WebSearch(BaseSkillModule):
    skill_name = "WebSearch"
    skill_description = "Test double: a tool with external access writing tool_results"
    required_inputs = ["input_query"]
    output_keys = [("tool_results", list)]
    requires_external_access = True

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["tool_results"] = [{"tool": "web", "content": "X has 15 modules."}]
        return uif


class Memory(BaseSkillModule):
    skill_name = "MemoryRetrievalSkill"
    skill_description = "Test double: writes memory_results"
    required_inputs = ["input_query"]
    output_keys = [("memory_results", list)]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["memory_results"] = [{"text": "X has 12 modules."}]
        return uif


class Answer(BaseSkillModule):
    skill_name = "ResponseGenerationSkill"
    skill_description = "Test double: answers from the conflicts"
    required_inputs = ["input_query"]
    optional_inputs = [("conflicts", list)]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = str(uif.intermediate_data.get("conflicts"))
        return uif


def test_external_tool_results_through_the_detector_still_need_a_vetting_skill() -> None:
    engine = make_engine([WebSearch, Memory, ConflictDetectorSkill, Answer])

    problems = engine.validate_plan(
        ["WebSearch", "MemoryRetrievalSkill", "ConflictDetectorSkill", "ResponseGenerationSkill"])

    assert "untrusted_output" in {p.code for p in problems}
    assert any("WebSearch" in str(p) for p in problems)
