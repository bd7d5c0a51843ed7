"""CalculatorTool in a real engine: registered as a tool, writes SAM's keys, keeps the
contract, and reports refusals as typed errors while the host goes on answering."""

from __future__ import annotations

import pickle
import re
import time

import pytest
import sof_calculator.plugin as calculator_plugin
from sof_calculator import (
    NO_EXPRESSION,
    CalculationError,
    CalculationLimitError,
    CalculatorTool,
)

from sof_core import UIF, SkillSpec
from sof_core.testing import (
    check_plugin,
    check_plugin_module,
    check_skill_contract,
    import_footprint,
    make_engine,
)


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    """An engine with the calculator plugin registered through its hooks, as when installed."""
    return make_engine(plugins=[("calculator", calculator_plugin)])


def run(engine, query: str, **data: object):  # type: ignore[no-untyped-def]
    return engine.execute_plan(["CalculatorTool"], UIF(input_query=query, intermediate_data=data))


def test_registered_as_a_tool() -> None:
    assert check_plugin_module("calculator", calculator_plugin) == ["CalculatorTool"]
    manager_engine = make_engine(plugins=[("calculator", calculator_plugin)])
    entry = manager_engine.registry.skill("CalculatorTool")
    assert entry is not None and entry.kind == "tools"


def test_declarations() -> None:
    spec = SkillSpec.from_skill_class(CalculatorTool)
    assert spec.required_inputs == ("input_query",)
    assert spec.optional_inputs == ("calculation_expression",)
    assert spec.output_keys == ("calculation_result", "calculation_steps")
    assert spec.permissions == frozenset()  # it only computes
    assert spec.max_execution_time == 5.0
    assert spec.max_output_bytes == 65_536
    assert spec.isolation == "process"
    assert spec.category == "tool"


def test_writes_sam_keys(engine) -> None:  # type: ignore[no-untyped-def]
    report = run(engine, "What is 15% of 240?")
    assert report.status == "success", report.errors
    data = report.uif.intermediate_data
    assert data["calculation_result"] == 36
    assert type(data["calculation_result"]) is int
    assert data["calculation_steps"] == [
        "Expression: 15% of 240",
        "Evaluated as: percent(15) * 240",
        "15% = 3/20",
        "(3/20) * 240 = 36",
        "Result: 36",
    ]
    assert report.uif.skill_outputs["CalculatorTool"] == {
        "status": "calculated", "expression": "15% of 240",
        "evaluated": "percent(15) * 240", "result": 36, "exact": True,
    }


def test_non_integers_are_floats_with_the_exact_value_in_the_steps(engine) -> None:  # type: ignore[no-untyped-def]
    data = run(engine, "What is 1/3?").uif.intermediate_data
    assert data["calculation_result"] == 0.333333333333
    assert data["calculation_steps"][-2:] == ["Exact result: 1/3", "Result: 0.333333333333"]


def test_no_expression_is_not_an_error(engine) -> None:  # type: ignore[no-untyped-def]
    report = run(engine, "Tell me about cats")
    assert report.status == "success"
    assert report.uif.intermediate_data["calculation_result"] is None
    assert report.uif.intermediate_data["calculation_steps"] == [NO_EXPRESSION]
    assert report.uif.skill_outputs["CalculatorTool"]["status"] == "no_expression"


def test_calculation_expression_input_wins_over_the_query(engine) -> None:  # type: ignore[no-untyped-def]
    report = run(engine, "What is 15% of 240?", calculation_expression="2^10")
    assert report.uif.intermediate_data["calculation_result"] == 1024
    assert report.uif.intermediate_data["calculation_steps"][0] == "Expression: 2^10"


def test_calculation_expression_must_be_text(engine) -> None:  # type: ignore[no-untyped-def]
    report = run(engine, "x", calculation_expression=42)
    [result] = report.results
    assert result.error_type == "CalculationSyntaxError"
    assert "calculation_expression must be text, got int" in (result.error or "")


