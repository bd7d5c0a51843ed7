"""The ``sof`` command (``main``; the console script is ``sof_core._console:main``, which
calls ``sof_core.cli.leave.console``); one module per command group."""

from __future__ import annotations

from sof_core.cli.main import main

__all__ = ["main"]
