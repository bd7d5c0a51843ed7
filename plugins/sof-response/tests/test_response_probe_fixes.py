"""Fixes for a black-box probe: a passage's own citation markers never reach the answer."""

from __future__ import annotations

import re

import pytest
from sof_response import ResponseGenerationSkill
from sof_response.evidence import build_evidence

from sof_core.testing import check_skill_contract

WIKI = {
    "id": "w",
    "source": "wikipedia/eiffel.md",
    "text": "The Eiffel Tower was completed in 1889.[3] It is 330 metres tall.[4][5]",
}


def run(inputs, query):
    report = check_skill_contract(ResponseGenerationSkill, query=query, inputs=inputs)
    return report.uif, report.uif.intermediate_data["response_context"]


def cited(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\[(\d+)\]", text)}


def test_the_answer_cites_only_its_own_sources():
    uif, context = run({"memory_results": [WIKI]}, "When was the Eiffel Tower completed?")
    body = uif.final_response.split("Sources:")[0]
    assert cited(body) == {1}, uif.final_response
    assert "completed in 1889 [1]." in body
    assert [s["number"] for s in context["sources"]] == [1]
    assert context["sources"][0]["text"] == (
        "The Eiffel Tower was completed in 1889. It is 330 metres tall."
    )


def test_the_prompt_numbers_only_the_sources():
    _, context = run(
        {"memory_results": [WIKI, {"id": "x", "source": "notes", "text": "Paris[2] is in France."}],
         "tool_results": [{"tool": "search", "content": "It opened in 1889 [citation needed]."}]},
        "When was the Eiffel Tower completed?",
    )
    user = context["messages"][-1]["content"]
    passages = user.split("Context passages:\n", 1)[1].split("\n\n", 1)[0]
    assert cited(passages) == {1, 2, 3}, passages
    assert "1889. It is 330 metres tall." in passages
    assert "Paris is in France." in passages
    assert "It opened in 1889." in passages
    assert "citation needed" not in context["prompt"]


def test_markers_are_dropped_even_when_a_passage_only_cites():
    # nothing matches the question: the closest passage is quoted, without its markers
    uif, _ = run({"memory_results": [WIKI]}, "Who painted the Mona Lisa?")
    body = uif.final_response.split("Sources:")[0]
    assert cited(body) <= {1}, uif.final_response


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("completed in 1889.[3] It is tall.[4][5]", "completed in 1889. It is tall."),
        ("Paris[2] is the capital.", "Paris is the capital."),
        ("Paris [2, 3] is big [citation needed].", "Paris is big."),
        ("word [2\u20134] end [clarification needed]", "word end"),
        ("a claim[note 1] here", "a claim here"),
        # other brackets and indexing in code stay
        ("He said [sic] it [Note] [x] [1a].", "He said [sic] it [Note] [x] [1a]."),
        ("argv[0] is the program", "argv[0] is the program"),
        ("sys.argv[1] is the first argument", "sys.argv[1] is the first argument"),
        ("Set a[1] = 2 and my_list[2] too", "Set a[1] = 2 and my_list[2] too"),
        ("f(x)[1] and items[1].name", "f(x)[1] and items[1].name"),
    ],
)
def test_strip_citation_markers(text: str, expected: str) -> None:
    from sof_response.evidence import strip_citation_markers

    assert strip_citation_markers(text) == expected


def test_json_tool_results_keep_their_lists():
    evidence = build_evidence("q", tool_results=[{"tool": "t", "content": {"ids": [1, 2]}}])
    assert evidence.sources[0].text == '{"ids": [1, 2]}'
    evidence = build_evidence("q", tool_results=[{"tool": "t", "content": {"ids": [3]}}])
    assert evidence.sources[0].text == '{"ids": [3]}'
