"""The ``calculator`` plugin: registers ``CalculatorTool`` as a tool.

Entry point: ``[project.entry-points."sof.plugins"] calculator = "sof_calculator.plugin"``.
"""

from __future__ import annotations

from typing import Any

from sof_calculator.skill import CalculatorTool
from sof_core import hookimpl


@hookimpl
def sof_register_tools() -> list[Any]:
    return [CalculatorTool]
