"""sof-calculator: ``CalculatorTool``, arithmetic found in a query, evaluated without
``eval`` over a whitelist with size guards.

Public surface: the tool, the extractor and evaluator functions, their results and errors.
"""

from __future__ import annotations

from sof_calculator.errors import (
    CalculationError,
    CalculationLimitError,
    CalculationMathError,
    CalculationNotAllowed,
    CalculationSyntaxError,
)
from sof_calculator.evaluator import Evaluation, evaluate
from sof_calculator.extractor import Extraction, extract, rewrite
from sof_calculator.skill import NO_EXPRESSION, CalculatorTool

__version__ = "0.1.0"

__all__ = [
    "NO_EXPRESSION",
    "CalculationError",
    "CalculationLimitError",
    "CalculationMathError",
    "CalculationNotAllowed",
    "CalculationSyntaxError",
    "CalculatorTool",
    "Evaluation",
    "Extraction",
    "__version__",
    "evaluate",
    "extract",
    "rewrite",
]
