"""Fixes for a black-box probe: signed numbers, "not just", and time linear in the passages."""

from __future__ import annotations

import time
from itertools import combinations
from typing import Any

import pytest
import sof_conflict._claims as claims_module
import sof_conflict.detector as detector_module
from hypothesis import given, settings
from hypothesis import strategies as st
from sof_conflict import detect_conflicts, extract_claims, values_compatible


def flagged(a: str, b: str) -> list[dict[str, Any]]:
    return detect_conflicts(
        [{"id": "a", "source": "A", "text": a}, {"id": "b", "source": "B", "text": b}]
    )


# --- 1. a minus sign before the digits is part of the number -------------------------------


@pytest.mark.parametrize(
    ("a", "b", "values"),
    [
        ("The SAM freezer temperature is -5 degrees.", "The SAM freezer temperature is -7 degrees.",
         ["-5", "-7"]),
        ("The SAM freezer temperature is -5 degrees.", "The SAM freezer temperature is 5 degrees.",
         ["-5", "5"]),
        ("The SAM growth rate was -3% last quarter.", "The SAM growth rate was 3% last quarter.",
         ["-3%", "3%"]),
        ("The SAM freezer temperature is \u22125 degrees.",
         "The SAM freezer temperature is 5 degrees.", ["\u22125", "5"]),
        ("The SAM account balance is -1,200.50 dollars.",
         "The SAM account balance is -1,200.75 dollars.", ["-1,200.50", "-1,200.75"]),
    ],
)
def test_signed_numbers_are_numbers(a: str, b: str, values: list[str]) -> None:
    conflicts = flagged(a, b)
    assert [(c["kind"], c["values"]) for c in conflicts] == [("number", values)]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("The SAM freezer temperature is -5 degrees.", "The SAM freezer temperature is -5 degrees."),
        ("The SAM freezer temperature is -0 degrees.", "The SAM freezer temperature is 0 degrees."),
        # a range, a hyphenated name or a spaced dash between numbers is no minus sign
        ("The SAM cluster has 5-7 modules.", "The SAM cluster has 7 modules."),
        ("The SAM cluster has 5 - 7 modules.", "The SAM cluster has 7 modules."),
        ("The SAM cluster has 5 -7 modules.", "The SAM cluster has 7 modules."),
        ("The SAM freezer runs from -5 to -3 degrees.", "The SAM freezer runs from -5 to -4 degrees."),
        ("The SAM team used GPT-4 for 12 tasks.", "The SAM team used GPT-4 for 12 tasks."),
        ("SAM stores about -5 degrees.", "SAM stores about -7 degrees."),
    ],
)
def test_no_false_alarm_from_signs(a: str, b: str) -> None:
    assert flagged(a, b) == []


def test_hyphen_inside_a_word_is_not_a_sign() -> None:
    numbers = [c.value for c in extract_claims("The SAM X-5 board has 12 modules.") if
               c.kind == "number"]
    assert numbers == ["12"]
    signed = [c.value for c in extract_claims("The SAM freezer holds -18 degrees.")
              if c.kind == "number"]
    assert signed == ["-18"]


# --- 2. "not just", "not merely", "not simply" are emphasis ---------------------------------

FAST = "The SAM memory system is fast."


@pytest.mark.parametrize(
    "text",
    [
        "The SAM memory system is not only fast but also small.",
        "The SAM memory system is not just fast but also small.",
        "The SAM memory system is not just fast.",
        "The SAM memory system is not merely fast.",
        "The SAM memory system is not simply fast, but also small.",
        "The SAM memory system is Not Just fast.",
    ],
)
def test_not_just_is_not_a_negation(text: str) -> None:
    assert flagged(text, FAST) == []
    assert all(c.value is True for c in extract_claims(text) if c.kind == "negation")


def test_a_real_negation_is_still_flagged() -> None:
    conflicts = flagged("The SAM memory system is not fast.", FAST)
    assert [c["kind"] for c in conflicts] == ["negation"]
    exact = flagged("The server is not just running.", "The server is not running.")
    assert [c["kind"] for c in exact] == []  # "not just running" is no statement of "running"


