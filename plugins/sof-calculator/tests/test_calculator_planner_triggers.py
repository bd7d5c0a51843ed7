"""The rules planner chooses the calculator for every arithmetic form it documents.

The planner asks ``can_handle_query`` only when one of ``CalculatorTool.triggers`` matched,
so a trigger narrower than the calculator left documented arithmetic ("What is 5 + -3?",
"10 mod 3", "max(3, 9)", "absolute value of -5") to the default plan: ``sof run`` answered
without calculating. These tests plan every documented form through the real rules
planner, check the triggers against the extractor's own word and symbol tables, and keep
ordinary questions (with numbers in them too) away from the calculator.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sof_calculator import CalculatorTool, evaluate
from sof_calculator import extractor as found

from sof_core import CoordinatorEngine, PluginManager, SOFConfig
from sof_core.testing import SofCLI

SOURCE = Path(__file__).resolve().parents[1]

#: Phrasings an acceptance probe found unplanned: the calculator reads each of them.
PROBED = [
    "What is 5 + -3?", "what is -5 * -3", "What is 2 ** -1?", "what is 17 // 5",
    "what is 10 mod 3", "17 modulo 5", "what is 10 over 4", "2 raised to 10", "what is 2\u00b2",
    "10 \u2212 3", "what is 2 * pi", "max(3, 9)", "absolute value of -5",
]

#: Every form docs/plugins/calculator.md documents ("What it computes", "How it finds the
#: arithmetic", "Asking in words").
DOCUMENTED = [
    # numbers
    "12 + 1.5", ".5 * 4", "1e3 / 8", "1,234.50 + 1", "1 000 000 / 4", "1_000 * 3", "007 + 1",
    "0x1f + 1", "0o17 * 2", "0b101 - 1",
    # operators, parentheses, unary minus, precedence
    "2 + 3", "10 - 4", "6 * 7", "10 / 4", "17 // 5", "17 % 5", "2 ** 10", "(2 + 3) * 4",
    "-(2 + 3)", "2 ** 3 ** 2", "-2 ** 2", "what is 10-2", "calculate 80/20", "144/12?",
    "0.1 + 0.2", "2 ** -10", "(-8) ** (1/3)",
    # percentages
    "15% of 240", "240 + 15%", "240 - 15%", "240 * 15%", "15 percent of 80",
    "15 per cent of 80",
    # words
    "3 plus 4", "10 minus 3", "3 times 4", "3 x 4", "3 multiplied by 4", "10 divided by 4",
    "10 over 4", "10 mod 3", "10 modulo 3", "2 to the power of 10", "2 to the power 10",
    "2 raised to 10", "2 raised to the power of 10", "8 to the power of 1/3", "5 squared",
    "3 cubed", "negative 5 plus 3", "square root of 144", "square root 144",
    "cube root of 27", "log of 100", "logarithm of 100", "natural log of 10",
    "natural logarithm of 10", "absolute value of -5", "factorial of 5", "5 factorial", "sine of 1",
    "cosine of 0", "tangent of 1", "log2 of 8",
    # symbols
    "3 \u00d7 4", "10 \u00f7 4", "10 \u2212 3", "2^10", "\u221a16", "2\u03c0", "\u03c0 * 2",
    "2\u00b2", "2\u00b3", "5!", "3 \u00b7 4",
    # functions
    "sqrt(16)", "cbrt(27)", "log(1000)", "log(8, 2)", "log10(1000)", "log2(8)", "ln(10)",
    "exp(1)", "sin(1)", "cos(0)", "tan(1)", "asin(1)", "acos(1)", "atan(1)", "degrees(pi)",
    "radians(180)", "round(2.5)", "round(2.345, 2)", "min(3, 9)", "max(3, 9)", "abs(-5)",
    "floor(2.5)", "ceil(2.5)", "factorial(5)", "percent(15)", "sqrt(144) + 3",
    "sin(pi)", "sqrt(sqrt(16))", "max(1,234)",
    # constants
    "2 * pi", "e ** 2", "tau / 2", "pi squared", "sqrt(pi)", "\u03c0\u00b2", "2pi",
    # found in prose
    "Is 2 + 2 less than 3 * 4 - 1?", "What is 15% of 240?", "How much is 12 * 7?",
    "$34 + 5", "1.000001 ** 1000000",
    # refused, but planned so the tool says why
    "1,5 + 2,5", "5 + 3 4", "What is 9**9**9?", "1/0",
    # asking in words
    "add 3 and 4", "add 3 to 4", "add 3, 4 and 5", "sum of 3 and 4",
    "the sum of 3, 4 and 5", "subtract 3 from 10", "take 3 from 10", "take 3 away from 10",
    "the difference between 10 and 3", "the difference of 10 and 3", "multiply 3 by 4",
    "multiply 3 and 4", "the product of 3 and 4", "divide 10 by 4",
    "the quotient of 10 and 4", "square 5", "the square of 5", "cube 3", "the cube of 3",
    "average of 2, 4 and 9", "the mean of 2, 4 and 9", "Can you tell me the sum of 3 and 4?",
    "add negative 3 and 4", "please add -3 and 4",
]

#: Ordinary questions, numbers in some: never the calculator.
NOT_ARITHMETIC = [
    "What is SOF?", "when was the memory system redesigned in 2023?",
    "tell me about version 2.0", "what is the plan for Q3", "In 1999, what happened?",
    "Tell me about cats", "Summarise http://127.0.0.1:8000/page.html",
    "What is pi?", "What is -5?", "sales grew 20%", "covid-19 cases in 2021",
    "call 555-1234", "the 80/20 rule", "open 24/7", "what happened in 2019-2020",
    "What is the plan for 2024-01-15?", "add milk and eggs", "the product of our research",
    "What is the log level?", "New York Times", "Is the x axis labelled?",
    "what happened over the weekend", "Who was the first president of France?",
    "hello there", "What do my notes say about the Paris office?",
]

#: Prose the extractor reads as a call without parentheses ("round(2)", "floor(3)"): the
#: planner leaves it alone, as it does every function name in ``CALLED_ONLY`` uncalled.
WORDS_NOT_CALLS = [
    "what happened in round 2?", "Where is the office on floor 3?", "max 5 people",
    "abs 3 times a week",
]


def triggered(query: str) -> bool:
    """Whether one of the planner's triggers matches, as the rules planner searches them."""
    return any(re.search(p, query, re.IGNORECASE) for p in CalculatorTool.triggers)