@pytest.mark.parametrize(
    ("query", "given", "error_type", "words"),
    [
        ("What is 9**9**9?", None, "CalculationLimitError", "'9**9**9': the result would have"),
        ("What is 10^10^10?", None, "CalculationLimitError", "'10^10^10'"),
        ("what is 100000!", None, "CalculationLimitError", "factorials up to 1000!"),
        ("What is 1/0?", None, "CalculationMathError", "division by zero"),
        ("calc", "__import__('os').system('true')", "CalculationNotAllowed", "attribute access"),
        ("calc", "(lambda: 1)()", "CalculationNotAllowed", "only the calculator's functions"),
        ("calc", "[x for x in range(10**9)]", "CalculationNotAllowed", "comprehensions"),
    ],
)
def test_refusals_are_typed_errors_and_the_host_goes_on(
    engine, query: str, given: str | None, error_type: str, words: str  # type: ignore[no-untyped-def]
) -> None:
    data = {} if given is None else {"calculation_expression": given}
    start = time.perf_counter()
    report = run(engine, query, **data)
    took = time.perf_counter() - start
    [result] = report.results
    assert report.status == "failure"
    assert result.status == "failed" and result.error_type == error_type
    assert words in (result.error or "")
    assert result.skill == "CalculatorTool"
    assert "calculation_result" not in report.uif.intermediate_data  # no "Error: ..." result
    assert took < 5.0  # refused by the guard, not stopped at the tool's 5 s timeout
    assert run(engine, "2 + 2").uif.intermediate_data["calculation_result"] == 4


def test_errors_survive_the_isolation_pipe() -> None:
    error = CalculationLimitError("too big", "9**9**9", "try less", "CalculatorTool")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is CalculationLimitError
    assert (copy.reason, copy.expression, copy.hint, copy.skill) == (
        "too big", "9**9**9", "try less", "CalculatorTool")
    assert str(copy) == str(error)
    assert isinstance(copy, CalculationError)


def test_contract() -> None:
    report = check_skill_contract(CalculatorTool, query="What is 15% of 240?")
    assert report.uif.intermediate_data["calculation_result"] == 36
    check_skill_contract(CalculatorTool, query="Tell me about cats")
    check_skill_contract(CalculatorTool, inputs={"calculation_expression": "sqrt(144) + 3"})


def test_installed_plugin_keeps_the_contract() -> None:
    result = check_plugin("calculator")
    result.raise_for_failures()
    assert result.distribution == "sof-calculator"


@pytest.mark.parametrize(
    ("query", "arithmetic"),
    [
        ("What is 15% of 240?", True),
        ("square root of 144 plus 3", True),
        ("2 to the power of 10", True),
        ("1234 times 5678", True),
        ("What is 9**9**9?", True),  # arithmetic; the tool then refuses it
        ("Tell me about cats", False),
        ("In 1999, what happened?", False),
        ("Summarise http://127.0.0.1:8000/page.html", False),
    ],
)
def test_planner_hooks(query: str, arithmetic: bool) -> None:
    assert CalculatorTool().can_handle_query(query) is arithmetic
    matched = any(re.search(p, query, re.IGNORECASE) for p in CalculatorTool.triggers)
    assert matched is arithmetic


def test_loading_the_plugin_leaves_the_extractor_and_evaluator_for_the_first_calculation(
) -> None:
    """Every ``sof`` process loads the plugin; few calculate. Loading and registering it
    imports neither the extractor nor the evaluator and compiles none of their patterns;
    the first calculation (in the tool's isolation worker, under its guards) does, and
    works, as do the names the package exports from them."""
    load, first_use = import_footprint(
        """
        from sof_calculator import plugin
        assert plugin.sof_register_tools()
        """,
        """
        from sof_core import UIF
        from sof_core.testing import make_engine
        engine = make_engine(plugins=[("calculator", plugin)])
        report = engine.execute_plan(["CalculatorTool"], UIF(input_query="What is 15% of 240?"))
        assert report.status == "success", report.errors
        assert report.uif.intermediate_data["calculation_result"] == 36
        engine.close()

        from sof_calculator import CalculatorTool, Evaluation, Extraction, evaluate, extract
        assert CalculatorTool().can_handle_query("What is 2 + 2?")
        assert isinstance(evaluate("2 + 2"), Evaluation) and evaluate("2 + 2").readable == 4
        assert isinstance(extract("What is 2 + 2?"), Extraction)
        import sof_calculator
        assert {"evaluate", "extract", "rewrite"} <= set(dir(sof_calculator))
        """,
    )
    deferred = ["sof_calculator.extractor", "sof_calculator.evaluator"]
    assert not load.compiled_in("sof_calculator")
    assert not load.loaded(deferred)
    assert first_use.loaded(deferred) == sorted(deferred)
