"""The detector as a pure function: what it must flag, and what it must leave alone."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sof_conflict import ConflictInputError, detect_conflicts, extract_claims

from sof_core import SOFError


def memories(*texts: str) -> list[dict[str, Any]]:
    """Passages shaped like MemoryRetrievalSkill's ``memory_results``, best first."""
    return [
        {
            "id": f"mem-{i}",
            "text": text,
            "source": f"notes-{i}.md",
            "score": 1.0 - i / 10,
            "created_at": "2024-01-01T00:00:00Z",
            "metadata": {},
        }
        for i, text in enumerate(texts)
    ]


def only(conflicts: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(conflicts) == 1, conflicts
    return conflicts[0]


# --- what it flags -----------------------------------------------------------------------


def test_a_year_disagreement_is_a_date_conflict_naming_both_passages() -> None:
    conflict = only(
        detect_conflicts(
            memories(
                "The SAM memory system was redesigned in 2023.",
                "The SAM memory system was redesigned in 2024.",
            )
        )
    )
    assert conflict["kind"] == "date"
    assert conflict["values"] == ["2023", "2024"]
    assert conflict["subject"] == "The SAM memory system was redesigned in \u2026"
    assert [p["id"] for p in conflict["passages"]] == ["mem-0", "mem-1"]
    assert [p["source"] for p in conflict["passages"]] == ["notes-0.md", "notes-1.md"]
    assert conflict["passages"][0]["text"] == "The SAM memory system was redesigned in 2023."
    assert [p["value"] for p in conflict["passages"]] == ["2023", "2024"]
    description = conflict["description"]
    for needle in ("notes-0.md", "notes-1.md", "2023", "2024"):
        assert needle in description


def test_a_count_disagreement_is_a_number_conflict() -> None:
    conflict = only(detect_conflicts(memories("X has 12 modules.", "X has 15 modules.")))
    assert conflict["kind"] == "number"
    assert conflict["values"] == ["12", "15"]
    assert conflict["subject"] == "X has \u2026 modules"


def test_a_different_named_value_is_a_value_conflict() -> None:
    conflict = only(
        detect_conflicts(
            memories("The default backend is SQLite.", "the default backend is Postgres")
        )
    )
    assert conflict["kind"] == "value"
    assert conflict["values"] == ["SQLite", "Postgres"]
    assert conflict["subject"] == "The default backend is \u2026"


def test_a_negated_statement_is_a_negation_conflict() -> None:
    conflict = only(
        detect_conflicts(memories("X supports streaming.", "X does not support streaming."))
    )
    assert conflict["kind"] == "negation"
    assert conflict["subject"] == "X supports streaming"
    assert conflict["values"] == ["X supports streaming", "X does not support streaming"]
    assert "X does not support streaming" in conflict["description"]


@pytest.mark.parametrize(
    ("first", "second", "kind"),
    [
        ("X doesn't support streaming.", "X supports streaming.", "negation"),
        ("X never supports streaming.", "X supports streaming.", "negation"),
        ("X no longer supports streaming.", "X supports streaming.", "negation"),
        ("There is no size limit on uploads.", "There is a size limit on uploads.", "negation"),
        ("SAM's memory system was redesigned in 2023.",
         "In 2024, the SAM memory system was redesigned.", "date"),
        ("The SAM memory system was redesigned on March 3, 2023.",
         "The SAM memory system was redesigned on 2023-03-05.", "date"),
        ("The SAM memory system was redesigned in March 2023.",
         "The SAM memory system was redesigned in May 2023.", "date"),
        ("The SAM memory system was redesigned in 2023 and now stores embeddings.",
         "The SAM memory system was redesigned in 2024.", "date"),
        ("Accuracy improved to 40%.", "Accuracy improved to 45 percent.", "number"),
        ("The timeout is 30 seconds.", "The timeout is 45s.", "number"),
        ("SAM stores 2000 documents.", "SAM stores 2,500 documents.", "number"),
        ("SAM uses port 8080.", "SAM uses port 9090.", "number"),
        ("Revenue grew 10% in 2022.", "Revenue grew 12% in 2022.", "number"),
        ("The project has 12 modules and 3 plugins.",
         "The project has 15 modules and 3 plugins.", "number"),
        ("Streaming is enabled by default.", "Streaming is disabled by default.", "value"),
        ("SAM is written in Python.", "SAM is written in Rust.", "value"),
        ("Default backend: SQLite", "The default backend is Postgres.", "value"),
        ("The default backend is SQLite, but Postgres is optional.",
         "The default backend is Postgres.", "value"),
        ("The CEO is Alice Smith.", "The CEO is Bob Jones.", "value"),
        # citation markers number sources, they are not part of the statement
        ("The SAM memory system was redesigned in 2023 [1].",
         "The SAM memory system was redesigned in 2024 [2, 3].", "date"),
    ],
)
def test_flags_contradictions_of_each_kind(first: str, second: str, kind: str) -> None:
    assert only(detect_conflicts(memories(first, second)))["kind"] == kind


# --- the exact-wording rules: short subjects ---------------------------------------------


def test_a_one_word_subject_date_conflicts_when_the_rest_is_worded_the_same() -> None:
    conflict = only(
        detect_conflicts(
            memories("The deadline is March 3, 2023.", "The deadline is March 5, 2023.")
        )
    )
    assert conflict["kind"] == "date"
    assert conflict["values"] == ["March 3, 2023", "March 5, 2023"]
    assert conflict["subject"] == "The deadline is \u2026"
    assert conflict["key"] == ["the", "deadline", "is", "\u2026"]
    assert [p["id"] for p in conflict["passages"]] == ["mem-0", "mem-1"]


def test_a_short_statement_and_its_negation_conflict() -> None:
    conflict = only(
        detect_conflicts(memories("The feature is enabled.", "The feature is not enabled."))
    )
    assert conflict["kind"] == "negation"
    assert conflict["subject"] == "The feature is enabled"
    assert conflict["values"] == ["The feature is enabled", "The feature is not enabled"]
    assert "The feature is not enabled" in conflict["description"]


@pytest.mark.parametrize(
    ("first", "second", "kind"),
    [
        ("The deadline is March 3, 2023.", "The deadline is March 5, 2023.", "date"),
        ("The meeting is on March 3, 2023", "The meeting is on March 5, 2023", "date"),
        ("The deadline is 2023-03-03", "The deadline is 2023-03-05", "date"),
        ("The deadline is March 3, 2023.", "The deadline is 2023-03-05.", "date"),
        ("The deadline is March 3.", "The deadline is March 5.", "date"),
        ("The launch was in 2023.", "The launch was in 2024.", "date"),
        ("The price is 20.", "The price is 25.", "number"),
        ("The feature is enabled.", "The feature is not enabled.", "negation"),
        ("The server is running", "The server is not running", "negation"),
        ("The vaccine is safe", "The vaccine is not safe", "negation"),
        ("The vaccine is safe.", "The vaccine isn't safe.", "negation"),
        ("THE SERVER IS RUNNING!", "the server is not running", "negation"),
        ("The server runs.", "The server doesn't run.", "negation"),
        ("The server runs.", "The server does not run.", "negation"),
        ("The server crashed.", "The server did not crash.", "negation"),
        ("The server restarts.", "The server never restarts.", "negation"),
        ("The server restarts.", "The server no longer restarts.", "negation"),
        ("Alice can help.", "Alice cannot help.", "negation"),
        ("Alice can help.", "Alice can't help.", "negation"),
        ("The server has a GPU.", "The server has no GPU.", "negation"),
        ("The server has a GPU.", "The server does not have a GPU.", "negation"),
    ],
)
def test_flags_short_statements_worded_the_same_but_for_the_value(
    first: str, second: str, kind: str
) -> None:
    assert only(detect_conflicts(memories(first, second)))["kind"] == kind


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # different one-word subjects
        ("The price is $20.", "The fee is $25."),
        ("The price is 20.", "The fee is 25."),
        ("The deadline is March 3.", "The launch is March 5."),
        ("The deadline is March 3, 2023.", "The launch is March 5, 2023."),
        ("The server is running.", "The client is not running."),
        ("The server is running.", "The old server is not running."),
        # the same words, but a different verb or another word added
        ("The deadline is March 3, 2023.", "The deadline was March 5, 2023."),
        ("The server is running.", "The server is still not running."),
        # agreement and compatible dates
        ("The deadline is March 3.", "The deadline is March 3, 2023."),
        ("The server is not running.", "The server isn't running."),
        # no subject word, or only a generic one
        ("There are 12.", "There are 15."),
        ("The default is 5.", "The default is 10."),
        ("The default is None.", "The default is not None."),
        ("The result is cached.", "The result is not cached."),
        ("The setting is SQLite.", "The setting is Postgres."),
        # fewer than three words
        ("Deadline March 3.", "Deadline March 5."),
        ("Servers run.", "Servers don't run."),
        ("Not really.", "Really."),
        ("Not bad.", "Bad."),
        # rows of values and code are not sentences; "Never" here is a name
        ('("C", "A", 13), ...', '("C", "A", 14), ...'),
        ("from typing import Never", "from typing import Any"),
        # hedged and approximate statements stay out
        ("The deadline may be March 3.", "The deadline is March 5."),
        ("The price is about 20.", "The price is 25."),
    ],
)
def test_does_not_flag_short_statements_that_differ_in_more_than_the_value(
    first: str, second: str
) -> None:
    assert detect_conflicts(memories(first, second)) == []


