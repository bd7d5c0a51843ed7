"""What a black-box probe found: numbers cut into other numbers (a confident wrong answer),
a float fallback that lost its value, real odd roots of negative numbers refused or of the
wrong sign, "to the power of 1/3" read as ``** 1 / 3``, and extraction quadratic in the
query's length. docs/plugins/calculator.md: "A calculation that is refused or impossible is
an error, never a result"."""

from __future__ import annotations

import contextlib
import math
import time

import pytest
from sof_calculator import CalculationError, evaluate, extract
from sof_calculator import extractor as extractor_module
from sof_calculator.errors import CalculationMathError, CalculationSyntaxError
from sof_calculator.extractor import rewrite
from sof_calculator.skill import CalculatorTool

from sof_core import UIF


def answer(query: str) -> object:
    found = extract(query)
    assert found is not None, query
    return evaluate(found.expression).value


# --- 1. numbers are read as written, or refused: never cut ----------------------------------


@pytest.mark.parametrize(("query", "value", "text"), [
    ("What is 1_000 + 1?", 1001, "1_000 + 1"),
    ("what is 0x10 + 1", 17, "0x10 + 1"),
    ("what is 0X1f * 2", 62, "0X1f * 2"),
    ("what is 0b11 + 1", 4, "0b11 + 1"),
    ("what is 0o17 + 1", 16, "0o17 + 1"),
    ("What is 1 000 000 + 1?", 1_000_001, "1 000 000 + 1"),
    ("What is 1\u2009000\u2009000 + 1?", 1_000_001, "1\u2009000\u2009000 + 1"),
    ("What is 1\u00a0234.5 * 2?", 2469, "1\u00a0234.5 * 2"),
    ("What is 12 345 - 5?", 12340, "12 345 - 5"),
    ("What is 1,234 + 1?", 1235, "1,234 + 1"),           # unchanged
    ("max(1,5) + 1", 6, "max(1,5) + 1"),                   # unchanged: arguments
    ("add 3, 4 and 5", 12, "add 3, 4 and 5"),              # unchanged: a list
])
def test_numbers_are_read_as_written(query: str, value: int, text: str) -> None:
    found = extract(query)
    assert found is not None and found.text == text
    assert evaluate(found.expression).value == value


@pytest.mark.parametrize(("query", "number"), [
    ("What is 1,5 + 2,5?", "1,5"),          # a decimal comma, or a list: not guessed
    ("What is 2 + 2,5?", "2,5"),
    ("add 1,5 and 2,5", "1,5"),             # the phrase reader listed it as 1, 5, 2, 5
    ("What is 1,234,5 + 1?", "1,234,5"),
    ("What is 1__000 + 1?", "1__000"),
    ("What is 1.5.5 + 1?", "1.5.5"),
    ("What is 1 0000 + 1?", "1 0000"),      # not groups of three
    ("What is 5 + 3 4?", "3 4"),            # two numbers with nothing between them
])
def test_a_number_it_cannot_read_is_refused_not_cut(query: str, number: str) -> None:
    with pytest.raises(CalculationSyntaxError) as refused:
        extract(query)
    assert f"cannot read the number {number!r}" in str(refused.value)
    assert "write decimals with a point (1.5)" in str(refused.value)


def test_the_tool_reports_the_refusal_and_the_planner_still_picks_it() -> None:
    tool = CalculatorTool()
    assert tool.can_handle_query("What is 1,5 + 2,5?")
    with pytest.raises(CalculationSyntaxError) as refused:
        tool.execute(UIF(input_query="What is 1,5 + 2,5?"))
    assert "cannot calculate '1,5 + 2,5': cannot read the number '1,5'" in str(refused.value)
    assert refused.value.skill == "CalculatorTool"


@pytest.mark.parametrize("query", ["what is 0x1g + 1", "what is 0b12 + 1", "0o8 * 2"])
def test_a_malformed_radix_literal_is_no_number_at_all(query: str) -> None:
    found = extract(query)
    assert found is None or evaluate(found.expression).value not in (1, 2, 12, 0), found


def test_rewrite_reads_radix_literals_as_the_evaluator_does() -> None:
    assert rewrite("0x10 + 1") == "0x10 + 1"
    assert evaluate(rewrite("0x10+1") or "").value == evaluate("0x10+1").value == 17
    assert evaluate(rewrite("1_000+1") or "").value == 1001


# --- 2. the float fallback keeps the value ------------------------------------------------------


