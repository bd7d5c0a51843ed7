"""Claims of docs/plugins/calculator.md that no other test checked: the guards' limits at
their edges, words the extractor reads, the full error message, and the rules planner."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sof_calculator.plugin as calculator_plugin
from sof_calculator import (
    CalculationLimitError,
    CalculatorTool,
    evaluate,
    extract,
)

from sof_core import UIF, CoordinatorEngine, PluginManager, SOFConfig
from sof_core.testing import SofCLI, make_engine


def refusal(expression: str) -> CalculationLimitError:
    with pytest.raises(CalculationLimitError) as caught:
        evaluate(expression)
    return caught.value


# --- the guards' limits, at the edge ----------------------------------------------------------


def test_a_query_of_10000_characters_is_read_and_one_more_is_refused() -> None:
    query = "What is 2 + 2?".ljust(10_000)

    found = extract(query)

    assert found is not None and evaluate(found.expression).readable == 4
    with pytest.raises(CalculationLimitError, match="at most 10,000"):
        extract(query + " ")


def test_an_expression_of_1000_characters_is_read_and_one_more_is_refused() -> None:
    assert evaluate("1" * 1000).readable == int("1" * 1000)
    assert "the expression is 1,001 characters long" in str(refusal("1" * 1001))


def test_parentheses_may_nest_30_deep() -> None:
    assert evaluate("(" * 30 + "1" + ")" * 30).readable == 1
    assert "nested 31 deep; the limit is 30" in str(refusal("(" * 31 + "1" + ")" * 31))


def test_a_sum_of_100_terms_is_calculated() -> None:
    assert evaluate(" + ".join(["1"] * 100)).readable == 100
    # 101 terms are 100 operations, the limit; 102 are one too many
    assert "nests more than 100 operations" in str(refusal(" + ".join(["1"] * 102)))


def test_100_operations_nested_in_one_another_are_calculated() -> None:
    assert evaluate("- " * 100 + "1").readable == 1  # 100 unary minus signs, an even count


def test_99_nested_operations_are_calculated_and_101_are_refused() -> None:
    assert evaluate("- " * 99 + "1").readable == -1
    assert "nests more than 100 operations" in str(refusal("- " * 101 + "1"))
    assert evaluate(" + ".join(["1"] * 100)).readable == 100  # a sum of 100 terms
    assert evaluate(" + ".join(["1"] * 101)).readable == 101  # 100 operations


def test_exact_numbers_stay_below_2_to_the_10000() -> None:
    assert evaluate("2 ** 9999").readable == 2**9999
    message = str(refusal("2 ** 10000"))
    assert "the calculator keeps exact numbers below 2**10000 (3,011 digits)" in message


def test_floating_point_results_stay_below_1_8e308() -> None:
    assert evaluate("pi * 5e307").readable == pytest.approx(1.5707963e308)
    assert "over 1.8e308" in str(refusal("pi * 6e307"))  # 1.88e308


def test_number_literals_may_have_exponents_up_to_4000() -> None:
    assert evaluate("1e-4000").readable == 0  # read, then too small to show
    assert "exponents up to 4,000 are read" in str(refusal("1e-4001"))
    assert "exponents up to 4,000 are read" in str(refusal("1e4001"))


# --- what it computes ----------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expression", "result"), [
    ("What is 240 * 15%?", "240 * percent(15)", 36),
    ("10 minus 3", "10 - 3", 7),
    ("sine of 0", "sin(0)", 0),
    ("tangent of 0", "tan(0)", 0),
    ("2 raised to the power of 3", "2 ** 3", 8),
    ("What is 12 + 1.5?", "12 + 1.5", 13.5),
])
def test_more_documented_phrasings(query: str, expression: str, result: int | float) -> None:
    found = extract(query)

    assert found is not None and found.expression == expression
    assert evaluate(found.expression).readable == result


def test_the_python_api_example() -> None:
    found = extract("What is 15% of 240?")
    assert found is not None
    assert (found.text, found.expression) == ("15% of 240", "percent(15) * 240")

    result = evaluate(found.expression)

    assert (result.value, result.readable, result.text, result.exact) == (36, 36, "36", True)
    assert result.exact_text is None
    assert result.steps == ("15% = 3/20", "(3/20) * 240 = 36")


# --- the tool in an engine ----------------------------------------------------------------------


def test_the_error_message_names_the_tool_the_expression_and_the_guard() -> None:
    engine = make_engine(plugins=[("calculator", calculator_plugin)])

    report = engine.execute_plan(["CalculatorTool"], UIF(input_query="What is 9**9**9?"))

    [result] = report.results
    assert (result.skill, result.error_type) == ("CalculatorTool", "CalculationLimitError")
    assert result.error == (
        "cannot calculate '9**9**9': the result would have about 369,693,100 digits; the "
        "calculator keeps exact numbers below 2**10000 (3,011 digits) and floating-point "
        "numbers below 1.8e308")


def test_the_triggers_are_a_tuple_of_regular_expressions() -> None:
    assert isinstance(CalculatorTool.triggers, tuple) and CalculatorTool.triggers
    for pattern in CalculatorTool.triggers:
        re.compile(pattern, re.IGNORECASE)


def test_the_rules_planner_runs_the_calculator_with_no_plan() -> None:
    pytest.importorskip("sof_response", reason="the response plugin (plugins/sof-response)")
    config = SOFConfig(plugins_only=["calculator", "response"])
    engine = CoordinatorEngine(PluginManager(config), config)

    report = engine.run_query("What is 15% of 240?")

    assert report.status == "success", report.errors
    assert report.uif.executed_skills == ["CalculatorTool", "ResponseGenerationSkill"]
    assert report.uif.final_response.startswith("The answer is 36 [1].")
    assert "[1] CalculatorTool" in report.uif.final_response


def test_sof_run_prints_exactly_the_documented_error(tmp_path: Path) -> None:
    pytest.importorskip("sof_response", reason="the response plugin (plugins/sof-response)")

    result = SofCLI(tmp_path)("run", "What is 9**9**9?", "--plan", "CalculatorTool",
                              "ResponseGenerationSkill")

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "error: CalculatorTool: CalculationLimitError: cannot calculate '9**9**9': the result "
        "would have about 369,693,100 digits; the calculator keeps exact numbers below 2**10000 "
        "(3,011 digits) and floating-point numbers below 1.8e308 (plugin calculator, at ")
    assert line.endswith("sof_calculator/skill.py:100; --trace shows the traceback)") or (
        "sof_calculator" in line and line.endswith("; --trace shows the traceback)"))