# --- what it must not flag ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # agreement and paraphrases with the same value
        ("X has 12 modules.", "X has 12 modules."),
        ("SAM has 12 modules.", "SAM has 12 modules in total."),
        ("SAM has 1,000 users.", "SAM has 1000 users."),
        ("The timeout is 30 seconds.", "The timeout is 30s."),
        ("The default backend is SQLite.", "The default backend is `sqlite`."),
        ("The default backend is SQLite.", "By default, the backend is SQLite."),
        ("The SAM memory system was redesigned in 2023.",
         "In 2023 the SAM memory system was redesigned."),
        ("The SAM memory system was redesigned in March 2023.",
         "The SAM memory system was redesigned in 2023."),
        ("X supports streaming.", "X fully supports streaming."),
        ("X does not support streaming.", "X doesn't support streaming."),
        # different subjects that share a number or a shape
        ("SAM has 12 modules.", "Orion has 15 modules."),
        ("SAM has 12 modules.", "SAM has 15 plugins."),
        ("The SAM memory system was redesigned in 2023.",
         "The Orion memory system was redesigned in 2024."),
        ("The capital of France is Paris.", "The capital of Spain is Madrid."),
        ("X supports streaming.", "Y does not support streaming."),
        # values scoped by a different year are not contradictions
        ("In 2023 SAM had 12 modules.", "In 2024 SAM had 12 modules."),
        ("In 2023 SAM had 12 modules.", "In 2024 SAM had 15 modules."),
        ("Revenue grew 10% in 2022.", "Revenue grew 12% in 2023."),
        # approximate numbers, ranges and relative dates
        ("SAM has about 12 modules.", "SAM has 15 modules."),
        ("SAM has over 1,000 users.", "SAM has 1,200 users."),
        ("Between 10 and 12 modules ship.", "15 modules ship."),
        ("The redesign happened before 2024.", "The redesign happened in 2023."),
        # questions, guesses and conditions are not statements
        ("Does X support streaming?", "X does not support streaming."),
        ("X may support streaming.", "X does not support streaming."),
        ("If X supports streaming, the UI shows it.", "X does not support streaming."),
        # descriptions are not named values; pronouns have no checkable subject
        ("SAM is a memory system.", "SAM is an orchestration framework."),
        ("It has 12 modules.", "It has 15 modules."),
        ("X is not only fast, but also reliable.", "X is fast."),
        # version strings and identifiers are not numbers
        ("Version 1.2.3 was released.", "Version 1.2.4 was released."),
        ("GPT-4 is used here.", "GPT-3 is used here."),
        ("The 3rd release is stable.", "The 4th release is stable."),
        ("Python 3.11 is required.", "Python 3.10 is required."),
        ("See PEP 484 for more details.", "See PEP 544 for more details."),
        # code, markup and tables are not prose
        (">>> g = itemgetter(2, 5, 3)", ">>> g = itemgetter(2, 6, 3)"),
        ("The numerator defaults to 0 so that Fraction() == 0.",
         "The numerator defaults to 1 so that Fraction() == 1."),
        (".. versionadded:: 4.0 Added the err parameter.",
         ".. versionadded:: 3.0 Added the err parameter."),
        ("0 1 2 3 4 5", "1 4 0 1 0"),
        (":Character code: 'S'", ":Character code: 'M'"),
        ("shape: 'SQUARE'", "shape: 'CIRCLE'"),
        ("value (int, float, None): the input number", "value (int, float): the input number"),
        ("Otherwise, defaults to sys.argv[0].", "Otherwise, defaults to sys.argv[1]."),
        ("The default is `False`.", "The default is None."),
        # a two-word polarity is too vague to contradict
        ("Valid attributes are listed.", "These attributes are not valid."),
    ],
)
def test_does_not_flag(first: str, second: str) -> None:
    assert detect_conflicts(memories(first, second)) == []


