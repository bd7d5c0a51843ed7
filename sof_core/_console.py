"""The ``sof`` console script's entry point (``python -m sof_core`` and ``python -m
sof_core.cli`` run it too).

It imports nothing itself: the real CLI (``sof_core.cli``, argparse, the config, ...) is
imported inside ``main``, under a ``KeyboardInterrupt`` handler, so Ctrl-C while ``sof``
is still starting up ends it quietly with exit code 130, as Ctrl-C during a command does,
instead of printing a traceback from the middle of an import.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the ``sof`` command (``sof_core.cli.leave.console``); Ctrl-C at any point
    exits 130 without a traceback."""
    try:
        from sof_core.cli.leave import console

        console()
    except KeyboardInterrupt:
        sys.exit(130)
