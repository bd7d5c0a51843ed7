"""Running plans: ``coordinator`` (``CoordinatorEngine``), ``run`` (one run's walk, deadlines
and records), the executors, isolation, the watchdog, ``report`` (``ExecutionReport``,
``SkillResult``) and ``batch`` (``run_batch``, ``arun_batch``).

Names resolve on first use (``sof_core._lazy``): importing one module of the package does
not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_core._lazy import lazy_exports

if TYPE_CHECKING:
    from sof_core.execution.batch import (
        BatchItem,
        BatchResult,
        BatchSummary,
        arun_batch,
        run_batch,
    )
    from sof_core.execution.coordinator import CoordinatorEngine
    from sof_core.execution.report import ExecutionReport, SkillResult

_LAZY = {
    "BatchItem": "sof_core.execution.batch",
    "BatchResult": "sof_core.execution.batch",
    "BatchSummary": "sof_core.execution.batch",
    "arun_batch": "sof_core.execution.batch",
    "run_batch": "sof_core.execution.batch",
    "CoordinatorEngine": "sof_core.execution.coordinator",
    "ExecutionReport": "sof_core.execution.report",
    "SkillResult": "sof_core.execution.report",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "BatchItem",
    "BatchResult",
    "BatchSummary",
    "CoordinatorEngine",
    "ExecutionReport",
    "SkillResult",
    "arun_batch",
    "run_batch",
]