def test_no_passages_and_no_text_give_no_conflicts() -> None:
    assert detect_conflicts([]) == []
    assert detect_conflicts(memories("", "   ", "\n\n")) == []


def test_one_passage_stating_two_values_does_not_contradict_itself() -> None:
    story = (
        "The SAM memory system was redesigned in 2023. "
        "The SAM memory system was redesigned in 2024."
    )
    assert detect_conflicts(memories(story)) == []


# --- further examples docs/plugins/conflict.md gives --------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "kind"),
    [
        ("The SAM memory system was redesigned on 3 March 2023.",
         "The SAM memory system was redesigned on 5 March 2023.", "date"),
        ("SAM uses 1.5 GB of memory.", "SAM uses 2.5 GB of memory.", "number"),
        # a unit or a currency sign counts as a subject word
        ("The price is $20.", "The price is $25.", "number"),
        # a loose match ignores the auxiliary and tense
        ("SAM had 12 modules.", "SAM has 15 modules.", "number"),
        ("The default backend was SQLite.", "The default backend is Postgres.", "value"),
        # no synonyms
        ("The default backend is Postgres.", "The default backend is PostgreSQL.", "value"),
        # what follows a clause break does not spoil the subject
        ("SAM has 12 modules; Orion is fast.", "SAM has 15 modules.", "number"),
        ("SAM has 12 modules, and Orion is fast.", "SAM has 15 modules.", "number"),
        ("SAM has 12 modules, while Orion is fast.", "SAM has 15 modules.", "number"),
    ],
)
def test_flags_the_documented_examples(first: str, second: str, kind: str) -> None:
    assert only(detect_conflicts(memories(first, second)))["kind"] == kind


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("The memory system was rebuilt in 2024.", "The memory system was redesigned in 2023."),
        ("The timeout is 5 s.", "The timeout is 5000 ms."),
        ("SAM has twelve modules.", "SAM has 15 modules."),
        ("SAM has 12+ modules.", "SAM has 15 modules."),
        ("SAM has 10 to 12 modules.", "SAM has 15 modules."),
        ("The redesign happened since 2020.", "The redesign happened in 2023."),
        ("X might support streaming.", "X does not support streaming."),
        ("X could support streaming.", "X does not support streaming."),
        ("X probably supports streaming.", "X does not support streaming."),
        ("X reportedly supports streaming.", "X does not support streaming."),
        ("Unless X supports streaming, the UI hides it.", "X does not support streaming."),
        ("Whether X supports streaming is documented.", "X does not support streaming."),
        ("SAM 2.0 is stable.", "SAM 3.0 is stable."),
        ("Call f(x) to load 12 modules.", "Call f(x) to load 15 modules."),
        ("Use a[0] to load 12 modules.", "Use a[0] to load 15 modules."),
        ("SAM has 12 modules < 20.", "SAM has 15 modules < 20."),
        ("SAM has 12 modules | x.", "SAM has 15 modules | x."),
        ("SAM has {12} modules.", "SAM has {15} modules."),
        ("SAM has 12 modules and 3 plugins and 4 tools and 5 hooks and 6 jobs.",
         "SAM has 15 modules and 3 plugins and 4 tools and 5 hooks and 6 jobs."),
        ("SAM 12 13", "SAM 14 15"),
        ("SAM has 12 modules " + "and more words " * 40, "SAM has 15 modules " + "and more words " * 40),
        ("SAM has 12 modules " + "x" * 500, "SAM has 15 modules " + "x" * 500),
    ],
)
def test_does_not_flag_the_documented_examples(first: str, second: str) -> None:
    assert detect_conflicts(memories(first, second)) == []


