"""What a skill declares for the rules planner, and how a query is scored against it.

A skill takes part in rules planning by declaring any of these on its class (none is
required; a skill that declares none is only planned when something needs its outputs):

* ``triggers``: regular expressions (matched case-insensitively with ``re.search``); a
  match suggests the skill;
* ``can_handle_query(self, query) -> bool``: a predicate (SAM's method name); with
  ``triggers`` it is asked only when a trigger matched, so the patterns stay a cheap
  pre-filter and the predicate the exact test;
* ``planning_score(self, query) -> float``: a score from 0 to 1; it wins over the other two.

A declaration that raises or returns nonsense scores 0, with the reason in the plan's
explanation: one broken skill never stops planning.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: The score a matching trigger or a true predicate gives.
MATCH_SCORE = 1.0
_SHOWN = 40


@dataclass(frozen=True)
class Score:
    """A skill's score for one query, and why (``reason`` is empty for 0 without a cause)."""

    value: float
    reason: str


#: The score of a skill whose triggers do not match (shared: most skills, most queries).
NO_MATCH = Score(0.0, "")


@lru_cache(maxsize=4096)
def _compiled(skill: str, patterns: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Each valid pattern compiled once per process; a pattern that does not compile is
    left out (``trigger_problems`` reports it)."""
    out: list[tuple[str, re.Pattern[str]]] = []
    for pattern in patterns:
        try:
            out.append((pattern, re.compile(pattern, re.IGNORECASE)))
        except re.error:
            continue
    return tuple(out)


def declared_triggers(skill_class: type[Any]) -> tuple[str, ...]:
    """The skill's ``triggers`` as a tuple of strings (a single string counts as one)."""
    value = getattr(skill_class, "triggers", ())
    if isinstance(value, str):
        return (value,)
    try:
        return tuple(p for p in value if isinstance(p, str))
    except TypeError:
        return ()


def trigger_problems(skill_class: type[Any]) -> list[str]:
    """What in ``triggers`` can never match: a pattern that does not compile (with the
    regex error), an entry that is not a string, a value that is not a sequence."""
    value = getattr(skill_class, "triggers", ())
    if value is None:
        return []
    if isinstance(value, str):
        value = (value,)
    try:
        entries = list(value)
    except Exception:  # not iterable (or iterating it raises)
        return [f"triggers is {_clip(repr(value))}, not a sequence of regular expressions"]
    problems = []
    for pattern in entries:
        if not isinstance(pattern, str):
            problems.append(f"trigger {_clip(repr(pattern))} is not a string (a regular "
                            "expression)")
            continue
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"trigger {_clip(pattern)!r} is not a regular expression ({exc})")
    return problems


def _own(obj: Any, name: str) -> Any:
    """``obj.name`` when the skill defines it (not inherited from SOF's or SAM's base)."""
    method = getattr(obj, name, None)
    return method if callable(method) else None


def declares_signals(skill_class: type[Any]) -> bool:
    """Whether the skill declares anything the rules planner scores."""
    return bool(declared_triggers(skill_class)) or any(
        callable(getattr(skill_class, n, None)) for n in ("can_handle_query", "planning_score")
    )


@dataclass(frozen=True)
class Signals:
    """What one registered skill declares, looked up once per registry version."""

    name: str
    patterns: tuple[re.Pattern[str], ...]
    predicate: Any
    scorer: Any

    @classmethod
    def of(cls, name: str, skill_class: type[Any], instance: Any) -> Signals | None:
        """The skill's declarations, or None when it declares nothing to score."""
        target = instance if instance is not None else skill_class
        scorer = _own(target, "planning_score") if callable(
            getattr(skill_class, "planning_score", None)) else None
        patterns = declared_triggers(skill_class)
        predicate = _own(target, "can_handle_query") if callable(
            getattr(skill_class, "can_handle_query", None)) else None
        if scorer is None and not patterns and predicate is None:
            return None
        compiled = tuple(c for _, c in _compiled(name, patterns))
        if patterns and not compiled and predicate is None and scorer is None:
            return None  # only broken patterns: nothing can ever match
        return cls(name, compiled, predicate, scorer)

    def score(self, query: str) -> Score:
        if self.scorer is not None:
            return _call_score(self.name, self.scorer, query)
        return _match(self.patterns, self.predicate, query)


def score_skill(name: str, skill_class: type[Any], instance: Any, query: str) -> Score | None:
    """The skill's score for ``query``, or None when it declares nothing to score."""
    signals = Signals.of(name, skill_class, instance)
    return None if signals is None else signals.score(query)


def _match(patterns: tuple[re.Pattern[str], ...], predicate: Any, query: str) -> Score:
    matched = ""
    if patterns:
        for compiled in patterns:
            found = compiled.search(query)
            if found is not None:
                matched = f"its trigger matched {_clip(found.group(0))!r}"
                break
        else:
            return NO_MATCH
    if predicate is None:
        return Score(MATCH_SCORE, matched)
    try:
        yes = predicate(query)
    except KeyboardInterrupt:  # the user's: it stops the host
        raise
    except BaseException as exc:
        return Score(0.0, f"can_handle_query raised {type(exc).__name__}: {_clip(str(exc))}")
    if yes is True or (isinstance(yes, (int, float)) and not isinstance(yes, bool) and yes > 0):
        why = "can_handle_query(query) is true"
        return Score(MATCH_SCORE, f"{matched}; {why}" if matched else why)
    if matched:
        return Score(0.0, f"{matched}, but can_handle_query(query) is false")
    return Score(0.0, "")


def _call_score(name: str, scorer: Any, query: str) -> Score:
    try:
        value = scorer(query)
    except KeyboardInterrupt:  # the user's: it stops the host
        raise
    except BaseException as exc:
        return Score(0.0, f"planning_score raised {type(exc).__name__}: {_clip(str(exc))}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return Score(0.0, f"planning_score returned {_clip(repr(value))}, not a number "
                          "from 0 to 1")
    value = min(1.0, max(0.0, float(value)))
    return Score(value, f"planning_score(query) = {value:.2f}")


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
