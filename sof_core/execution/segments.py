"""One plan to observers, however many engine runs it takes.

``run_query`` (and ``arun_query``) runs a planner's plan in segments when something is
decided mid-way (the producers first, then what their outputs decided; a re-planned
replacement last: see ``sof_core.planning.adapt``). Each segment is an ``execute_plan`` of
its own, yet for the query's observers it is one plan: inside
``CoordinatorEngine.segmented_plan`` the first segment to start notifies ``sof_before_plan``
with the whole plan, no segment notifies ``sof_after_plan``, and the caller notifies it once
with the merged report. So a query counts once in per-run metrics and gets one trace span,
whatever its segments.

A ``ContextVar`` holds the segmented plan: concurrent queries on one engine (threads or
event-loop tasks) never see each other's. An exception that ends the block after a
segment began (a later segment's invalid plan, a host's own error) still ends the plan for
observers: ``sof_after_plan`` gets the reports of the segments that ended, merged, marked
``failure`` with the exception named in its errors, so every ``sof_before_plan`` has its
``sof_after_plan`` and sees every skill the query ran.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sof_core.execution.report import ExecutionReport
    from sof_core.uif import UIF


class SegmentedPlan:
    """A plan being run as several engine runs, and what observers were told of it."""

    __slots__ = ("began", "deadline", "ended", "plan", "reports", "uif")

    def __init__(self, plan: list[str]) -> None:
        self.plan = plan
        #: ``sof_before_plan`` was sent (by the first segment that started).
        self.began = False
        #: ``sof_after_plan`` was sent (by ``finish``, or by a segment a Ctrl-C ended).
        self.ended = False
        #: The UIF the first segment ran on, and the report of each segment that ended:
        #: merged, what ``sof_after_plan`` is told if an exception ends the query.
        self.uif: UIF | None = None
        self.reports: list[ExecutionReport] = []
        #: When the query's ``total_timeout`` ends (a ``clock()`` value), set by the first
        #: segment that runs under one: every later segment ends by then too.
        self.deadline: float | None = None

    def share_deadline(self, deadline: float) -> float:
        """The total deadline a segment starting now runs under: the first segment's, so
        ``total_timeout`` bounds the query, not each of its engine runs."""
        if self.deadline is None or deadline < self.deadline:
            self.deadline = deadline
        return self.deadline


#: The segmented plan the current thread or task is running, if any.
current_segments: ContextVar[SegmentedPlan | None] = ContextVar(
    "sof_segmented_plan", default=None
)

__all__ = ["SegmentedPlan", "current_segments"]
