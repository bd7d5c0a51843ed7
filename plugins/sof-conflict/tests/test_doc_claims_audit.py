"""More claims of docs/plugins/conflict.md that no other test checked: the limits of a clause
(values, words, characters), the minimum subject sizes of a loose match, stemming, tool
content that is not text, the error's attributes for tool results, and ``extract_claims``."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sof_conflict import ConflictDetectorSkill, ConflictInputError, detect_conflicts, extract_claims

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine

#: Words that are no value, no negation, no hedge and no generic word: only length changes.
FILLER = ["q" + "".join(letters) for letters in itertools.product("abcdefgh", repeat=3)]


def memories(*texts: str) -> list[dict[str, Any]]:
    return [{"id": f"mem-{i}", "source": f"notes-{i}.md", "text": text}
            for i, text in enumerate(texts)]


def flagged(first: str, second: str) -> list[dict[str, Any]]:
    return detect_conflicts(memories(first, second))


# --- clause limits ---------------------------------------------------------------------------


def test_a_clause_with_four_values_is_still_read() -> None:
    """"clauses with more than four values" are skipped: four are not more than four."""
    first = "SAM has 12 modules and 3 plugins and 4 tools and 5 hooks."

    [conflict] = flagged(first, first.replace("12", "15"))

    assert conflict["kind"] == "number"
    assert conflict["values"] == ["12", "15"]


def test_a_clause_of_80_words_is_read_and_one_of_81_is_skipped() -> None:
    def pair(words: int) -> tuple[str, str]:
        text = "X has 12 modules " + " ".join(FILLER[:words - 4]) + "."
        assert len(text.split()) == words and len(text) < 500
        return text, text.replace("12", "15")

    assert [c["kind"] for c in flagged(*pair(80))] == ["number"]
    assert flagged(*pair(81)) == []


def test_a_clause_just_under_500_characters_is_read_and_one_over_is_skipped() -> None:
    def pair(length: int) -> tuple[str, str]:
        text = "X has 12 modules " + "z" * (length - 18) + "."
        assert len(text) == length
        return text, text.replace("12", "15")

    assert [c["kind"] for c in flagged(*pair(490))] == ["number"]
    assert flagged(*pair(510)) == []


# --- loose matches ---------------------------------------------------------------------------


def test_a_two_word_subject_is_enough_for_a_loose_date_match_in_any_order() -> None:
    [conflict] = flagged("SAM launched in 2023.", "In 2024 SAM launched.")

    assert conflict["kind"] == "date"
    assert conflict["key"] == ["launch", "sam"]


def test_a_two_word_negation_subject_is_not_enough() -> None:
    """A negation needs three subject words loosely, and three words for an exact match."""
    assert flagged("SAM streams.", "SAM does not stream.") == []


def test_one_word_that_is_not_generic_is_enough_for_a_named_value() -> None:
    [conflict] = flagged("The CEO is Alice.", "The CEO is Bob.")

    assert (conflict["kind"], conflict["values"], conflict["key"]) == (
        "value", ["Alice", "Bob"], ["ceo"])


def test_subject_words_are_lower_cased_and_lightly_stemmed() -> None:
    [date] = flagged("SAM's memory system was redesigned in 2023.",
                     "The SAM memory system was redesigned in 2024.")
    [negation] = flagged("X supports streaming.", "X does not support streaming.")

    assert "sam" in date["key"]  # "SAM's" becomes "sam"
    assert "support" in negation["key"]  # "supports" becomes "support"


def test_a_paragraph_break_ends_a_sentence() -> None:
    [conflict] = flagged("Intro paragraph here\n\nX has 12 modules", "X has 15 modules.")

    assert conflict["passages"][0]["text"] == "X has 12 modules"


# --- tool results ----------------------------------------------------------------------------


def test_tool_content_that_is_json_data_is_skipped() -> None:
    tools = [{"tool": "api", "content": {"text": "X has 15 modules."}},
             {"tool": "list", "content": ["X has 15 modules."]},
             {"tool": "count", "content": 15.0}]

    assert detect_conflicts(memories("X has 12 modules."), tools) == []


def test_a_tool_result_without_source_is_labelled_tool_and_its_name() -> None:
    [conflict] = detect_conflicts(memories("X has 12 modules."),
                                  [{"tool": "web", "content": "X has 15 modules."}])

    assert conflict["passages"][1]["source"] == "tool:web"
    assert conflict["passages"][1]["origin"] == "tool"


def test_the_error_for_a_bad_tool_result_has_key_and_index() -> None:
    with pytest.raises(ConflictInputError) as caught:
        detect_conflicts([], [{"tool": "t", "content": "a"}, "x"])

    assert (caught.value.key, caught.value.index) == ("tool_results", 1)
    assert str(caught.value).startswith("tool_results[1]")


# --- using the detector directly -------------------------------------------------------------


def test_extract_claims_gives_the_claims_one_sentence_makes() -> None:
    claims = extract_claims("The default backend is SQLite.")

    values = [c for c in claims if c.kind == "value"]
    assert len(values) == 1
    assert values[0].subject == "The default backend is \u2026"
    assert values[0].shown == "SQLite"


def test_the_documented_direct_call_flags_the_module_count() -> None:
    conflicts = detect_conflicts(
        [{"id": "a", "source": "wiki", "text": "X has 12 modules."},
         {"id": "b", "source": "notes", "text": "X has 15 modules."}],
        tool_results=[{"tool": "web_search", "content": "X does not have 15 modules."}],
    )

    assert conflicts[0]["kind"] == "number"
    assert conflicts[0]["values"] == ["12", "15"]


# --- without the skill in the plan -------------------------------------------------------------


class TwoSources(BaseSkillModule):
    skill_name = "MemoryRetrievalSkill"
    skill_description = "Test double: two passages that disagree"
    required_inputs = ["input_query"]
    output_keys = [("memory_results", list)]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["memory_results"] = [
            {"id": "a", "source": "wiki", "text": "The SAM memory system was redesigned in 2023."},
            {"id": "b", "source": "notes",
             "text": "The SAM memory system was redesigned in 2024."},
        ]
        return uif


def test_without_the_skill_in_the_plan_the_response_runs_without_conflicts() -> None:
    response = pytest.importorskip("sof_response")
    engine = make_engine([TwoSources, ConflictDetectorSkill, response.ResponseGenerationSkill])
    query = "When was the SAM memory system redesigned?"

    without = engine.execute_plan(["MemoryRetrievalSkill", "ResponseGenerationSkill"],
                                  UIF(input_query=query))
    with_it = engine.execute_plan(
        ["MemoryRetrievalSkill", "ConflictDetectorSkill", "ResponseGenerationSkill"],
        UIF(input_query=query))

    assert without.status == "success" and with_it.status == "success"
    assert "conflicts" not in without.uif.intermediate_data
    assert "sources disagree" not in (without.uif.final_response or "")
    assert "sources disagree" in (with_it.uif.final_response or "")
