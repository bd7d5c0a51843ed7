"""Planning: which skills answer a query (docs/planning.md).

``planners`` (the contract, static, goal), ``rules`` (the default), ``llm``, ``triggers``
(what skills declare for the rules planner), ``optimise`` (completing, pruning, ordering,
staging), ``cache`` (the plan cache and its SQLite store), ``service`` (``Planning``: one
engine's planners, cache and metrics), ``adapt`` (adjusting a plan while it runs) and
``result`` (``PlanResult``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_core._lazy import lazy_exports

if TYPE_CHECKING:
    from sof_core.planning.llm import LLMPlanError, LLMPlanner
    from sof_core.planning.planners import GoalPlanner, Planner, PlanningContext, StaticPlanner
    from sof_core.planning.result import PlanResult
    from sof_core.planning.rules import RulesPlanner

_LAZY = {
    "LLMPlanError": "sof_core.planning.llm",
    "LLMPlanner": "sof_core.planning.llm",
    "GoalPlanner": "sof_core.planning.planners",
    "Planner": "sof_core.planning.planners",
    "PlanningContext": "sof_core.planning.planners",
    "StaticPlanner": "sof_core.planning.planners",
    "PlanResult": "sof_core.planning.result",
    "RulesPlanner": "sof_core.planning.rules",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "GoalPlanner",
    "LLMPlanError",
    "LLMPlanner",
    "PlanResult",
    "Planner",
    "PlanningContext",
    "RulesPlanner",
    "StaticPlanner",
]