def test_a_huge_power_of_a_number_near_one_keeps_its_value() -> None:
    result = evaluate("(1 + 1/10**17) ** (10**17)")
    assert result.value == pytest.approx(math.e, rel=1e-12)
    assert evaluate("(1 - 1/10**17) ** (10**17)").value == pytest.approx(1 / math.e, rel=1e-12)
    # the sign of a negative base follows the exact exponent, not its rounded float
    assert evaluate("(-(1 + 1/10**17)) ** (10**17 + 1)").value == pytest.approx(-math.e)
    assert evaluate("(-(1 + 1/10**17)) ** (10**17)").value == pytest.approx(math.e)
    # (1 + 1e-6) ** 1e6 = 2.71828046931937688...; float(1.000001) ** 1e6 was 2.71828046910
    assert evaluate("1.000001 ** 1000000").readable == 2.71828046932


def test_a_huge_power_near_one_that_overflows_is_refused() -> None:
    with pytest.raises(CalculationError, match="digits"):
        evaluate("(1 + 1/10**17) ** (10**20)")
    assert evaluate("(1 + 1/10**17) ** (-(10**20))").readable == 0


# --- 3. real odd roots of negative numbers ------------------------------------------------------


@pytest.mark.parametrize(("expression", "expected"), [
    ("(-27) ** (1/3)", -3.0),
    ("(-26) ** (1/3)", -(26 ** (1 / 3))),
    ("(-2) ** (1/3)", -(2 ** (1 / 3))),
    ("(-33) ** (1/5)", -(33 ** (1 / 5))),
    ("(-9) ** (2/3)", 9 ** (2 / 3)),
    ("(-2) ** (-1/3)", -(2 ** (-1 / 3))),
    ("(-8) ** (1/1001)", -(8 ** (1 / 1001))),
    ("(-8) ** (1/(2**9999-1))", -1.0),
    ("(-8.0) ** (1/3)", -2.0),
])
def test_real_odd_roots_of_negatives(expression: str, expected: float) -> None:
    assert float(evaluate(expression).value) == pytest.approx(expected, rel=1e-12)


def test_odd_roots_agree_with_cbrt() -> None:
    for n in (-2, -26, -100, -7):
        assert evaluate(f"({n}) ** (1/3)").value == pytest.approx(evaluate(f"cbrt({n})").value)


@pytest.mark.parametrize("expression", ["(-8) ** (1/2)", "(-8) ** (1/100)", "(-8) ** (3/4)"])
def test_even_roots_of_negatives_are_refused_by_degree(expression: str) -> None:
    with pytest.raises(CalculationMathError, match="no real root of even degree"):
        evaluate(expression)


def test_a_float_exponent_of_a_negative_is_still_refused() -> None:
    with pytest.raises(CalculationMathError, match="no real value"):
        evaluate("(-8) ** sqrt(2)")


@pytest.mark.parametrize(("query", "expression", "value"), [
    ("What is 8 to the power of 1/3?", "8 ** (1/3)", 2),
    ("27 raised to the power of 2/3", "27 ** (2/3)", 9),
    ("4 raised to -1/2", "4 ** (-1/2)", 0.5),
    ("8 to the power of 1 / 3", "8 ** 1 / 3", 8 / 3),   # spaced: as written
    ("8^1/3", "8 ** 1 / 3", 8 / 3),                     # symbols: Python's precedence
])
def test_to_the_power_of_a_written_fraction(query: str, expression: str, value: float) -> None:
    found = extract(query)
    assert found is not None and found.expression == expression
    assert float(evaluate(found.expression).value) == pytest.approx(value)


# --- 4. extraction is linear in the query's length ----------------------------------------------


@pytest.mark.parametrize("unit", ["1/2 ", "1-2 ", "24/7 ", "555-1234 ", "a ", "1,5 ",
                                  "what is 1-2 ", "1 000 "])
def test_extraction_time_is_linear(monkeypatch: pytest.MonkeyPatch, unit: str) -> None:
    # A hang guard, loosely bound: 10,000 characters of "1/2 " took 1.1 s (quadratic), so
    # 20,000 took over 4 s; linear, it is some tens of milliseconds.
    monkeypatch.setattr(extractor_module, "MAX_QUERY_CHARS", 20_000)
    query = (unit * (20_000 // len(unit) + 1))[:20_000]
    started = time.perf_counter()
    with contextlib.suppress(CalculationError):
        extract(query)
    assert time.perf_counter() - started < 1.0


def test_a_long_run_of_space_groups_is_not_quadratic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extractor_module, "MAX_QUERY_CHARS", 20_000)
    query = "1 " + "000 " * 4_990 + "0000 + 1"
    started = time.perf_counter()
    with pytest.raises(CalculationSyntaxError):
        extract(query)
    assert time.perf_counter() - started < 1.0
