"""SOF's own planners, registered through the same hook as any third-party planner."""

from __future__ import annotations

from typing import Any

from sof_core.planning.llm import LLMPlanner
from sof_core.planning.planners import GoalPlanner, StaticPlanner
from sof_core.planning.rules import RulesPlanner
from sof_core.plugins import hookimpl


@hookimpl
def sof_register_planners() -> list[Any]:
    return [StaticPlanner(), GoalPlanner(), RulesPlanner(), LLMPlanner()]
