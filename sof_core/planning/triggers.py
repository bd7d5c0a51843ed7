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
explanation: one broken skill never stops planning. Nor does one that hangs: a plugin's
``can_handle_query`` or ``planning_score`` is given ``PREDICATE_TIMEOUT`` seconds (see
``_ask`` for how, and why the bundled plugins' are asked in place).
"""

from __future__ import annotations

import _thread
import contextvars
import logging
import math
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from queue import SimpleQueue
from typing import Any

log = logging.getLogger("sof.planning")

#: The score a matching trigger or a true predicate gives.
MATCH_SCORE = 1.0
_SHOWN = 40
#: Seconds a plugin's ``can_handle_query`` or ``planning_score`` may take before it scores 0
#: for this query (docs/planning.md). A predicate is a quick test of the query text; a
#: longer one holds every query that reaches it, so the bound is short.
PREDICATE_TIMEOUT = 1.0
#: The packages of SOF's bundled plugins: their declarations are asked in place (``_ask``).
BUNDLED_PACKAGES = frozenset({
    "sof_calculator", "sof_conflict", "sof_dask", "sof_memory", "sof_response", "sof_sam",
    "sof_serve", "sof_vetting", "sof_web",
})


@dataclass(frozen=True)
class Score:
    """A skill's score for one query, and why (``reason`` is empty for 0 without a cause)."""

    value: float
    reason: str
    #: The skill could not be asked (its predicate hung): a plan made with this score is
    #: not cached, so the skill is considered again once its predicate answers.
    unanswered: bool = False


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
    #: The plugin that registered the skill (named when a declaration hangs).
    plugin: str = ""

    @classmethod
    def of(cls, name: str, skill_class: type[Any], instance: Any,
           plugin: str = "") -> Signals | None:
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
        return cls(name, compiled, predicate, scorer, plugin)

    def score(self, query: str) -> Score:
        if self.scorer is not None:
            return _call_score(self, query)
        return _match(self, query)


def score_skill(name: str, skill_class: type[Any], instance: Any, query: str) -> Score | None:
    """The skill's score for ``query``, or None when it declares nothing to score."""
    signals = Signals.of(name, skill_class, instance)
    return None if signals is None else signals.score(query)


def _match(signals: Signals, query: str) -> Score:
    matched = ""
    if signals.patterns:
        for compiled in signals.patterns:
            found = compiled.search(query)
            if found is not None:
                matched = f"its trigger matched {_clip(found.group(0))!r}"
                break
        else:
            return NO_MATCH
    if signals.predicate is None:
        return Score(MATCH_SCORE, matched)
    answer = _ask(signals, "can_handle_query", signals.predicate, query)
    if isinstance(answer, Score):
        return answer
    ok, yes = answer
    if not ok:
        return Score(0.0, f"can_handle_query raised {type(yes).__name__}: {_clip(str(yes))}")
    if yes is True or (isinstance(yes, (int, float)) and not isinstance(yes, bool) and yes > 0):
        why = "can_handle_query(query) is true"
        return Score(MATCH_SCORE, f"{matched}; {why}" if matched else why)
    if matched:
        return Score(0.0, f"{matched}, but can_handle_query(query) is false")
    return Score(0.0, "")


def _call_score(signals: Signals, query: str) -> Score:
    answer = _ask(signals, "planning_score", signals.scorer, query)
    if isinstance(answer, Score):
        return answer
    ok, value = answer
    if not ok:
        return Score(0.0, f"planning_score raised {type(value).__name__}: "
                          f"{_clip(str(value))}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return Score(0.0, f"planning_score returned {_clip(repr(value))}, not a number "
                          "from 0 to 1")
    value = min(1.0, max(0.0, float(value)))
    return Score(value, f"planning_score(query) = {value:.2f}")


# --- asking a declaration, bounded ------------------------------------------------------------

#: The declarations given up on whose call has not returned yet: ``(skill, method, id of
#: the object it is bound to)`` -> the limit it missed. The hung call holds that object, so
#: its id cannot be reused while the entry stands.
_hung: dict[tuple[str, str, int], float] = {}
_hung_lock = threading.Lock()


def _ask(signals: Signals, method: str, fn: Callable[[str], Any],
         query: str) -> tuple[bool, Any] | Score:
    """``fn(query)`` as ``(True, value)`` or ``(False, exception)``; a ``Score`` of 0 with
    the reason when a plugin's call did not return within ``PREDICATE_TIMEOUT`` seconds, or
    when an earlier call to it still has not (it is not asked again until that returns).

    A bundled plugin's declaration (its code in ``BUNDLED_PACKAGES``) is called in place:
    SOF's own code, known to return at once, and on every query (the calculator's and web
    tool's predicates), so it should cost a function call and nothing more. Any other is
    handed to a reusable daemon worker (``_Workers``) and waited for: a thread per call
    would cost a thread start (about 100 us) each time a trigger matches, while the hand-off
    costs a few microseconds, and a worker is replaced only when one is given up on.
    ``KeyboardInterrupt`` raised in place stops the host (it is the user's); raised by a
    predicate in a worker it is the predicate's own and scores 0 like any exception.
    """
    if _bundled(fn):
        try:
            return True, fn(query)
        except KeyboardInterrupt:  # the user's: it stops the host
            raise
        except BaseException as exc:  # the declaration's fault: it scores 0
            return False, exc
    key = (signals.name, method, id(getattr(fn, "__self__", fn)))
    with _hung_lock:
        missed = _hung.get(key)
    if missed is not None:
        return Score(0.0, f"{method} of {_whose(signals)} is not asked: its call from an "
                          f"earlier query has not returned (given up on after {missed:g}s)",
                     unanswered=True)
    limit = PREDICATE_TIMEOUT

    def given_up() -> None:
        with _hung_lock:
            _hung[key] = limit
        log.warning("%s of %s did not return within %gs; it scores 0 and is not asked "
                    "again until that call returns", method, _whose(signals), limit)

    def late() -> None:
        with _hung_lock:
            _hung.pop(key, None)

    outcome = _workers.call(fn, query, limit, given_up, late)
    if outcome is None:
        return Score(0.0, f"{method} of {_whose(signals)} did not return within {limit:g}s "
                          "(not asked again until that call returns)", unanswered=True)
    return outcome


def _whose(signals: Signals) -> str:
    """``skill 'X' (plugin 'p')``, as a hung declaration is reported."""
    plugin = f" (plugin {signals.plugin!r})" if signals.plugin else ""
    return f"skill {signals.name!r}{plugin}"


def _bundled(fn: Any) -> bool:
    """Whether ``fn`` is defined in a bundled plugin's package."""
    module = getattr(getattr(fn, "__func__", fn), "__module__", None) or ""
    return module.partition(".")[0] in BUNDLED_PACKAGES


class _Call:
    """One declaration call handed to a worker, and its outcome."""

    __slots__ = ("abandoned", "args", "context", "done", "finished", "fn", "late", "lock",
                 "outcome")

    def __init__(self, fn: Callable[[str], Any], query: str,
                 late: Callable[[], object]) -> None:
        self.fn = fn
        self.args = (query,)
        self.context = contextvars.copy_context()  # a request id reads the same there
        self.late = late
        self.done = _thread.allocate_lock()
        self.done.acquire()  # released by the worker when the call returned
        self.lock = _thread.allocate_lock()  # guards finished / abandoned
        self.finished = False
        self.abandoned = False
        self.outcome: tuple[bool, Any] = (False, None)

    def run(self) -> bool:
        """Make the call; whether the caller had given up on it (the worker then ends)."""
        try:
            outcome: tuple[bool, Any] = (True, self.context.run(self.fn, *self.args))
        except BaseException as exc:  # handed to the caller, which scores it 0
            outcome = (False, exc)
        with self.lock:
            self.outcome = outcome
            self.finished = True
            abandoned = self.abandoned
        self.done.release()
        if abandoned:
            self.late()
        return abandoned


class _Workers:
    """Daemon threads that run plugins' declarations, reused from one call to the next.

    A call takes an idle worker (or starts one), hands it the call and waits at most the
    limit. A worker whose call returned goes back to the idle list (up to ``KEEP_IDLE``;
    so concurrent queries do not queue behind one another); one whose call was given up on
    is forgotten and ends when the call returns. In a forked child the parent's workers do
    not exist, so the idle list starts empty there.
    """

    KEEP_IDLE = 4

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[SimpleQueue[_Call | None]] = []
        self._started = 0

    def _after_fork(self) -> None:
        """In a forked child: no worker and no hung call of the parent's is there (and a
        lock a parent's thread held at the fork would never be released)."""
        global _hung_lock
        self._lock = threading.Lock()
        self._idle = []
        _hung_lock = threading.Lock()
        _hung.clear()

    def call(self, fn: Callable[[str], Any], query: str, limit: float,
             given_up: Callable[[], object],
             late: Callable[[], object]) -> tuple[bool, Any] | None:
        """``fn(query)``'s outcome, or None (after ``given_up()``) when it did not return
        within ``limit``; ``late()`` runs in the worker once such a call returns."""
        job = _Call(fn, query, late)
        inbox: SimpleQueue[_Call | None] | None = None
        try:
            with self._lock:
                inbox = self._idle.pop() if self._idle else None
            if inbox is None:
                inbox = self._start()
            inbox.put(job)
            returned = job.done.acquire(timeout=limit)
        except BaseException:  # Ctrl-C, wherever it lands: no worker may be stranded
            with job.lock:
                if not job.finished:
                    job.abandoned = True  # if the worker has the call, it ends after it
            if inbox is not None:
                # A worker that never got the call, or whose call already returned, waits
                # for the next one: none will come. (One running the call ends after it and
                # never reads this.)
                inbox.put(None)
            raise
        if not returned:
            with job.lock:
                if not job.finished:
                    job.abandoned = True
                    given_up()
                    return None
        with self._lock:
            keep = len(self._idle) < self.KEEP_IDLE
            if keep:
                self._idle.append(inbox)
        if not keep:
            inbox.put(None)  # enough idle workers: this one ends
        return job.outcome

    def _start(self) -> SimpleQueue[_Call | None]:
        inbox: SimpleQueue[_Call | None] = SimpleQueue()
        with self._lock:
            self._started += 1
            number = self._started
        try:
            threading.Thread(target=_serve, args=(inbox,), daemon=True,
                             name=f"sof-planning-declarations-{number}").start()
        except BaseException:  # Ctrl-C while it starts: it would wait on a queue nobody has
            inbox.put(None)
            raise
        return inbox


def _serve(inbox: SimpleQueue[_Call | None]) -> None:
    """A worker: run calls until told to stop, or until a call was given up on."""
    while True:
        job = inbox.get()
        if job is None or job.run():
            return


_workers = _Workers()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_workers._after_fork)


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
