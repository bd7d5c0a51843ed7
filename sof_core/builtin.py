"""SOF's own executors and planners, registered through the same hooks as any plugin."""

from __future__ import annotations

from typing import Any

from sof_core.executors import AsyncioExecutor, SequentialExecutor, ThreadExecutor
from sof_core.markers import hookimpl
from sof_core.planners import GoalPlanner, StaticPlanner


@hookimpl
def sof_register_executors() -> list[Any]:
    return [SequentialExecutor, ThreadExecutor, AsyncioExecutor]


@hookimpl
def sof_register_planners() -> list[Any]:
    return [StaticPlanner(), GoalPlanner()]
