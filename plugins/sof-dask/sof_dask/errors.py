"""What the Dask executor raises or reports, under SOF's own error tree.

    SOFError
    ├── SkillExecutionError
    │   └── SkillNotPicklableError . the skill, or an input it needs, cannot be sent to a worker
    └── DaskUnavailableError ....... no cluster: the scheduler cannot be reached or started
"""

from __future__ import annotations

from sof_core import SkillExecutionError, SOFError


class SkillNotPicklableError(SkillExecutionError):
    """A skill instance (or one of its declared inputs) cannot be pickled for a worker."""

    def __init__(self, skill: str, what: str, reason: str) -> None:
        super().__init__(
            f"cannot send {what} to the Dask cluster: {reason}; keep clients, locks and open "
            "files out of the skill's instance state (create them in execute() or implement "
            "__getstate__), or run this plan with the threads executor",
            skill,
        )


class DaskUnavailableError(SOFError):
    """The configured scheduler could not be reached, or a LocalCluster could not start."""
