"""The rules planner (the default): the query meets what the registered skills declare.

Every registered skill that declares ``triggers``, ``can_handle_query`` or
``planning_score`` (see ``sof_core.planning.triggers``) is scored on the query; those at or
above the threshold (``planner_options.rules.threshold``, default 0.5) are chosen. When none
is, the configured ``default_plan`` is the starting point instead. Then goal-driven
resolution adds what the chosen skills need: the producer of ``final_response``, producers
of their required inputs, and a vetting skill for untrusted output (the taint rule). The
optimiser finally prunes, orders and stages the plan. Each skill in the result says why it
is there, so a new plugin takes part without anyone editing the planner.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from sof_core.errors import ConfigError
from sof_core.planning.optimise import DEFAULT_GOALS, complete, optimise, producers_of
from sof_core.planning.planners import PlanningContext, planner_options
from sof_core.planning.result import PlanResult
from sof_core.planning.triggers import NO_MATCH, Signals, trigger_problems
from sof_core.plugins.loader import contested_message
from sof_core.security.policy import ToolPolicy

log = logging.getLogger("sof.planning")
#: The contested skills a warning was logged for (once per process each).
_warned_contested: set[str] = set()

DEFAULT_THRESHOLD = 0.5


def rules_settings(config: Any) -> tuple[float, tuple[str, ...]]:
    """``(threshold, goals)`` from ``planner_options.rules``; ``ConfigError`` naming the
    option when one is malformed."""
    options = planner_options(config, "rules")
    unknown = sorted(set(options) - {"threshold", "goals"})
    if unknown:
        raise ConfigError(
            f"unknown option(s) {unknown} in planner_options.rules; known: threshold, goals",
            key="planner_options",
        )
    threshold = options.get("threshold", DEFAULT_THRESHOLD)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
        0 < threshold <= 1
    ):
        raise ConfigError(
            f"planner_options.rules.threshold must be a number in (0, 1], got {threshold!r}",
            key="planner_options",
        )
    goals = options.get("goals", list(DEFAULT_GOALS))
    if isinstance(goals, str) or not goals or not all(isinstance(g, str) for g in goals):
        raise ConfigError(
            f"planner_options.rules.goals must be a list of key names, got {goals!r}",
            key="planner_options",
        )
    return float(threshold), tuple(goals)


@dataclass(frozen=True)
class _Catalogue:
    """The skills the rules planner may choose (the policy's refusals left out), what each
    declares, and who produces each key."""

    specs: dict[str, Any]
    signals: tuple[Signals, ...]
    producers: dict[str, list[str]]
    denied: dict[str, str]
    #: Skills whose ``triggers`` hold something that can never match, with why.
    broken: dict[str, str]

    @classmethod
    def build(cls, registry: Any, tool_policy: Any) -> _Catalogue:
        entries = list(registry.skills())
        policy = ToolPolicy(tool_policy) if tool_policy is not None else ToolPolicy()
        denied = {d.skill: d.message for d in policy.denials(entries)}
        specs: dict[str, Any] = {}
        signals: list[Signals] = []
        broken: dict[str, str] = {}
        for entry in entries:
            spec = entry.spec
            if spec.name in denied:  # never planned: the policy would refuse the plan
                continue
            specs[spec.name] = spec
            problems = trigger_problems(spec.skill_class)
            if problems:
                broken[spec.name] = "; ".join(problems[:3])
            found = Signals.of(spec.name, spec.skill_class, entry.instance, entry.plugin)
            if found is not None:
                signals.append(found)
        return cls(specs, tuple(signals), producers_of(specs), denied, broken)


class RulesPlanner:
    """Chooses skills by their declared triggers, predicates and scores."""

    name = "rules"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._catalogue: tuple[Any, ...] | None = None

    def catalogue(self, registry: Any, tool_policy: Any) -> _Catalogue:
        """The registered skills' declarations, built once per registry version and tool
        policy (so a query costs the trigger searches, not the look-ups)."""
        policy_key = json.dumps(tool_policy, sort_keys=True, default=str)
        key = (id(registry), registry.version, policy_key)
        memo = self._catalogue
        if memo is not None and memo[0] == key:
            return memo[1]  # type: ignore[no-any-return]
        built = _Catalogue.build(registry, tool_policy)
        with self._lock:
            self._catalogue = (key, built)
        return built

    def plan(self, query: str, context: PlanningContext) -> PlanResult:
        config = context.config
        threshold, goals = rules_settings(config)
        catalogue = self.catalogue(context.registry, getattr(config, "tool_policy", None))
        specs = catalogue.specs
        scores: dict[str, float] = {}
        seed: dict[str, str] = {}
        notes: dict[str, str] = dict(catalogue.denied)
        unanswered = False
        for signals in catalogue.signals:
            score = signals.score(query)
            if score is NO_MATCH:
                continue
            unanswered = unanswered or score.unanswered
            scores[signals.name] = score.value
            if score.value >= threshold:
                seed[signals.name] = score.reason or f"scored {score.value:.2f}"
            elif score.reason:
                notes[signals.name] = score.reason
        for name, why in catalogue.broken.items():
            if name not in seed:  # said whether or not its other triggers matched
                notes[name] = f"{notes[name]}; {why}" if name in notes else why
        default_plan = list(config.default_plan)
        if not specs.keys() >= set(default_plan):
            _note_contested(context.registry, default_plan, specs, notes)
        reasoning = ""
        if not seed:
            # A trigger may have matched and the skill's own check then said no (its
            # ``not chosen`` note says which): "no trigger matched" would send the reader
            # to the wrong place.
            why = ("no registered skill's trigger matched the query" if not scores else
                   "no skill was chosen: " + ", ".join(sorted(scores))
                   + " matched a trigger but declined (see not chosen)")
            reasoning = f"{why}; starting from default_plan"
            for name in default_plan:
                if name in specs:
                    seed[name] = f"listed in default_plan ({why})"
        plan, reasons, changes = complete(
            seed, specs, goals=goals, preferred=default_plan,
            require_vetting=bool(getattr(config, "require_vetting", True)),
            producers=catalogue.producers,
        )
        plan, stages, optimised = optimise(plan, specs, goals=goals, report_order=False)
        if not reasoning:
            chosen = [n for n in plan if n in seed]
            reasoning = ("chosen by their declarations: " + ", ".join(chosen)) if chosen else (
                "the skills matched by the query feed nothing on the way to "
                + ", ".join(goals))
        return PlanResult(
            plan=plan,
            planner=self.name,
            reasons={name: reasons[name] for name in plan},
            reasoning=reasoning,
            stages=stages,
            changes=changes + optimised,
            scores={n: v for n, v in scores.items() if v > 0},  # matches only
            skipped={n: why for n, why in notes.items() if n not in reasons},
            cacheable=not unanswered,
        )


def _note_contested(registry: Any, default_plan: list[str], specs: dict[str, Any],
                    notes: dict[str, str]) -> None:
    """The ``default_plan`` skills left out because several plugins offer them and no
    setting chose one: said in the plan's ``skipped`` and, once per process each, as a
    warning, instead of a plan that silently lacks them."""
    contested = getattr(registry, "contested", None)
    offered = contested() if contested is not None else {}
    for name in default_plan:
        plugins = offered.get(name) if name not in specs else None
        if not plugins:
            continue
        message = contested_message({name: plugins})
        notes[name] = f"left out of default_plan: {message}"
        if name not in _warned_contested:
            _warned_contested.add(name)
            log.warning("planning without %s: %s", name, message)
