"""CalculatorTool: the arithmetic in the query, calculated exactly where possible.

It writes SAM's keys, so SAM's response skill and SOF's both read them:

- ``calculation_result``: the answer as a plain number, an ``int`` for whole numbers
  (``36``) and a ``float`` of at most 12 significant digits otherwise
  (``0.333333333333``); ``None`` when the query holds no arithmetic;
- ``calculation_steps``: a list of lines, ``"Expression: 15% of 240"`` first and
  ``"Result: 36"`` last (or one line saying no arithmetic was found).

A refused or impossible calculation (``9**9**9``, ``1/0``) is an error in the report, never
a result string: a ``CalculationError`` naming the expression and the guard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from sof_calculator.errors import CalculationError, CalculationSyntaxError
from sof_core import UIF, BaseToolModule

if TYPE_CHECKING:
    from sof_calculator.evaluator import Evaluation

#: ``calculation_steps`` when the query holds no arithmetic.
NO_EXPRESSION = "No arithmetic expression found in the query."


def _words(*words: str) -> str:
    """Whole words (not letters of a longer word), a space in a phrase standing for any."""
    spelled = "|".join(w.replace(" ", r"\s+") for w in words)
    return rf"(?<![a-z])(?:{spelled})(?![a-z])"


# What the extractor reads (sof_calculator/extractor.py: _SYMBOLS, _PHRASES, _PHRASE_START,
# and the evaluator's FUNCTIONS and CONSTANTS).
#: An operand: a number (all its digits, so a reason quotes "20%", not "0%"), a constant.
_OPERAND = rf"(?:(?<![\d.,])\.?\d[\d.,]*|\u03c0|{_words('pi', 'tau', 'e')})"
#: What may stand between an operator and its operand: signs, "(" and "negative".
_SIGNS = rf"(?:[-+\u2212(]\s*|{_words('negative')}\s*)*"
#: Functions called with parentheses: "max(3, 9)", "round(2.5)".
_CALLED = _words(
    "sqrt", "cbrt", "log", "log10", "log2", "ln", "exp", "sin", "cos", "tan", "asin", "acos",
    "atan", "degrees", "radians", "round", "min", "max", "abs", "floor", "ceil", "factorial",
    "percent",
)
#: Functions also written without parentheses: "square root of 144", "sqrt 16". Names that
#: are everyday words too ("round 2", "floor 3", "max 5 people") count only when called.
_NAMED = _words(
    "square root", "cube root", "natural logarithm", "natural log", "logarithm", "log10",
    "log2", "log", "ln", "sqrt", "cbrt", "absolute value", "factorial", "sine", "cosine",
    "tangent", "sin", "cos", "tan", "asin", "acos", "atan",
)
#: Operators between two operands: "5 + -3", "17 // 5", "10 mod 3", "2 raised to 10".
_BINARY = (
    r"(?:\*\*|//|[-+*/^%\u00d7\u00b7\u22c5\u00f7\u2212]|"
    + _words("plus", "minus", "times", "x", "over", "mod", "modulo", "multiplied by",
             "divided by", "raised to the power of", "raised to the power", "raised to",
             "to the power of", "to the power")
    + ")"
)
#: Operators after one operand: "15%", "5!", "2\u00b2", "9 squared", "5 factorial"; and a
#: constant or a root right after a number is multiplied by it ("2pi", "2\u221a2").
_POSTFIX = (
    r"(?:[%\u00b2\u00b3]|(?<=[\d)])!|"
    + _words("percent", "per cent", "squared", "cubed", "factorial", "pi", "tau")
    + r"|\u03c0|\u221a)"
)
#: The start of a right operand: an operand, a function, a root.
_RIGHT = rf"(?:{_OPERAND}|{_CALLED}|{_NAMED}|\u221a)"
_TRIGGERS: tuple[str, ...] = (
    # "2+2", "5 + -3", "2 * pi", "10 mod 3", "2 raised to 10", "(2 + 3) * 4"
    rf"{_OPERAND}\)*\s*{_BINARY}\s*{_SIGNS}{_RIGHT}",
    # "15% of 240", "5!", "2\u00b2", "pi squared", "2pi"
    rf"{_OPERAND}\)*\s*{_POSTFIX}",
    # "max(3, 9)", "sqrt(pi)", "absolute value of -5", "log2 of 8", "\u221a16"
    rf"(?:{_CALLED}\s*\(|{_NAMED}\s*(?:of(?![a-z]))?|\u221a)\s*{_SIGNS}{_OPERAND}",
    # "add 3 and 4", "what is the sum of 3 and 4?": a phrase word among the first ones
    r"^\W*(?:[a-z]+\W+){0,8}?(?:add|subtract|take|multiply|divide|square|cube|sum|"
    r"difference|product|quotient|average|mean)\W+\D{0,30}\d",
)


class CalculatorTool(BaseToolModule):
    """Calculates the arithmetic in ``input_query``, or in ``calculation_expression`` when a
    previous skill (or SAM code) put one there."""

    skill_name = "CalculatorTool"
    skill_version = "1.0.0"
    skill_description = (
        "Calculates the arithmetic in the query: + - * / // % **, percentages, roots, "
        "powers, logarithms, trigonometry, factorials; exact where possible."
    )
    skill_category = "tool"
    required_inputs = ["input_query"]
    optional_inputs = ["calculation_expression"]
    output_keys = {"calculation_result": None, "calculation_steps": list}
    requires_external_access = False
    can_run_parallel = True
    estimated_execution_time = 0.01
    #: Tool limits (docs/security.md): no permissions (it only computes), killed after 5 s
    #: (the guards answer in milliseconds; this is the backstop), at most 64 KiB written.
    permissions: ClassVar[tuple[str, ...]] = ()
    max_execution_time = 5.0
    max_output_bytes = 65_536

    #: For the rules planner (issue 12): regular expressions (case-insensitive), each an
    #: operation of the extractor next to its operand, so they match the arithmetic it reads
    #: and not prose that merely holds a number; ``can_handle_query`` is the exact test.
    #: Built from the same words and symbols as ``sof_calculator.extractor`` (kept as strings
    #: here: loading the plugin imports neither the extractor nor the evaluator), and
    #: tests/test_calculator_planner_triggers.py checks every entry of its tables against them.
    triggers: ClassVar[tuple[str, ...]] = _TRIGGERS

    #: What ``sof plugins check`` runs the tool on: a query with arithmetic in it.
    contract_sample: ClassVar[dict[str, str]] = {"input_query": "What is 15% of 240?"}

    def can_handle_query(self, query: str) -> bool:
        """SAM's method: whether ``query`` holds arithmetic this tool would calculate, or
        arithmetic it refuses to read ("1,5 + 2,5": the tool then reports why, rather than
        the query being answered without it)."""
        from sof_calculator.extractor import extract

        try:
            return extract(query) is not None
        except CalculationSyntaxError:
            return True
        except CalculationError:
            return False

    def execute(self, uif: UIF) -> UIF:
        # The extractor's tables and patterns and the evaluator load with the first
        # calculation, not with the plugin: most processes never calculate anything.
        from sof_calculator.evaluator import evaluate
        from sof_calculator.extractor import extract, rewrite

        given = uif.intermediate_data.get("calculation_expression")
        text = ""
        try:
            if given is not None:
                if not isinstance(given, str):
                    raise CalculationSyntaxError(
                        f"calculation_expression must be text, got {type(given).__name__}"
                    )
                text, expression = given, rewrite(given) or given
            else:
                found = extract(uif.input_query)
                if found is None:
                    return self._nothing_found(uif)
                text, expression = found.text, found.expression
            evaluation = evaluate(expression)
        except CalculationError as exc:
            # Name the tool, and the expression as the user wrote it.
            raise type(exc)(exc.reason, text or exc.expression, exc.hint,
                            self.skill_name) from None
        self._write(uif, text, evaluation)
        return uif

    def _write(self, uif: UIF, text: str, evaluation: Evaluation) -> None:
        steps = [f"Expression: {text}"]
        if evaluation.expression.replace(" ", "") != text.replace(" ", ""):
            steps.append(f"Evaluated as: {evaluation.expression}")
        steps.extend(evaluation.steps)
        if evaluation.exact_text:
            steps.append(f"Exact result: {evaluation.exact_text}")
        steps.append(f"Result: {evaluation.text}")
        result = evaluation.readable
        uif.intermediate_data["calculation_result"] = result
        uif.intermediate_data["calculation_steps"] = steps
        uif.set_skill_output(self.skill_name, {
            "status": "calculated",
            "expression": text,
            "evaluated": evaluation.expression,
            "result": result,
            "exact": evaluation.exact,
        })
        uif.add_log_entry(f"calculated {text} = {evaluation.text}", self.skill_name)

    def _nothing_found(self, uif: UIF) -> UIF:
        uif.intermediate_data["calculation_result"] = None
        uif.intermediate_data["calculation_steps"] = [NO_EXPRESSION]
        uif.set_skill_output(self.skill_name, {"status": "no_expression",
                                               "reason": NO_EXPRESSION})
        uif.add_log_entry(NO_EXPRESSION, self.skill_name)
        return uif