def test_an_abbreviation_does_not_end_the_sentence_quoted() -> None:
    conflict = only(
        detect_conflicts(
            memories("SAM has 12 modules, e.g. Planner.", "SAM has 15 modules, e.g. Planner.")
        )
    )
    assert conflict["passages"][0]["text"] == "SAM has 12 modules, e.g. Planner."


# --- grouping, tools and order -----------------------------------------------------------


def test_several_passages_on_one_subject_make_one_conflict_listing_each() -> None:
    conflict = only(
        detect_conflicts(
            memories(
                "X has 12 modules.",
                "X has 15 modules.",
                "Unrelated: the sky is blue.",
                "X has 12 modules.",
            )
        )
    )
    assert conflict["values"] == ["12", "15"]
    assert [p["id"] for p in conflict["passages"]] == ["mem-0", "mem-1", "mem-3"]
    assert "notes-0.md and notes-3.md say 12" in conflict["description"]


def test_a_tool_result_contradicting_a_memory_is_flagged_with_its_source() -> None:
    tool_results = [
        {"tool": "calculator", "content": 42},
        {"tool": "web_search", "content": "The SAM memory system was redesigned in 2024.",
         "source": "https://example.org/sam"},
        {"tool": "shell", "content": None},
    ]
    conflict = only(
        detect_conflicts(memories("The SAM memory system was redesigned in 2023."), tool_results)
    )
    tool_passage = conflict["passages"][1]
    assert tool_passage == {
        "id": "tool:web_search:1",
        "source": "https://example.org/sam",
        "text": "The SAM memory system was redesigned in 2024.",
        "value": "2024",
        "origin": "tool",
    }
    assert conflict["passages"][0]["origin"] == "memory"
    assert "https://example.org/sam says 2024" in conflict["description"]


