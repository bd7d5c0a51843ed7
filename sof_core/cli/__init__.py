"""The ``sof`` command (``sof_core.cli:main``); one module per command group."""

from __future__ import annotations

from sof_core.cli.main import main

__all__ = ["main"]
