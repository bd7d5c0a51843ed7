"""The evaluator computes what the docs promise, exactly where Python keeps numbers exact."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from sof_calculator import (
    CalculationError,
    CalculationLimitError,
    CalculationMathError,
    CalculationNotAllowed,
    CalculationSyntaxError,
    evaluate,
)
from sof_calculator.evaluator import readable_number

from sof_core import SkillExecutionError


@pytest.mark.parametrize(
    ("expression", "readable"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("2 ** 3 ** 2", 512),  # right-associative, as in Python
        ("-2 ** 2", -4),
        ("-(3 - 5)", 2),
        ("+4", 4),
        ("1234 * 5678", 7006652),
        ("percent(15) * 240", 36),
        ("240 + percent(15)", 276),
        ("240 - percent(15)", 204),
        ("240 * percent(15)", 36),
        ("240 / percent(15)", 1600),
        ("sqrt(144) + 3", 15),
        ("cbrt(-27)", -3),
        ("log(1000)", 3),
        ("log(8, 2)", 3),
        ("log10(0.001)", -3),
        ("log2(1024)", 10),
        ("ln(e)", 1),
        ("exp(0)", 1),
        ("sin(pi)", 0),
        ("cos(pi)", -1),
        ("tan(pi / 4)", 1),
        ("sin(pi / 6)", 0.5),
        ("sin(1000 * pi)", 0),  # rounding error of a multiple of pi is still zero
        # large arguments are exact floats, not multiples of pi: their sine is not zero
        ("sin(1e300)", -0.817881912116),
        ("sin(10 ** 20)", -0.645251285266),
        ("cos(10 ** 15)", -0.513193737787),
        ("asin(1) * 2 / pi", 1),
        ("degrees(pi)", 180),
        ("round(2.5)", 3),  # half away from zero, as on paper
        ("round(-2.5)", -3),
        ("round(2.675, 2)", 2.68),
        ("round(1234, -2)", 1200),
        ("min(3, 1, 2)", 1),
        ("max(1.5, 2, -7)", 2),
        ("abs(-3.5)", 3.5),
        ("floor(2.7)", 2),
        ("ceil(-2.5)", -2),
        ("factorial(10)", 3628800),
        ("factorial(5.0)", 120),
        ("pi", 3.14159265359),
        ("tau / 2 - pi", 0),
        ("2 ** 0.5", 1.41421356237),
        ("sqrt(2) ** 2", 2),
        ("1e3 * 2", 2000),
        (".5 * 4", 2),
        ("radians(180) / pi", 1),
        ("acos(1)", 0),
        ("atan(1) * 4 / pi", 1),
        ("exp(1)", 2.71828182846),
        ("1.000001 ** 1000000", 2.71828046932),  # (1 + 1e-6) ** 1e6, not float(1.000001) ** 1e6
        ("1_000 + 0x10", 1016),
    ],
)
def test_results(expression: str, readable: int | float) -> None:
    result = evaluate(expression)
    assert result.readable == readable
    assert type(result.readable) is type(readable)


@pytest.mark.parametrize(
    ("expression", "exact"),
    [
        ("0.1 + 0.2", Fraction(3, 10)),  # not 0.30000000000000004
        ("1 / 3", Fraction(1, 3)),
        ("2 ** -10", Fraction(1, 1024)),
        ("(2 / 3) ** 3", Fraction(8, 27)),
        ("1.1 * 1.1", Fraction(121, 100)),
        ("7.5 // 2", 3),
        ("7.5 % 2", Fraction(3, 2)),
        ("sqrt(144)", 12),
        ("log(1000)", 3),
        ("(2 ** 64) ** (1 / 64)", 2),
        ("sqrt(9 / 16)", Fraction(3, 4)),
        ("144 ** 0.5", 12),
        ("8 ** (1 / 3)", 2),
        ("(-8) ** (1 / 3)", -2),
        ("(27 / 8) ** (2 / 3)", Fraction(9, 4)),
        ("factorial(25)", math.factorial(25)),
        ("2 ** 9999", 2**9999),
        ("(10 ** 400) ** 0.5", 10**200),
        ("0.5 ** -2000", 2**2000),
    ],
)
def test_exact_results(expression: str, exact: int | Fraction) -> None:
    result = evaluate(expression)
    assert result.exact
    assert result.value == exact
    assert type(result.value) is type(exact)


def test_inexact_results_are_floats_and_say_so() -> None:
    result = evaluate("sqrt(2)")
    assert not result.exact
    assert isinstance(result.value, float)
    assert result.value == math.sqrt(2)
    assert result.text == "1.41421356237"


def test_exact_fraction_is_shown_next_to_the_readable_number() -> None:
    result = evaluate("1 / 3")
    assert result.exact_text == "1/3"
    assert result.readable == 0.333333333333
    assert evaluate("6 / 3").exact_text is None  # whole numbers need no fraction


def test_huge_non_integers_fall_back_to_float_instead_of_failing() -> None:
    # (1 + 1e-6) ** 1e6 has a 20-million-bit exact numerator; its value is about e.
    result = evaluate("1.000001 ** 1000000")
    assert isinstance(result.value, float)
    assert result.value == pytest.approx(math.e, rel=1e-5)
    assert evaluate("1e-400").readable == 0  # underflows to zero, not an error


def test_roots_above_degree_64_are_not_tried_exactly() -> None:
    assert not evaluate("(2 ** 65) ** (1 / 65)").exact
    assert evaluate("(2 ** 65) ** (1 / 65)").readable == 2


def test_largest_factorial() -> None:
    assert len(str(evaluate("factorial(1000)").value)) == 2568


def test_round_digits_are_limited() -> None:
    assert evaluate("round(pi, 100)").readable == 3.14159265359
    with pytest.raises(CalculationLimitError, match="at most 100 digits"):
        evaluate("round(pi, 101)")


def test_errors_are_skill_execution_errors() -> None:
    for cls in (CalculationLimitError, CalculationMathError, CalculationNotAllowed,
                CalculationSyntaxError):
        assert issubclass(cls, CalculationError)
    assert issubclass(CalculationError, SkillExecutionError)


def test_readable_number_rounds_noise_away() -> None:
    assert readable_number(0.1 + 0.2) == 0.3
    assert readable_number(2.0000000000000004) == 2
    assert isinstance(readable_number(2.0000000000000004), int)
    assert readable_number(1e20) == 1e20
    assert isinstance(readable_number(1e20), float)
    assert readable_number(Fraction(10**400, 3)) == round(Fraction(10**400, 3))


def test_steps_record_each_operation() -> None:
    result = evaluate("percent(15) * 240")
    assert result.steps == ("15% = 3/20", "(3/20) * 240 = 36")
    assert evaluate("240 + percent(15)").steps[-1] == "240 + 15% of 240 = 240 + 36 = 276"
    assert evaluate("8 ** (1 / 3)").steps[-1] == "8 ** (1/3) = 2"


def test_steps_are_capped() -> None:
    result = evaluate(" + ".join(["1"] * 60))
    assert result.readable == 60
    assert len(result.steps) == 26 and result.steps[-1] == "..."


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / 0", "division by zero"),
        ("1 // 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("sqrt(-1)", "not a real number"),
        ("(-8) ** 0.5", "no real root"),
        ("(-2) ** 0.3", "no real root of even degree 10"),
        ("(-2) ** pi", "no real value"),
        ("log(0)", "positive numbers only"),
        ("ln(-1)", "positive numbers only"),
        ("log(8, 1)", "base must be positive and not 1"),
        ("asin(2)", "outside the function's domain"),
        ("factorial(-1)", "n >= 0"),
        ("factorial(2.5)", "whole number"),
        ("round(1.5, 0.5)", "whole number"),
    ],
)
def test_math_errors(expression: str, message: str) -> None:
    with pytest.raises(CalculationMathError, match=message) as raised:
        evaluate(expression)
    assert raised.value.expression == expression
    assert repr(expression) in str(raised.value)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "empty"),
        ("1 +", "not an arithmetic expression"),
        ("sqrt", "needs its argument in parentheses"),
        ("sqrt(1, 2)", r"sqrt\(\) takes 1 argument, got 2"),
        ("min()", r"min\(\) takes 1 to 100 arguments, got 0"),
        ("2 \u00d7 3", "unexpected character"),
    ],
)
def test_syntax_errors(expression: str, message: str) -> None:
    with pytest.raises(CalculationSyntaxError, match=message):
        evaluate(expression)
