"""What the ``monitor`` observer saw, kept until the metrics are read.

The observer hooks run inside every engine run of a host that has sof-serve installed,
including a one-shot ``sof run``: they only tally the run or append an event here (no
prometheus-client import). ``SOFMetrics`` folds the tallies and events into its series when
``/metrics`` is rendered, or as soon as more than ``TALLY_AT`` events or (status, plan)
pairs are waiting, so memory stays bounded in a process nobody scrapes. Without this,
importing prometheus-client (and the ``http.server`` it pulls in) would be paid by every CLI
call, and its locks and bucket walks by every run.

A run itself and its skill results are tallied at once, into plain dicts (``runs``,
``skills``), not kept: a 100-skill run's ``SkillResult`` objects kept until the next fold made
the garbage collector walk them again and again, which cost every run more than the tally
itself, and each kept run cost a fold a prometheus-client update per series.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

#: Events that may wait for a scrape; beyond this the hook's own thread folds them.
TALLY_AT = 256
#: Latency buckets (s) from a cached plan (~1 ms) to the seed's 10 s alert limit and beyond.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class SkillTally:
    """Skill runs by (skill, plugin, status) and skill latencies by bucket, in plain dicts.

    ``add`` takes a finished run's ``SkillResult`` list (thread-safe); the metrics fold
    what was tallied (``take``) into their own tally, which their collector exposes.

    Every skill of every run passes through ``add``, so the common result (a success, from
    the plugin the skill's entry names) costs one dict lookup and three list updates; any
    other goes through ``_other``, which also counts it by its full label set.
    """

    def __init__(self, buckets: Sequence[float] = BUCKETS) -> None:
        self._bounds = tuple(buckets)
        self._lock = threading.Lock()
        #: (skill, plugin, status) -> runs, for results other than a skill entry's successes.
        self._runs: dict[tuple[str, str, str], int] = {}
        #: skill -> [plugin, successes from it, sum of durations, one count per bucket
        #: (the last is +Inf)].
        self._skills: dict[str, list[Any]] = {}

    def add(self, results: Sequence[Any]) -> None:
        """Tally one finished run's ``SkillResult`` list."""
        bounds = self._bounds
        with self._lock:
            table = self._skills
            for result in results:
                entry = table.get(result.skill)
                if (entry is None or result.status != "success"
                        or result.plugin != entry[0]):
                    self._other(result)
                    continue
                duration = result.duration
                entry[1] += 1
                entry[2] += duration
                entry[3 + bisect_left(bounds, duration)] += 1

    def _other(self, result: Any) -> None:
        """``add`` for a result off its common path (under the lock)."""
        skill, status, duration = result.skill, result.status, result.duration
        if type(status) is not str:
            status = str(status)
        entry = self._skills.get(skill)
        if entry is None:
            entry = self._skills[skill] = self._entry(result.plugin)
        if status == "success" and result.plugin == entry[0]:
            entry[1] += 1
        else:
            key = (skill, result.plugin or "", status)
            self._runs[key] = self._runs.get(key, 0) + 1
            if status == "skipped":
                return
        entry[2] += duration
        entry[3 + bisect_left(self._bounds, duration)] += 1

    def _entry(self, plugin: Any) -> list[Any]:
        return [plugin, 0, 0.0] + [0] * (len(self._bounds) + 1)

    def take(self) -> tuple[dict[tuple[str, str, str], int], dict[str, list[Any]]]:
        """What was tallied since the last ``take``, leaving the tally empty."""
        with self._lock:
            taken = self._runs, self._skills
            self._runs, self._skills = {}, {}
        return taken

    def merge(self, runs: dict[tuple[str, str, str], int],
              skills: dict[str, list[Any]]) -> None:
        """Add another tally's counts (``take``) to this one."""
        with self._lock:
            mine, table = self._runs, self._skills
            for key, count in runs.items():
                mine[key] = mine.get(key, 0) + count
            for skill, entry in skills.items():
                kept = table.get(skill)
                if kept is None:
                    table[skill] = list(entry)
                    continue
                if kept[0] != entry[0]:  # successes from another plugin: labelled apart
                    key = (skill, entry[0] or "", "success")
                    mine[key] = mine.get(key, 0) + entry[1]
                else:
                    kept[1] += entry[1]
                for index in range(2, len(entry)):
                    kept[index] += entry[index]

    def snapshot(self) -> tuple[dict[tuple[str, str, str], int], dict[str, list[float]]]:
        """The runs by (skill, plugin, status), and per skill its count per bucket then the
        sum of durations (skills with no timed run left out): copies, for a collector to
        read outside the lock."""
        with self._lock:
            runs = dict(self._runs)
            latency: dict[str, list[float]] = {}
            for skill, entry in self._skills.items():
                if entry[1]:
                    key = (skill, entry[0] or "", "success")
                    runs[key] = runs.get(key, 0) + entry[1]
                counts = entry[3:]
                if any(counts):
                    latency[skill] = [*counts, entry[2]]
        return runs, latency


class RunTally:
    """Engine runs by (status, plan): how many, their errors, and their latency by bucket.

    ``sof_runs_total``, ``sof_run_errors_total`` and ``sof_run_duration_seconds`` come from
    every finished run of every engine. Kept as one event per run, each was turned into a
    prometheus-client ``inc()``/``observe()`` at the fold (a lock each, the buckets walked
    in Python): with the event itself, about 40 % of what a one-skill run cost. Tallied as
    the run ends, a run costs one dict lookup under a lock, and a fold one update per
    distinct (status, plan).
    """

    def __init__(self, buckets: Sequence[float] = BUCKETS) -> None:
        self._bounds = tuple(buckets)
        self._lock = threading.Lock()
        #: (status, plan) -> [runs, errors, sum of durations, one count per bucket (+Inf
        #: last)].
        self._runs: dict[tuple[str, tuple[str, ...]], list[Any]] = {}

    def add(self, status: str, plan: Sequence[str], duration: float, errors: int) -> bool:
        """Tally one finished run; True when more than ``TALLY_AT`` (status, plan) pairs
        wait for a fold (a process nobody scrapes may see any number of plans)."""
        key = (status, tuple(plan))
        bucket = 3 + bisect_left(self._bounds, duration)  # a bad duration counts nothing
        with self._lock:
            entry = self._runs.get(key)
            if entry is None:
                entry = self._runs[key] = [0, 0, 0.0] + [0] * (len(self._bounds) + 1)
            entry[0] += 1
            entry[1] += errors
            entry[2] += duration
            entry[bucket] += 1
            return len(self._runs) > TALLY_AT

    def add_report(self, report: Any) -> bool:
        """``add`` for a finished ``ExecutionReport`` (attributes read defensively: what
        the hook and ``SOFMetrics.on_plan`` are given is any report-like object)."""
        errors = getattr(report, "errors", None)
        return self.add(str(report.status), report.plan, report.duration,
                        len(errors) if errors else 0)

    def __len__(self) -> int:
        """The (status, plan) pairs waiting for a fold."""
        return len(self._runs)

    def take(self) -> dict[tuple[str, tuple[str, ...]], list[Any]]:
        """What was tallied since the last ``take``, leaving the tally empty."""
        with self._lock:
            taken, self._runs = self._runs, {}
        return taken


#: The skill results of runs recorded since the last fold.
skills = SkillTally()
#: The runs recorded since the last fold.
runs = RunTally()


def add_run(report: Any) -> None:
    """Tally one finished run's report (thread-safe); folds at once if too many plans wait."""
    if runs.add_report(report):
        _fold()


def _fold() -> None:
    from sof_serve.observe.metrics import get_metrics

    get_metrics().fold()


_events: deque[tuple[str, Any]] = deque()
#: ``refresh(metrics)`` callables that set gauges from live state before each render.
refreshers: list[Callable[[Any], None]] = []


def record(kind: str, payload: Any) -> None:
    """Keep one event (``planning``, ``route`` or ``alert``) for the next fold (thread-safe)."""
    _events.append((kind, payload))
    if len(_events) > TALLY_AT:
        _fold()


def drain() -> Iterator[tuple[str, Any]]:
    """The waiting events, oldest first, each taken once (safe beside ``record``)."""
    while True:
        try:
            yield _events.popleft()
        except IndexError:
            return


def pending() -> int:
    return len(_events)


def clear() -> None:
    _events.clear()
    skills.take()
    runs.take()


def add_refresher(refresh: Callable[[Any], None]) -> None:
    if refresh not in refreshers:
        refreshers.append(refresh)


__all__ = ["BUCKETS", "TALLY_AT", "RunTally", "SkillTally", "add_refresher", "add_run", "clear",
           "drain", "pending", "record", "refreshers", "runs", "skills"]
