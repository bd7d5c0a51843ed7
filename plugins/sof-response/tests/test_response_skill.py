"""ResponseGenerationSkill as a plan step: contract, citations, conflicts, honesty."""

from __future__ import annotations

import json

import pytest
from sof_response import ExtractiveBackend, ResponseGenerationSkill, ResponseSettings
from sof_response import plugin as response_plugin

from sof_core import UIF
from sof_core.testing import (
    check_plugin_module,
    check_skill_contract,
    import_footprint,
    make_engine,
)

QUERY = "When was the SAM memory system redesigned, and what does it store?"
MEMORY = [
    {
        "id": "m1",
        "text": "The SAM memory system was redesigned in 2023. It stores conversations "
        "and documents as embeddings. Lunch is served at noon.",
        "source": "notes/memory.md",
        "score": 0.91,
        "created_at": "2024-03-01T10:00:00",
        "metadata": {"kind": "note"},
    },
    {
        "id": "m2",
        "text": "According to the changelog the memory redesign shipped in 2022.",
        "source": "CHANGELOG.md",
        "score": 0.64,
        "created_at": None,
        "metadata": {},
    },
]
CONFLICTS = [
    {
        "subject": "memory redesign year",
        "values": ["2023", "2022"],
        "passages": [
            {"id": "m1", "source": "notes/memory.md", "text": MEMORY[0]["text"]},
            {"id": "m2", "source": "CHANGELOG.md", "text": MEMORY[1]["text"]},
        ],
        "description": "The sources give different years for the redesign",
    }
]


def run(inputs, query=QUERY, skill=ResponseGenerationSkill, **config):
    report = check_skill_contract(skill, query=query, inputs=inputs, **config)
    return report.uif, report.uif.intermediate_data["response_context"]


def test_the_skill_keeps_the_contract_and_cites_its_memory_sources():
    uif, _ = run({"memory_results": MEMORY})

    answer = uif.final_response
    assert "redesigned in 2023 [1]." in answer
    assert "stores conversations and documents as embeddings [1]." in answer
    assert "Lunch" not in answer  # sentences unrelated to the question are left out
    assert answer.rstrip().endswith("Sources:\n[1] notes/memory.md (id m1)\n[2] CHANGELOG.md (id m2)")
    assert 0.0 <= uif.confidence_score <= 1.0
    assert uif.confidence_score > 0.5


def test_the_response_context_records_prompt_evidence_and_generation_metadata():
    uif, context = run(
        {"memory_results": MEMORY},
        uif_fields={"user_context": {"name": "Ada"}, "active_profile": "researcher"},
    )

    assert context["query"] == QUERY
    assert [m["role"] for m in context["messages"]] == ["system", "user"]
    assert "[1] (notes/memory.md) The SAM memory system" in context["prompt"]
    assert "researcher" in context["messages"][0]["content"]
    assert '"name": "Ada"' in context["messages"][1]["content"]
    assert [s["id"] for s in context["sources"]] == ["m1", "m2"]
    assert context["cited"] == [1, 2]
    assert context["user_context"] == {"name": "Ada"}
    assert context["active_profile"] == "researcher"
    generation = context["generation"]
    assert generation["backend"] == "extractive"
    assert generation["model"] == "extractive"
    assert generation["extractive"] is True
    assert generation["stopped_by_controller"] is False
    assert generation["tokens"] > 0
    assert generation["latency_ms"] >= 0
    json.dumps(context)  # the UIF must serialise, so the context must too
    assert UIF.model_validate_json(uif.model_dump_json()).final_response == uif.final_response


def test_the_extractive_answer_says_it_is_extractive():
    uif, _ = run({"memory_results": MEMORY})

    assert "(extractive answer: no language model configured)" in uif.final_response


def test_unresolved_conflicts_are_named_with_their_sources():
    uif, context = run({"memory_results": MEMORY, "conflicts": CONFLICTS})

    answer = uif.final_response
    assert "Note: sources disagree about memory redesign year" in answer
    assert "'2023' vs '2022'" in answer
    assert "notes/memory.md" in answer.split("Note:")[1]
    assert "CHANGELOG.md" in answer.split("Note:")[1]
    assert context["conflicts"][0]["sources"] == ["notes/memory.md", "CHANGELOG.md"]
    without, _ = run({"memory_results": MEMORY})
    assert uif.confidence_score < without.confidence_score


def test_a_conflict_about_unretrieved_passages_is_still_reported():
    conflict = {"subject": "owner", "values": ["Ana", "Bo"],
                "passages": [{"id": "x9", "source": "wiki/team", "text": "Ana owns it"}],
                "description": "two owners"}

    uif, _ = run({"memory_results": MEMORY[:1], "conflicts": [conflict]})

    assert "sources disagree about owner: two owners, 'Ana' vs 'Bo' (sources: wiki/team)." in (
        uif.final_response
    )


def test_a_description_that_already_names_values_and_sources_is_used_as_it_is():
    conflict = dict(CONFLICTS[0], description=(
        'Sources disagree on "memory redesign year": notes/memory.md says 2023, '
        "while CHANGELOG.md says 2022."
    ))

    uif, _ = run({"memory_results": MEMORY, "conflicts": [conflict]})

    assert (
        'Note: sources disagree on "memory redesign year": notes/memory.md says 2023, '
        "while CHANGELOG.md says 2022 [1][2]."
    ) in uif.final_response


def test_with_no_memory_the_skill_says_so_with_low_confidence():
    uif, context = run({"memory_results": []})

    assert "I found nothing in memory that matches this question" in uif.final_response
    assert "Sources:" not in uif.final_response
    assert uif.confidence_score <= 0.1
    assert context["sources"] == [] and context["cited"] == []


