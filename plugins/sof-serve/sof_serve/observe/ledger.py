"""What the ``monitor`` observer saw, kept until the metrics are read.

The observer hooks run inside every engine run of a host that has sof-serve installed,
including a one-shot ``sof run``: they only append an event here (a deque append, no
prometheus-client import). ``SOFMetrics`` folds the events into its series when
``/metrics`` is rendered, or as soon as more than ``TALLY_AT`` are waiting, so memory stays
bounded in a process nobody scrapes. Without this, importing prometheus-client (and the
``http.server`` it pulls in) would be paid by every CLI call, and its locks and bucket walks
by every run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

#: Events that may wait for a scrape; beyond this the hook's own thread folds them.
TALLY_AT = 256


class RunRecord(NamedTuple):
    """The parts of a finished ``ExecutionReport`` the metrics read (not the report: that
    holds the whole UIF, which must not live on until the next scrape)."""

    status: str
    errors: list[str]
    plan: list[str]
    duration: float
    results: list[Any]
    planning: Any


_events: deque[tuple[str, Any]] = deque()
#: ``refresh(metrics)`` callables that set gauges from live state before each render.
refreshers: list[Callable[[Any], None]] = []


def record(kind: str, payload: Any) -> None:
    """Keep one event (``plan``, ``route`` or ``alert``) for the next fold (thread-safe)."""
    _events.append((kind, payload))
    if len(_events) > TALLY_AT:
        from sof_serve.observe.metrics import get_metrics

        get_metrics().fold()


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


def add_refresher(refresh: Callable[[Any], None]) -> None:
    if refresh not in refreshers:
        refreshers.append(refresh)


__all__ = ["TALLY_AT", "RunRecord", "add_refresher", "clear", "drain", "pending", "record",
           "refreshers"]
