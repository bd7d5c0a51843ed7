"""The planner contract, and the two simplest planners.

A planner is any object with a ``name`` and one method::

    def plan(self, query: str, context: PlanningContext) -> Sequence[str] | PlanResult

registered through ``sof_register_planners`` and chosen by the ``planner`` setting. It
returns the skill names to run (a ``PlanResult`` may add why each is there); SOF validates
the plan, caches it, and falls back to the rules planner when it cannot be used. The
``context`` gives the live configuration (``context.config``: the settings of this query,
not of when the engine started), the registry (``context.registry``) and the active profile
(``context.profile``), plus ``resolve_goal`` and ``validate_plan``. ``CoordinatorEngine``
itself satisfies the protocol (without ``profile``), so a planner can be called with an
engine too.

``static`` returns the configured ``default_plan`` (the seed's
``["MemoryRetrievalSkill", "ResponseGenerationSkill"]``); ``goal`` the minimal set of
registered skills that produces ``final_response``. The ``rules`` and ``llm`` planners live
in their own modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from sof_core.planning.result import PlanResult


class PlanningContext(Protocol):
    """What a planner may use (``CoordinatorEngine`` has all of it but ``profile``)."""

    @property
    def config(self) -> Any: ...

    @property
    def registry(self) -> Any: ...

    def resolve_goal(
        self,
        goals: Iterable[str],
        *,
        available: Iterable[str] = (),
        include_optional: bool = False,
        prefer: Mapping[str, str] | None = None,
    ) -> list[str]: ...

    def validate_plan(self, plan: Sequence[str], available: Iterable[str] = ()) -> list[Any]: ...


#: The name used before planners took a context rather than an engine.
CoordinatorEngine = PlanningContext


@runtime_checkable
class Planner(Protocol):
    """One documented signature: ``plan(query, context) -> list of skill names | PlanResult``."""

    name: str

    def plan(self, query: str, context: PlanningContext) -> Sequence[str] | PlanResult: ...


def planner_options(config: Any, name: str) -> dict[str, Any]:
    """The ``planner_options`` of planner ``name`` (empty when none are configured)."""
    options = getattr(config, "planner_options", None) or {}
    return dict(options.get(name, {}))


class StaticPlanner:
    """Always the configured ``default_plan``, as configured (read per query)."""

    name = "static"

    def plan(self, query: str, context: PlanningContext) -> PlanResult:
        plan = list(context.config.default_plan)
        return PlanResult(plan=plan, planner=self.name,
                          reasons=dict.fromkeys(plan, "listed in default_plan"))


class GoalPlanner:
    """The minimal plan that produces ``final_response``, optional inputs included."""

    name = "goal"

    def __init__(self, goals: tuple[str, ...] = ("final_response",)) -> None:
        self.goals = goals

    def plan(self, query: str, context: PlanningContext) -> PlanResult:
        plan = context.resolve_goal(self.goals, include_optional=True)
        goals = ", ".join(self.goals)
        return PlanResult(plan=plan, planner=self.name,
                          reasons=dict.fromkeys(plan, f"on the way to {goals}"))
