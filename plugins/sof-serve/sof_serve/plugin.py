"""The `serve` entry point: adds the `sof serve` command.

Only the parser is built here (``sof --help`` stays fast): Starlette, uvicorn and the
engine load when the command runs.
"""

from __future__ import annotations

from typing import Any

from sof_core import hookimpl


@hookimpl
def sof_register_commands(subparsers: Any) -> None:
    from sof_serve.cli import register

    register(subparsers)