def test_with_no_inputs_at_all_the_skill_still_answers_honestly():
    uif, _ = run({})

    assert "I found nothing in memory" in uif.final_response
    assert uif.confidence_score <= 0.1


def test_passages_that_do_not_match_the_question_are_not_passed_off_as_an_answer():
    uif, _ = run({"memory_results": [{"id": "z", "text": "Bananas are yellow.", "source": "f.txt",
                                      "score": 0.2}]})

    assert "None of the retrieved passages mention the terms of the question" in uif.final_response
    assert uif.confidence_score < 0.3


def test_tool_results_are_used_and_cited_after_the_passages():
    tools = [{"tool": "web_search", "content": "The memory system stores documents in SQLite.",
              "source": "https://example.org/sam"}]

    uif, context = run({"memory_results": MEMORY[1:], "tool_results": tools})

    assert "stores documents in SQLite [2]." in uif.final_response
    assert "[2] https://example.org/sam" in uif.final_response
    assert context["sources"][1]["kind"] == "tool"


def test_structured_tool_content_is_rendered_as_json():
    tools = [{"tool": "calculator", "content": {"memory store result": 42}}]

    uif, _ = run({"tool_results": tools}, query="What is the memory store result?")

    assert '{"memory store result": 42} [1].' in uif.final_response
    assert "[1] tool:calculator" in uif.final_response


def test_passages_beyond_max_passages_are_left_out_and_counted():
    many = [dict(MEMORY[0], id=f"m{i}") for i in range(5)]
    skill = ResponseGenerationSkill(settings={"max_passages": 2})

    _, context = run({"memory_results": many}, skill=skill)

    assert len(context["sources"]) == 2
    assert context["dropped_passages"] == 3


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"memory_results": "not a list"}, "input 'memory_results': must be a list of dicts"),
        ({"memory_results": [{"id": "m1"}]}, "item 0 has no 'text' string"),
        ({"memory_results": ["text"]}, "item 0 is a str, expected a dict"),
        ({"tool_results": [{"tool": "x"}]}, "input 'tool_results': item 0 has no 'content'"),
        ({"conflicts": [{"values": "2022"}]}, "'values' must be a list"),
    ],
)
def test_malformed_inputs_fail_the_skill_with_an_error_naming_the_key(inputs, message):
    engine = make_engine([ResponseGenerationSkill])

    report = engine.execute_plan(
        ["ResponseGenerationSkill"], UIF(input_query=QUERY, intermediate_data=inputs)
    )

    assert report.status == "failure"
    assert message in " ".join(report.errors)
    assert "ResponseGenerationSkill" in " ".join(report.errors)


def test_the_plugin_module_registers_skill_backends_and_controller():
    provided = check_plugin_module("response", response_plugin)

    assert set(provided) == {"ResponseGenerationSkill", "extractive", "openai", "stop"}


def test_an_explicit_extractive_backend_object_is_used_as_given():
    skill = ResponseGenerationSkill(backend=ExtractiveBackend(max_sentences=1))

    uif, context = run({"memory_results": MEMORY}, skill=skill)

    assert uif.final_response.count("[1].") + uif.final_response.count("[2].") == 1
    assert context["generation"]["backend"] == "extractive"


def test_complete_settings_objects_ignore_the_environment(monkeypatch):
    monkeypatch.setenv("SOF_RESPONSE_BACKEND", "openai")
    skill = ResponseGenerationSkill(settings=ResponseSettings(max_sentences=1))

    _, context = run({"memory_results": MEMORY}, skill=skill)

    assert context["generation"]["backend"] == "extractive"


def test_skill_pickles_for_remote_executors_and_still_answers() -> None:
    """Executors such as sof-dask ship skills to workers; live locks and caches stay behind."""
    import pickle

    from sof_response.skill import ResponseGenerationSkill

    from sof_core.testing import check_skill_contract

    skill = ResponseGenerationSkill(settings={"backend": "extractive"})
    skill.settings()  # warm the caches the copy must not carry
    copy = pickle.loads(pickle.dumps(skill))
    passages = [{"id": "a", "text": "Dask runs skills on a cluster.", "source": "dask.md",
                 "score": 0.9, "created_at": 0.0, "metadata": {}}]
    report = check_skill_contract(copy, query="Where do skills run?", inputs={"memory_results": passages})
    assert "dask.md" in report.uif.final_response


def test_loading_the_plugin_leaves_evidence_and_prompt_for_the_first_answer() -> None:
    """Every ``sof`` process loads the plugin, registers and configures the skill, its
    backends and its controller; none of that imports ``sof_response.evidence`` or
    ``sof_response.prompt`` or compiles a pattern. The first answer does, and is cited."""
    load, first_answer = import_footprint(
        """
        from sof_core import UIF
        from sof_core.testing import make_engine
        from sof_response import plugin
        engine = make_engine(plugins=[("response", plugin)])
        assert sorted(engine.registry.components("llm_backends")) == ["extractive", "openai"]
        """,
        f"""
        import re
        uif = UIF(input_query={QUERY!r}, intermediate_data={{"memory_results": {MEMORY!r}}})
        report = engine.execute_plan(["ResponseGenerationSkill"], uif)
        assert report.status == "success", report.errors
        assert "redesigned in 2023 [1]." in report.uif.final_response, report.uif.final_response
        from sof_response.extractive import SUMMARY
        assert SUMMARY.search("Summarise https://example.com/page, please")
        assert isinstance(SUMMARY, re.Pattern) and not SUMMARY.search({QUERY!r})
        engine.close()
        """,
    )
    assert not load.compiled_in("sof_response")
    assert not load.loaded(["sof_response.evidence", "sof_response.prompt",
                            "sof_response.httpio"])
    assert first_answer.loaded(["sof_response.evidence"]) == ["sof_response.evidence"]
