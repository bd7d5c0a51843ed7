"""SOF's Dask executor: ``executor = "dask"`` runs each stage's skills on a Dask cluster."""

from __future__ import annotations

from sof_dask.errors import DaskUnavailableError, SkillNotPicklableError
from sof_dask.executor import DaskExecutor, close_clients

__all__ = ["DaskExecutor", "DaskUnavailableError", "SkillNotPicklableError", "close_clients"]