@pytest.fixture(scope="module")
def rules_engine() -> CoordinatorEngine:
    pytest.importorskip("sof_response", reason="the response plugin (plugins/sof-response)")
    config = SOFConfig(plugins_only=["calculator", "response"], enable_plan_cache=False)
    return CoordinatorEngine(PluginManager(config), config)


@pytest.mark.parametrize("query", list(dict.fromkeys(PROBED + DOCUMENTED)))
def test_the_rules_planner_chooses_the_calculator_for_every_documented_form(
        rules_engine: CoordinatorEngine, query: str) -> None:
    assert CalculatorTool().can_handle_query(query)
    plan = rules_engine.planning.plan(query)
    assert plan.planner == "rules"
    assert "CalculatorTool" in plan.plan, plan.skipped
    assert plan.reasons["CalculatorTool"].startswith("its trigger matched")


@pytest.mark.parametrize("query", NOT_ARITHMETIC)
def test_ordinary_questions_do_not_plan_the_calculator(rules_engine: CoordinatorEngine,
                                                      query: str) -> None:
    assert not CalculatorTool().can_handle_query(query)
    plan = rules_engine.planning.plan(query)
    assert "CalculatorTool" not in plan.plan


@pytest.mark.parametrize("query", WORDS_NOT_CALLS)
def test_function_names_that_are_everyday_words_plan_the_calculator_only_when_called(
        rules_engine: CoordinatorEngine, query: str) -> None:
    assert "CalculatorTool" not in rules_engine.planning.plan(query).plan
    assert not triggered(query)


@pytest.mark.parametrize("query", [
    "What is SOF?", "when was the memory system redesigned in 2023?",
    "tell me about version 2.0", "what is the plan for Q3", "In 1999, what happened?",
    "Tell me about cats", "Summarise http://127.0.0.1:8000/page.html",
    "What is -5?", "What is the log level?", "New York Times",
])
def test_ordinary_questions_are_not_even_a_trigger_match(query: str) -> None:
    """A trigger that matches prose the calculator then turns down puts "not chosen:
    CalculatorTool" in every ``sof plan`` of it: the triggers stay on arithmetic."""
    assert not triggered(query)


#: Function names that are everyday words too: the planner counts them only when called
#: with parentheses ("round(2.5)", not "what happened in round 2?").
CALLED_ONLY = ("round", "min", "max", "floor", "ceil", "abs", "exp", "degrees", "radians")


