"""``PlanResult``: a plan with the story of how it was made.

A planner may return a plain list of skill names; SOF turns it into a ``PlanResult`` so that
``sof plan``, the run's report and the metrics can say which planner made the plan, whether
it came from the cache, why each skill is in it, what the optimiser changed and every
fallback on the way. A ``PlanResult`` iterates over its skill names, so code that wants only
the list (``list(result)``) keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The JSON shape of ``PlanResult.to_dict`` (``sof plan --json``, the report's "planning").
PLAN_SCHEMA = "sof.plan/1"


@dataclass
class Fallback:
    """One planner that could not produce a usable plan, and what was used instead."""

    planner: str
    to: str
    reason: str
    #: The plugin that registered the planner (None where not known: older cached plans).
    plugin: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"planner": self.planner, "to": self.to, "reason": self.reason,
                "plugin": self.plugin}


@dataclass
class Change:
    """One change the optimiser made to a plan (``action``: pruned, deduplicated,
    reordered, added), naming the skill and why."""

    action: str
    skill: str
    why: str

    def to_dict(self) -> dict[str, str]:
        return {"action": self.action, "skill": self.skill, "why": self.why}


@dataclass
class PlanResult:
    """A plan (skill names in a runnable order) and how it was chosen."""

    plan: list[str]
    planner: str
    #: Why each skill is in the plan, by skill name (every planned skill has an entry).
    reasons: dict[str, str] = field(default_factory=dict)
    #: The planner's own summary (the LLM planner's ``reasoning``), if any.
    reasoning: str = ""
    #: Groups of skills that may run together, in dependency order.
    stages: list[list[str]] = field(default_factory=list)
    cache_hit: bool = False
    fallbacks: list[Fallback] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    #: Scores of the skills a scoring planner considered (chosen or not), by skill name.
    scores: dict[str, float] = field(default_factory=dict)
    #: Skills considered and left out, with why (a trigger matched but the predicate said
    #: no, the tool policy denies it, ...).
    skipped: dict[str, str] = field(default_factory=dict)
    #: Seconds spent planning (a cache hit: the lookup only).
    duration: float = 0.0
    #: False for a plan made without hearing from every skill (a plugin's predicate hung):
    #: it is used for this query and not cached. Not part of ``to_dict``.
    cacheable: bool = True

    def __iter__(self) -> Iterator[str]:
        return iter(self.plan)

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> str:
        return self.plan[index]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``sof plan --json`` prints this, the run's JSON holds it as
        ``planning``."""
        return {
            "schema": PLAN_SCHEMA,
            "plan": list(self.plan),
            "stages": [list(s) for s in self.stages],
            "planner": self.planner,
            "cache_hit": self.cache_hit,
            "reasons": dict(self.reasons),
            "reasoning": self.reasoning,
            "fallbacks": [f.to_dict() for f in self.fallbacks],
            "changes": [c.to_dict() for c in self.changes],
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "skipped": dict(self.skipped),
            "duration_ms": round(self.duration * 1000, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanResult:
        """The inverse of ``to_dict`` (the persistent plan cache stores plans this way)."""
        return cls(
            plan=[str(s) for s in data.get("plan", [])],
            planner=str(data.get("planner", "")),
            reasons={str(k): str(v) for k, v in dict(data.get("reasons", {})).items()},
            reasoning=str(data.get("reasoning", "")),
            stages=[[str(s) for s in stage] for stage in data.get("stages", [])],
            cache_hit=bool(data.get("cache_hit", False)),
            fallbacks=[Fallback(f["planner"], f["to"], f["reason"], f.get("plugin"))
                       for f in data.get("fallbacks", [])],
            changes=[Change(c["action"], c["skill"], c["why"]) for c in data.get("changes", [])],
            scores={str(k): float(v) for k, v in dict(data.get("scores", {})).items()},
            skipped={str(k): str(v) for k, v in dict(data.get("skipped", {})).items()},
        )

    def copy(self, **changes: Any) -> PlanResult:
        """A copy whose lists can be changed without touching this one (cached results).

        Field by field, not through ``to_dict``: every cache hit makes one, and the JSON
        round trip cost more than the lookup (and rounded the scores)."""
        result = PlanResult(
            plan=list(self.plan),
            planner=self.planner,
            reasons=dict(self.reasons),
            reasoning=self.reasoning,
            stages=[list(stage) for stage in self.stages],
            cache_hit=self.cache_hit,
            fallbacks=[Fallback(f.planner, f.to, f.reason, f.plugin) for f in self.fallbacks],
            changes=[Change(c.action, c.skill, c.why) for c in self.changes],
            scores=dict(self.scores),
            skipped=dict(self.skipped),
            duration=self.duration,
            cacheable=self.cacheable,
        )
        for key, value in changes.items():
            setattr(result, key, value)
        return result


def as_plan_result(value: Any, planner: str) -> PlanResult:
    """A planner's return value as a ``PlanResult``; ``TypeError`` naming the planner for
    anything that is not one or a sequence of skill names."""
    if isinstance(value, PlanResult):
        if not value.planner:
            value.planner = planner
        return value
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(
            f"planner {planner!r} returned {type(value).__name__}; a planner's plan() returns "
            "a list of skill names or a PlanResult"
        )
    names = list(value)
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(
            f"planner {planner!r} returned non-string skill names {bad[:3]!r}; a plan is a "
            "list of skill names"
        )
    return PlanResult(plan=names, planner=planner,
                      reasons=dict.fromkeys(names, f"chosen by planner {planner!r}"))
