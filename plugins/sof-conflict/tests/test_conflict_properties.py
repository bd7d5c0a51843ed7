"""Properties of the detector over generated input: total, deterministic, symmetric, exact."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sof_conflict import detect_conflicts

KINDS = {"date", "number", "value", "negation"}

# Text that often looks like claims: real words, numbers, years, months, negations, stops.
WORDS = st.sampled_from(
    "The SAM memory system was is not redesigned in on has have 12 15 2023 2024 March May "
    "modules default backend SQLite Postgres supports support does n't never streaming X Y "
    ". , ; : ? 40% about over and but it may 1,000 3.5 2023-03-05 `sqlite` enabled disabled"
    .split()
)
CLAIMISH = st.lists(WORDS, max_size=30).map(" ".join)
TEXT = st.one_of(st.text(max_size=300), CLAIMISH)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def as_memories(texts: list[str]) -> list[dict[str, Any]]:
    return [{"id": f"m{i}", "text": t, "source": f"src{i % 3}"} for i, t in enumerate(texts)]


def as_tools(texts: list[str]) -> list[dict[str, Any]]:
    return [{"tool": f"tool{i}", "content": t} for i, t in enumerate(texts)]


@SETTINGS
@given(st.lists(TEXT, max_size=6), st.lists(TEXT, max_size=3))
def test_never_crashes_is_deterministic_and_well_formed(
    memory_texts: list[str], tool_texts: list[str]
) -> None:
    memory, tools = as_memories(memory_texts), as_tools(tool_texts)
    first = detect_conflicts(memory, tools)
    assert detect_conflicts(memory, tools) == first
    assert json.loads(json.dumps(first)) == first
    known_ids = {m["id"] for m in memory} | {f"tool:{t['tool']}:{i}" for i, t in enumerate(tools)}
    for conflict in first:
        assert conflict["kind"] in KINDS
        assert isinstance(conflict["subject"], str) and conflict["subject"]
        assert isinstance(conflict["description"], str) and conflict["description"]
        assert len(conflict["values"]) >= 2
        ids = [p["id"] for p in conflict["passages"]]
        assert set(ids) <= known_ids
        assert len(set(ids)) >= 2, "a conflict always involves two different passages"
        for passage in conflict["passages"]:
            assert passage["value"] in conflict["values"]


@SETTINGS
@given(st.lists(TEXT, min_size=2, max_size=5), st.randoms(use_true_random=False))
def test_which_passages_conflict_does_not_depend_on_their_order(
    texts: list[str], rnd: Any
) -> None:
    memory = as_memories(texts)
    shuffled = list(memory)
    rnd.shuffle(shuffled)

    Signature = set[tuple[str, tuple[str, ...], frozenset[str]]]

    def signature(results: list[dict[str, Any]]) -> Signature:
        return {
            (c["kind"], tuple(c["key"]), frozenset(p["id"] for p in c["passages"]))
            for c in detect_conflicts(results)
        }

    assert signature(memory) == signature(shuffled)


NAMES = st.sampled_from(["SAM", "Orion", "The planner", "The memory system", "Vega"])
THINGS = st.sampled_from(["modules", "plugins", "users", "workers"])


@SETTINGS
@given(NAMES, THINGS, st.integers(0, 10**6), st.integers(0, 10**6))
def test_a_count_conflicts_exactly_when_the_numbers_differ(
    name: str, thing: str, first: int, second: int
) -> None:
    conflicts = detect_conflicts(
        as_memories([f"{name} has {first:,} {thing}.", f"{name} has {second} {thing}."])
    )
    assert [c["kind"] for c in conflicts] == (["number"] if first != second else [])


@SETTINGS
@given(NAMES, NAMES, THINGS, st.integers(1, 999), st.integers(1, 999))
def test_different_subjects_never_conflict(
    name: str, other: str, thing: str, first: int, second: int
) -> None:
    if name == other:
        return
    conflicts = detect_conflicts(
        as_memories([f"{name} has {first} {thing}.", f"{other} has {second} {thing}."])
    )
    assert conflicts == []


@SETTINGS
@given(st.integers(1900, 2099), st.integers(1900, 2099))
def test_a_year_conflicts_exactly_when_the_years_differ(first: int, second: int) -> None:
    conflicts = detect_conflicts(
        as_memories(
            [
                f"The SAM memory system was redesigned in {first}.",
                f"In {second}, the SAM memory system was redesigned.",
            ]
        )
    )
    assert [c["kind"] for c in conflicts] == (["date"] if first != second else [])


DATES = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
SUBJECTS = st.sampled_from(["deadline", "meeting", "launch", "release"])


@SETTINGS
@given(SUBJECTS, SUBJECTS, DATES, DATES)
def test_a_one_word_subject_date_conflicts_exactly_when_subject_matches_and_dates_differ(
    subject: str, other: str, first: date, second: date
) -> None:
    conflicts = detect_conflicts(
        as_memories(
            [
                f"The {subject} is on {first:%B} {first.day}, {first.year}.",
                f"The {other} is on {second.isoformat()}.",
            ]
        )
    )
    expected = ["date"] if subject == other and first != second else []
    assert [c["kind"] for c in conflicts] == expected


STATES = st.sampled_from(["running", "enabled", "safe", "ready", "available"])


@SETTINGS
@given(SUBJECTS, SUBJECTS, STATES, st.sampled_from(["is not", "isn't"]))
def test_a_short_statement_conflicts_with_its_negation_only(
    subject: str, other: str, state: str, negation: str
) -> None:
    conflicts = detect_conflicts(
        as_memories([f"The {subject} is {state}.", f"The {other} {negation} {state}."])
    )
    assert [c["kind"] for c in conflicts] == (["negation"] if subject == other else [])
