"""SOF's own executors, registered through the same hook as any third-party executor."""

from __future__ import annotations

from typing import Any

from sof_core.execution.executors import AsyncioExecutor, SequentialExecutor, ThreadExecutor
from sof_core.plugins import hookimpl


@hookimpl
def sof_register_executors() -> list[Any]:
    return [SequentialExecutor, ThreadExecutor, AsyncioExecutor]
