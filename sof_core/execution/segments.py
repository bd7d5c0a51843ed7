"""One plan to observers, however many engine runs it takes.

``run_query`` runs a planner's plan in segments when something is decided mid-way (the
producers first, then what their outputs decided; a re-planned replacement last: see
``sof_core.planning.adapt``). Each segment is an ``execute_plan`` of its own, yet for the
query's observers it is one plan: inside ``CoordinatorEngine.segmented_plan`` the first
segment to start notifies ``sof_before_plan`` with the whole plan, no segment notifies
``sof_after_plan``, and the caller notifies it once with the merged report. So a query
counts once in per-run metrics and gets one trace span, whatever its segments.

A ``ContextVar`` holds the segmented plan: concurrent queries on one engine (threads or
event-loop tasks) never see each other's.
"""

from __future__ import annotations

from contextvars import ContextVar


class SegmentedPlan:
    """A plan being run as several engine runs, and what observers were told of it."""

    __slots__ = ("began", "ended", "plan")

    def __init__(self, plan: list[str]) -> None:
        self.plan = plan
        #: ``sof_before_plan`` was sent (by the first segment that started).
        self.began = False
        #: ``sof_after_plan`` was sent (by ``finish``, or by a segment a Ctrl-C ended).
        self.ended = False


#: The segmented plan the current thread or task is running, if any.
current_segments: ContextVar[SegmentedPlan | None] = ContextVar(
    "sof_segmented_plan", default=None
)

__all__ = ["SegmentedPlan", "current_segments"]