def test_passages_with_the_same_source_are_told_apart_by_id() -> None:
    results = memories("X has 12 modules.", "X has 15 modules.")
    for result in results:
        result["source"] = "wiki"
    description = only(detect_conflicts(results))["description"]
    assert "wiki (mem-0) says 12" in description
    assert "wiki (mem-1) says 15" in description


def test_conflicts_follow_the_order_of_the_passages_they_start_in() -> None:
    results = memories(
        "The default backend is SQLite. X has 12 modules.",
        "X has 15 modules.",
        "The default backend is Postgres.",
    )
    conflicts = detect_conflicts(results)
    assert [c["kind"] for c in conflicts] == ["value", "number"]
    assert detect_conflicts(results) == conflicts


def test_long_passages_are_split_into_sentences_and_the_sentence_is_quoted() -> None:
    results = memories(
        "SAM keeps notes.\nThe SAM memory system\nwas redesigned in 2023. Later work added tags.",
        "- Tags exist.\n- The SAM memory system was redesigned in 2024.",
    )
    conflict = only(detect_conflicts(results))
    assert [p["text"] for p in conflict["passages"]] == [
        "The SAM memory system was redesigned in 2023.",
        "The SAM memory system was redesigned in 2024.",
    ]


def test_records_are_plain_json_data() -> None:
    conflicts = detect_conflicts(memories("X has 12 modules.", "X has 15 modules."))
    assert json.loads(json.dumps(conflicts)) == conflicts
    assert set(conflicts[0]) >= {"subject", "kind", "values", "passages", "description"}


# --- claims ------------------------------------------------------------------------------


def test_a_clause_with_a_number_uses_its_year_as_context_not_as_a_claim() -> None:
    kinds = sorted(c.kind for c in extract_claims("In 2023 SAM had 12 modules."))
    assert kinds == ["negation", "number"]


def test_negated_clauses_only_claim_their_polarity() -> None:
    claims = extract_claims("X does not have 12 modules.")
    assert [(c.kind, c.value) for c in claims] == [("negation", False)]


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("memory_results", "tool_results", "where"),
    [
        ("X has 12 modules.", None, "memory_results: expected a list"),
        (["X has 12 modules."], None, "memory_results[0]: expected a dict"),
        ([{"id": "a", "text": None}], None, "memory_results[0]['text']"),
        ([{"id": "a"}], None, "memory_results[0]['text']"),
        ([], {"tool": "x"}, "tool_results: expected a list"),
        ([], ["text"], "tool_results[0]: expected a dict"),
    ],
)
def test_bad_shapes_raise_a_typed_error_naming_the_entry(
    memory_results: Any, tool_results: Any, where: str
) -> None:
    with pytest.raises(ConflictInputError) as caught:
        detect_conflicts(memory_results, tool_results)
    assert where in str(caught.value)
    assert isinstance(caught.value, SOFError)
