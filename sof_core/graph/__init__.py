"""The plan as a graph: ``build`` (the networkx DAG of declared inputs and outputs, cycles,
stages, goals), ``validate`` (``ValidationProblem`` and the checks that make them) and
``compile`` (``CompiledPlan``: the stages and steps a run walks).

Names resolve on first use (``sof_core._lazy``): importing the package imports neither
networkx nor any of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_core._lazy import lazy_exports

if TYPE_CHECKING:
    from sof_core.graph.build import (
        SkillGraph,
        build_graph,
        find_cycles,
        parallel_stages,
        plan_order,
        resolve_goal,
    )
    from sof_core.graph.compile import CompiledPlan, Step, compile_plan
    from sof_core.graph.validate import ValidationProblem

_LAZY = {
    "SkillGraph": "sof_core.graph.build",
    "build_graph": "sof_core.graph.build",
    "find_cycles": "sof_core.graph.build",
    "parallel_stages": "sof_core.graph.build",
    "plan_order": "sof_core.graph.build",
    "resolve_goal": "sof_core.graph.build",
    "CompiledPlan": "sof_core.graph.compile",
    "Step": "sof_core.graph.compile",
    "compile_plan": "sof_core.graph.compile",
    "ValidationProblem": "sof_core.graph.validate",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "CompiledPlan",
    "SkillGraph",
    "Step",
    "ValidationProblem",
    "build_graph",
    "compile_plan",
    "find_cycles",
    "parallel_stages",
    "plan_order",
    "resolve_goal",
]