# --- 3. comparison is near-linear in the values sharing a subject ---------------------------


def _memories(n: int) -> list[dict[str, Any]]:
    return [{"id": str(i), "source": f"s{i}", "text": f"SAM has {i + 2} modules."}
            for i in range(n)]


def test_values_are_not_compared_pairwise(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    original = claims_module.values_compatible

    def counting(kind: str, left: Any, right: Any) -> bool:
        nonlocal calls
        calls += 1
        return original(kind, left, right)

    monkeypatch.setattr(claims_module, "values_compatible", counting)
    monkeypatch.setattr(detector_module, "values_compatible", counting, raising=False)
    n = 400
    conflicts = detect_conflicts(_memories(n))
    assert len(conflicts) == 1 and len(conflicts[0]["passages"]) == n
    assert calls <= 4 * n, f"{calls} value comparisons for {n} passages"


def test_time_grows_about_linearly_with_the_passages() -> None:
    def timed(n: int) -> float:
        memories = _memories(n)
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            detect_conflicts(memories)
            best = min(best, time.perf_counter() - start)
        return best

    timed(100)  # warm up
    small, large = timed(500), timed(2000)
    assert large / small < 8, f"4x the passages took {large / small:.1f}x the time"


def _pairwise(kind: str, passages: dict[Any, set[int]]) -> set[Any]:
    """The detector's rule stated directly: every pair of values compared."""
    clashing: set[Any] = set()
    for (left, left_at), (right, right_at) in combinations(passages.items(), 2):
        if not values_compatible(kind, left, right) and len(left_at | right_at) >= 2:
            clashing.update((left, right))
    return clashing


PASSAGE_SETS = st.sets(st.integers(0, 3), min_size=1, max_size=3)
DATES = st.tuples(
    st.one_of(st.none(), st.integers(2022, 2024)),
    st.one_of(st.none(), st.integers(1, 3)),
    st.one_of(st.none(), st.integers(1, 3)),
)
NAMED = st.lists(st.sampled_from(["sqlite", "postgr", "wal", "mode"]), min_size=1, max_size=3,
                 unique=True).map(tuple)
SCALARS = st.one_of(st.sampled_from(["1", "2", "-2", "3%"]), st.booleans())


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["date", "value", "number"]).flatmap(
        lambda kind: st.tuples(
            st.just(kind),
            st.dictionaries(
                {"date": DATES, "value": NAMED, "number": SCALARS}[kind], PASSAGE_SETS,
                max_size=8,
            ),
        )
    )
)
def test_indexed_comparison_equals_pairwise(case: tuple[str, dict[Any, set[int]]]) -> None:
    from sof_conflict.detector import clashing_values

    kind, passages = case
    assert clashing_values(kind, passages) == _pairwise(kind, passages)


# --- citation markers in runs are removed as single ones are --------------------------------


@pytest.mark.parametrize("marks", ["[4][5]", "[citation needed]", "[1, 2][3]"])
def test_runs_of_citation_markers_do_not_hide_a_statement(marks: str) -> None:
    conflicts = flagged(f"The SAM cluster has 12 modules.{marks}", "The SAM cluster has 15 modules.")
    assert [(c["kind"], c["values"]) for c in conflicts] == [("number", ["12", "15"])]
    assert extract_claims("Set a[0][1] to 12 modules.") == []  # indexing stays code


@pytest.mark.parametrize("text", ["The SAM cluster has 15 modules[citation needed].",
                                  "The SAM cluster has 15 modules[citation needed] in all."])
def test_citation_needed_right_after_a_word_is_removed_too(text: str) -> None:
    # As Wikipedia renders it: glued to the word, it is still no code indexing.
    conflicts = flagged(text, "The SAM cluster has 12 modules.")
    assert [(c["kind"], sorted(c["values"])) for c in conflicts] == [("number", ["12", "15"])]
    assert extract_claims("The SAM cluster has 15 modules[1].") == []  # numbered: indexing
