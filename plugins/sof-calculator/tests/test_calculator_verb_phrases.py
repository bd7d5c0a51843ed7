"""Arithmetic asked for in words, verb or noun first: "add 3 and 4", "subtract 3 from 10",
"the sum of 3, 4 and 5", "the average of 2, 4 and 9". The rules planner picks the
calculator for them, and ``sof run "add 3 and 4"`` answers 7 with no ``--plan``.

A phrase counts only when its operands are plain numbers and it is the whole query (after
"please", "can you", "what is the" and the like), so "add milk and eggs", "the product of
our research" and "add the file to the folder" stay prose.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sof_calculator.plugin as calculator_plugin
from sof_calculator import CalculatorTool, evaluate, extract

from sof_core import UIF, CoordinatorEngine, PluginManager, SOFConfig
from sof_core.testing import SofCLI, make_engine

PHRASES = [
    # (query, text read, expression, answer)
    ("add 3 and 4", "add 3 and 4", "3 + 4", 7),
    ("add 3 to 4", "add 3 to 4", "3 + 4", 7),
    ("add 3, 4 and 5", "add 3, 4 and 5", "3 + 4 + 5", 12),
    ("sum of 3 and 4", "sum of 3 and 4", "3 + 4", 7),
    ("the sum of 3, 4 and 5", "sum of 3, 4 and 5", "3 + 4 + 5", 12),
    ("the sum of 3, 4, and 5", "sum of 3, 4, and 5", "3 + 4 + 5", 12),
    ("subtract 3 from 10", "subtract 3 from 10", "10 - 3", 7),
    ("take 3 from 10", "take 3 from 10", "10 - 3", 7),
    ("take 3 away from 10", "take 3 away from 10", "10 - 3", 7),
    ("take away 3 from 10", "take away 3 from 10", "10 - 3", 7),
    ("the difference between 10 and 3", "difference between 10 and 3", "10 - 3", 7),
    ("the difference of 10 and 3", "difference of 10 and 3", "10 - 3", 7),
    ("multiply 3 by 4", "multiply 3 by 4", "3 * 4", 12),
    ("multiply 3 and 4", "multiply 3 and 4", "3 * 4", 12),
    ("the product of 3 and 4", "product of 3 and 4", "3 * 4", 12),
    ("the product of 2, 3 and 4", "product of 2, 3 and 4", "2 * 3 * 4", 24),
    ("divide 10 by 4", "divide 10 by 4", "10 / 4", 2.5),
    ("the quotient of 10 and 4", "quotient of 10 and 4", "10 / 4", 2.5),
    ("square 5", "square 5", "5 ** 2", 25),
    ("the square of 5", "square of 5", "5 ** 2", 25),
    ("cube 3", "cube 3", "3 ** 3", 27),
    ("the cube of 3", "cube of 3", "3 ** 3", 27),
    ("average of 2, 4 and 9", "average of 2, 4 and 9", "(2 + 4 + 9) / 3", 5),
    ("the mean of 2, 4 and 9", "mean of 2, 4 and 9", "(2 + 4 + 9) / 3", 5),
    # case, decimals, signs, currency signs
    ("ADD 3 AND 4", "ADD 3 AND 4", "3 + 4", 7),
    ("Subtract 2.5 from 10", "Subtract 2.5 from 10", "10 - 2.5", 7.5),
    ("add 1.5 and .25", "add 1.5 and .25", "1.5 + 0.25", 1.75),
    ("add -3 and 4", "add -3 and 4", "(-3) + 4", 1),
    ("square -5", "square -5", "(-5) ** 2", 25),
    ("add negative 3 and 4", "add negative 3 and 4", "(-3) + 4", 1),
    ("add $1,200 and $34", "add $1,200 and $34", "1200 + 34", 1234),
    # a leading "please", "can you", "what is the", ...; a trailing ", please" and ?.!
    ("please add 3 and 4", "add 3 and 4", "3 + 4", 7),
    ("Please, subtract 3 from 10.", "subtract 3 from 10", "10 - 3", 7),
    ("Can you add 3 and 4?", "add 3 and 4", "3 + 4", 7),
    ("could you please divide 10 by 4?", "divide 10 by 4", "10 / 4", 2.5),
    ("What is the sum of 3 and 4?", "sum of 3 and 4", "3 + 4", 7),
    ("what's the average of 2, 4 and 9?", "average of 2, 4 and 9", "(2 + 4 + 9) / 3", 5),
    ("What\u2019s the product of 3 and 4", "product of 3 and 4", "3 * 4", 12),
    ("Can you tell me the difference between 10 and 3?", "difference between 10 and 3",
     "10 - 3", 7),
    ("calculate the quotient of 10 and 4", "quotient of 10 and 4", "10 / 4", 2.5),
    ("multiply 3 by 4, please", "multiply 3 by 4", "3 * 4", 12),
    ("add 3 and 4!", "add 3 and 4", "3 + 4", 7),  # the sentence's end, not 4 factorial
    ("add 3 and 4 and 5", "add 3 and 4 and 5", "3 + 4 + 5", 12),
    ("the sum of 3, 4, 5", "sum of 3, 4, 5", "3 + 4 + 5", 12),
]

LEADS = ["please", "Please,", "kindly", "can you", "could you", "would you", "will you",
         "can you please", "what is", "what's", "calculate", "compute", "find", "work out",
         "tell me", "give me", "please can you tell me"]


@pytest.mark.parametrize("lead", LEADS)
def test_the_words_that_may_lead_a_phrase(lead: str) -> None:
    found = extract(f"{lead} the sum of 3 and 4?")
    assert found is not None and (found.text, found.expression) == ("sum of 3 and 4", "3 + 4")
    found = extract(f"{lead} add 3 and 4")
    assert found is not None and found.expression == "3 + 4"
    assert extract(f"{lead} add milk and eggs") is None


@pytest.mark.parametrize(("query", "text", "expression", "answer"), PHRASES)
def test_phrases_are_read_as_arithmetic(query: str, text: str, expression: str,
                                        answer: int | float) -> None:
    found = extract(query)

    assert found is not None
    assert (found.text, found.expression) == (text, expression)
    assert evaluate(found.expression).readable == answer


# Each near miss beside the phrase it resembles: the phrase is calculated, the near miss is
# not (operands that are not plain numbers, or more in the query than the phrase).
NEAR_MISSES = [
    ("add milk and eggs", "add 3 and 4"),
    ("the product of our research", "the product of 3 and 4"),
    ("add the file to the folder", "add 3 to 4"),
    ("Add 2 cups of flour and 3 eggs", "add 2 and 3"),
    ("add 2 cups of flour", "add 2 and 3"),
    ("add 3 and 4 to the list", "add 3 and 4"),
    ("Add 555-1234 to my contacts", "add 555 to 1234"),
    ("Call 555-1234 and 555-9876", "add 555 and 1234"),
    ("the difference between 2019-2020 and 2020-2021", "the difference between 2020 and 2019"),
    ("take 2 pills from the 10 bottles", "take 2 from 10"),
    ("take the 2 pills with water", "take 2 from 10"),
    ("subtract the discount from the total", "subtract 3 from 10"),
    ("multiply the results by the weights", "multiply 3 by 4"),
    ("divide the class into 4 groups", "divide 10 by 4"),
    ("Meet me at Washington Square 5", "square 5"),
    ("square 5th avenue", "square 5"),
    ("what is the average of the scores", "average of 2, 4 and 9"),
    ("What is the mean of this sentence?", "mean of 2, 4 and 9"),
    ("the sum of 1 to 10", "the sum of 1 and 10"),
    ("add 3", "add 3 and 4"),
    ("the sum of 3", "the sum of 3 and 4"),
    ("add three and four", "add 3 and 4"),  # numbers in words are not read
    ("I want to add 3 and 4 to my order", "add 3 and 4"),
    ("2 times the sum of 3 and 4", "the sum of 3 and 4"),  # not calculated as 7
]


@pytest.mark.parametrize(("near_miss", "phrase"), NEAR_MISSES)
def test_near_misses_are_not_arithmetic(near_miss: str, phrase: str) -> None:
    assert extract(phrase) is not None
    assert extract(near_miss) is None


def test_existing_arithmetic_is_read_as_before() -> None:
    assert extract("add 3 and 4") is not None
    found = extract("take 10 - 2 apples")
    assert found is not None and found.expression == "10 - 2"
    found = extract("multiply 3 x 4")
    assert found is not None and (found.text, found.expression) == ("3 x 4", "3 * 4")
    found = extract("square root of 16")
    assert found is not None and found.expression == "sqrt(16)"


# --- the tool and the rules planner -------------------------------------------------------


def test_the_steps_show_the_phrase_and_its_expression() -> None:
    engine = make_engine(plugins=[("calculator", calculator_plugin)])

    report = engine.execute_plan(["CalculatorTool"], UIF(input_query="subtract 3 from 10"))

    assert report.status == "success", report.errors
    data = report.uif.intermediate_data
    assert data["calculation_result"] == 7
    assert data["calculation_steps"] == [
        "Expression: subtract 3 from 10",
        "Evaluated as: 10 - 3",
        "10 - 3 = 7",
        "Result: 7",
    ]


@pytest.fixture(scope="module")
def rules_engine() -> CoordinatorEngine:
    pytest.importorskip("sof_response", reason="the response plugin (plugins/sof-response)")
    # No plan cache: it keys "add 3 and 4!" and "add 3 and 4" alike, and each query here
    # must be planned on its own.
    config = SOFConfig(plugins_only=["calculator", "response"], enable_plan_cache=False)
    return CoordinatorEngine(PluginManager(config), config)


# ("add 3 and 4!" is left out: the planner picked the calculator for it before, for "4!".)
@pytest.mark.parametrize("query", [query for query, *_ in PHRASES if not query.endswith("!")])
def test_the_rules_planner_picks_the_calculator(rules_engine: CoordinatorEngine,
                                               query: str) -> None:
    assert CalculatorTool().can_handle_query(query)
    plan = rules_engine.planning.plan(query)
    assert "CalculatorTool" in plan.plan
    assert plan.reasons["CalculatorTool"].startswith("its trigger matched")


@pytest.mark.parametrize(("near_miss", "phrase"), NEAR_MISSES)
def test_the_rules_planner_leaves_near_misses_alone(rules_engine: CoordinatorEngine,
                                                   near_miss: str, phrase: str) -> None:
    assert "CalculatorTool" in rules_engine.planning.plan(phrase).plan
    assert "CalculatorTool" not in rules_engine.planning.plan(near_miss).plan


# --- end to end ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["add 3 and 4", "subtract 3 from 10"])
def test_sof_run_answers_7_with_no_plan(tmp_path: Path, query: str) -> None:
    pytest.importorskip("sof_response", reason="the response plugin (plugins/sof-response)")
    sof = SofCLI(tmp_path)
    assert not sof.config_path.exists()  # no config: the rules planner, installed plugins

    result = sof("run", query, "--json")

    assert result.ok, result
    report = result.json()
    assert report["planning"]["planner"] == "rules"
    assert "CalculatorTool" in report["plan"]
    assert report["uif"]["intermediate_data"]["calculation_result"] == 7
    assert report["final_response"].startswith("The answer is 7")

    shown = sof("run", query)

    assert shown.ok, shown
    assert shown.stdout.splitlines()[0].startswith("The answer is 7 [1].")
