"""Built-in planners: a plan is a list of skill names, however it was chosen.

``static`` returns the configured default plan (the seed's
``["MemoryRetrievalSkill", "ResponseGenerationSkill"]``); ``goal`` asks the graph for the
minimal set of registered skills that produce ``final_response``. Plugins add more planners
(rules, LLM) through ``sof_register_planners``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable


class CoordinatorEngine(Protocol):
    """What a planner may use of the engine it plans for (``CoordinatorEngine`` has it)."""

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


@runtime_checkable
class Planner(Protocol):
    name: str

    def plan(self, query: str, engine: CoordinatorEngine) -> list[str]: ...


class StaticPlanner:
    """Always the configured ``default_plan``."""

    name = "static"

    def plan(self, query: str, engine: CoordinatorEngine) -> list[str]:
        return list(engine.config.default_plan)


class GoalPlanner:
    """The minimal plan that produces ``final_response``, optional inputs included."""

    name = "goal"

    def __init__(self, goals: tuple[str, ...] = ("final_response",)) -> None:
        self.goals = goals

    def plan(self, query: str, engine: CoordinatorEngine) -> list[str]:
        return engine.resolve_goal(self.goals, include_optional=True)
