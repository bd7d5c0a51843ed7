"""The ``dask`` entry point: registers ``DaskExecutor`` like the built-in executors."""

from __future__ import annotations

from typing import Any

from sof_core import hookimpl
from sof_dask.executor import DaskExecutor


@hookimpl
def sof_register_executors() -> list[Any]:
    return [DaskExecutor]
