"""Cutting a tool's output to ``max_output_bytes`` (docs/security.md, Isolation step 6).

A cut result is what the tool wrote with its end left off: never more than the cap by
``output_size`` (SOF's own measure), and never with a None standing in for an item that
did not fit (a list of floats came back as ``[1.5, 1.5, None]``, over the cap).
"""

from __future__ import annotations

from typing import Any

import pytest

from sof_core import run_sandboxed
from sof_core.security.output import cap_changes, cut_to, output_size

_CASES: list[Any] = [
    [1.5] * 100,
    list(range(1000)),
    tuple(range(1000)),
    {f"k{i}": i * 1000 for i in range(100)},
    {"a": [1.5] * 10, "b": {"c": 10**30}, "d": "é" * 40},
    [[1.5, 2.5]] * 20,
    frozenset(range(500)),
    10**40,
]


@pytest.mark.parametrize("value", _CASES, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("budget", [0, 1, 3, 5, 20, 100])
def test_a_cut_value_never_measures_more_than_its_budget(value: Any, budget: int) -> None:
    kept, used = cut_to(value, budget)
    if kept is not None:  # None: nothing of it fits (a number too big for the budget)
        assert output_size(kept) == used <= budget


def test_lists_lose_their_last_items_with_no_none_put_in() -> None:
    assert cut_to([1.5] * 100, 20) == ([1.5, 1.5], 16)
    kept, used = cut_to(list(range(1000)), 100)
    assert kept == list(range(len(kept))) and used <= 100
    assert cut_to((1.5, "abcdef", 2.5), 12) == ((1.5, "abcd"), 12)  # a string is shortened
    assert cut_to([[1.5, 2.5], [3.5, 4.5]], 30) == ([[1.5, 2.5], [3.5]], 8 * 3)


def test_dict_entries_that_do_not_fit_are_dropped() -> None:
    kept, used = cut_to({"a": 10**30, "bb": 1.5, "c": [1.5, 2.5]}, 12)
    assert kept == {"bb": 1.5, "c": []} and used == 2 + 8 + 1
    assert cut_to({"key": "value"}, 2) == ({}, 0)


def test_a_value_of_which_nothing_fits_is_none_for_a_lone_result() -> None:
    assert cut_to(10**40, 5) == (None, 4)
    assert cut_to(10**40, 100) == (10**40, output_size(10**40))


def test_a_written_key_of_which_nothing_fits_is_not_written() -> None:
    changes = {"data": {"text": "x" * 10, "count": 10**40, "items": [1.5] * 3},
               "changed": {}, "copies": {}, "fields": {"confidence": 0.5},
               "warnings": [], "log_trace": []}
    capped = cap_changes("Tool", changes, 20)
    assert capped["data"] == {"text": "x" * 10, "items": [1.5]}
    assert capped["fields"] == {}  # the field keeps its value
    assert sum(output_size(v) for v in capped["data"].values()) <= 20
    assert capped["warnings"][-1].endswith("cut: count, items, confidence")


def _floats() -> list[float]:
    return [1.5] * 100


def _ints() -> list[int]:
    return list(range(1000))


def _huge() -> int:
    return 10**40


def test_run_sandboxed_cuts_a_list_to_a_prefix_within_the_cap() -> None:
    assert run_sandboxed(_floats, name="float_cap", timeout=30, max_output_bytes=20) == [1.5] * 2
    result = run_sandboxed(_ints, name="int_cap", timeout=30, max_output_bytes=100)
    assert result == list(range(len(result))) and output_size(result) <= 100
    assert run_sandboxed(_huge, name="huge_cap", timeout=30, max_output_bytes=5) is None