def _vocabulary_examples() -> list[str]:
    """A query for each word and symbol in the extractor's tables, used as its kind is."""
    examples: list[str] = []
    entries = [(" ".join(words), kind) for words, (kind, _) in found._PHRASES.items()]
    entries += [(symbol, kind) for symbol, (kind, _) in found._SYMBOLS.items()]
    for text, kind in entries:
        if kind == found.OP:
            examples += [f"7 {text} 3", f"7{text}3", f"what is 7 {text} -3"]
        elif kind in (found.POST, found.PCT):
            examples += [f"7{text}", f"7 {text}", f"15 {text} of 240", f"17 {text} 5"]
        elif kind == found.FUNC:
            examples += [f"{text}(9)", f"{text}(-9)"]
            if text not in CALLED_ONLY:
                examples += [f"{text} 9", f"{text} -9"]
                examples += [] if text.endswith(" of") else [f"{text} of 9"]
        elif kind == found.CONST:
            examples += [f"2 * {text}", f"{text} squared", f"{text} + 1"]
            examples += [] if text == "e" else [f"2{text}"]  # "2e": not documented
    examples += [f"{name}(9)" for name in found.FUNCTIONS]
    examples += [f"{name}(4, 9)" for name in found.FUNCTIONS]
    return examples


def test_the_triggers_cover_every_word_and_symbol_of_the_extractor() -> None:
    """One source of truth for what is arithmetic: wherever the extractor (the tool's
    ``can_handle_query``) reads a calculation built from one of its words or symbols, a
    trigger matches, so a word added to the extractor cannot be left out of planning."""
    examples = _vocabulary_examples()
    handled = [q for q in examples if CalculatorTool().can_handle_query(q)]
    assert len(handled) > len(examples) // 2  # the examples are mostly arithmetic
    assert [q for q in handled if not triggered(q)] == []


@pytest.mark.parametrize(("query", "answer"), [
    ("What is 5 + -3?", 2), ("what is 10 mod 3", 1), ("absolute value of -5", 5),
    ("max(3, 9)", 9),
])
def test_sof_run_answers_with_no_plan(tmp_path: Path, query: str, answer: int) -> None:
    pytest.importorskip("sof_response", reason="the response plugin (plugins/sof-response)")
    path = os.pathsep.join(p for p in (str(SOURCE), os.environ.get("PYTHONPATH")) if p)
    sof = SofCLI(tmp_path, env={"PYTHONPATH": path})  # this source, not the installed copy
    assert not sof.config_path.exists()  # no config: the rules planner, installed plugins

    result = sof("run", query, "--json")

    assert result.ok, result
    report = result.json()
    assert report["planning"]["planner"] == "rules"
    assert "CalculatorTool" in report["plan"]
    assert report["uif"]["intermediate_data"]["calculation_result"] == answer
    assert report["final_response"].startswith(f"The answer is {answer}")


@pytest.mark.parametrize(("query", "text", "answer"), [
    ("What is 5 factorial", "5 factorial", 120),
    ("5 factorial?", "5 factorial", 120),
    ("what is 3 factorial plus 1", "3 factorial plus 1", 7),
])
def test_factorial_after_its_number_is_calculated_and_planned(
        rules_engine: CoordinatorEngine, query: str, text: str, answer: int) -> None:
    """"5 factorial" (as "5 squared"), labelled arithmetic in the planning benchmark, was
    read as no arithmetic at all: the default plan answered it from memory."""
    extraction = found.extract(query)
    assert extraction is not None and extraction.text == text
    assert evaluate(extraction.expression).readable == answer
    assert "CalculatorTool" in rules_engine.planning.plan(query).plan


@pytest.mark.parametrize(("query", "quoted"), [
    ("what is 15% of 240", "15%"),
    ("what is 12.5 * 3", "12.5 * 3"),
    ("what is 1,000 + 2", "1,000 + 2"),
])
def test_the_reason_quotes_the_whole_number_that_matched(
        rules_engine: CoordinatorEngine, query: str, quoted: str) -> None:
    """`sof plan` explains a choice by the text its trigger matched: all of the number
    ("15%"), not its last digit ("5%")."""
    result = rules_engine.planning.plan(query, use_cache=False)
    assert result.reasons["CalculatorTool"].startswith(f"its trigger matched '{quoted}'")


@pytest.mark.parametrize("query", [
    "What is order " + "1" * 16_000 + " about?",
    "Data: " + ",".join(["7"] * 8_000),
])
def test_a_long_run_of_digits_does_not_hold_the_planner(query: str) -> None:
    """A pasted column of numbers with no operator: the triggers start a match only where a
    number starts, so planning stays linear (a trigger that could start at every digit took
    ~100 s on 16,000 digits). The bound is for a hang, not a speed figure."""
    import time

    from sof_core.planning.triggers import Signals

    signals = Signals.of("CalculatorTool", CalculatorTool, CalculatorTool(), "calculator")
    assert signals is not None
    started = time.perf_counter()
    signals.score(query)
    assert time.perf_counter() - started < 5.0
