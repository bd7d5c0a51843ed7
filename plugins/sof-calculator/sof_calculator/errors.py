"""Errors the calculator raises, all under ``sof_core.SkillExecutionError``.

    SkillExecutionError
    └── CalculationError ............. the expression was found but cannot be calculated
        ├── CalculationSyntaxError ... it is not an arithmetic expression (explicit input)
        ├── CalculationNotAllowed .... it uses something outside the whitelist (names,
        │                              attributes, calls, lambdas, comprehensions, strings)
        ├── CalculationLimitError .... a guard refused it (input length, nesting, result
        │                              size, exponent, factorial)
        └── CalculationMathError ..... arithmetic itself fails (division by zero, domain,
                                       overflow of a floating-point result)

A query with no arithmetic in it is not an error: the tool writes ``calculation_result =
None`` and says why in ``calculation_steps``.
"""

from __future__ import annotations

from typing import Any

from sof_core import SkillExecutionError

#: The name the errors carry when the evaluator runs inside the tool.
TOOL_NAME = "CalculatorTool"


class CalculationError(SkillExecutionError):
    """``expression`` could not be calculated; ``reason`` says why, ``hint`` what to do."""

    def __init__(self, reason: str, expression: str = "", hint: str = "",
                 skill: str | None = None) -> None:
        self.reason = reason
        self.expression = expression
        self.hint = hint
        shown = expression if len(expression) <= 80 else expression[:77] + "..."
        message = f"cannot calculate {shown!r}: {reason}" if expression else reason
        if hint:
            message += f"; {hint}"
        super().__init__(message, skill)

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross the isolation worker's pipe pickled; keep every field.
        return (type(self), (self.reason, self.expression, self.hint, self.skill))

    def for_skill(self, skill: str) -> CalculationError:
        """The same error naming ``skill`` (the evaluator does not know which tool runs it)."""
        return type(self)(self.reason, self.expression, self.hint, skill)


class CalculationSyntaxError(CalculationError):
    """The text is not an arithmetic expression the calculator can read."""


class CalculationNotAllowed(CalculationError):
    """The expression uses a construct outside the whitelist (never evaluated)."""


class CalculationLimitError(CalculationError):
    """A guard refused the expression before it could use time or memory."""


class CalculationMathError(CalculationError):
    """The arithmetic has no (real, finite) answer: division by zero, a domain error."""


__all__ = [
    "TOOL_NAME",
    "CalculationError",
    "CalculationLimitError",
    "CalculationMathError",
    "CalculationNotAllowed",
    "CalculationSyntaxError",
]
