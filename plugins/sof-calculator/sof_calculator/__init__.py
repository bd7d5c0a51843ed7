"""sof-calculator: ``CalculatorTool``, arithmetic found in a query, evaluated without
``eval`` over a whitelist with size guards.

Public surface: the tool, the extractor and evaluator functions, their results and errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_calculator.errors import (
    CalculationError,
    CalculationLimitError,
    CalculationMathError,
    CalculationNotAllowed,
    CalculationSyntaxError,
)
from sof_calculator.skill import NO_EXPRESSION, CalculatorTool
from sof_core import lazy_exports

if TYPE_CHECKING:
    from sof_calculator.evaluator import Evaluation, evaluate
    from sof_calculator.extractor import Extraction, extract, rewrite

#: Names imported on first use: the extractor and evaluator (their tables, patterns and
#: dataclasses) are needed to calculate, not to load the plugin, which every process does.
_LAZY = {
    "Evaluation": "sof_calculator.evaluator",
    "evaluate": "sof_calculator.evaluator",
    "Extraction": "sof_calculator.extractor",
    "extract": "sof_calculator.extractor",
    "rewrite": "sof_calculator.extractor",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


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
