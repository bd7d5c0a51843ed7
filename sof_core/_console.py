"""The ``sof`` console script's entry point (``python -m sof_core`` and ``python -m
sof_core.cli`` run it too).

It imports nothing itself: the real CLI (``sof_core.cli``, argparse, the config, ...) is
imported inside ``main``, under a ``KeyboardInterrupt`` handler, so Ctrl-C while ``sof``
is still starting up ends it quietly with exit code 130, as Ctrl-C during a command does,
instead of printing a traceback from the middle of an import.

It also has ``sof_core.cli.output`` set up the standard streams for the command
(``steady_streams``: nothing fails to encode, a failing write of the output is an expected
error, one of stderr is dropped) and settle them before the interpreter's exit flushes them
(``settle_streams``).
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run the ``sof`` command (``sof_core.cli.leave.console``); Ctrl-C at any point
    exits 130 without a traceback."""
    try:
        open_closed_streams()
        from sof_core.cli.output import steady_streams

        steady_streams()
        from sof_core.cli.leave import console

        console()
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        _settle_streams()


def _settle_streams() -> None:
    """``sof_core.cli.output.settle_streams``, once that module is there (Ctrl-C may
    have come before it was imported)."""
    settle = getattr(sys.modules.get("sof_core.cli.output"), "settle_streams", None)
    if settle is not None:
        settle()


def open_closed_streams() -> None:
    """A standard stream that was closed when ``sof`` started (``sof run - <&-``, ``sof
    skills >&-``, a daemon's closed descriptors) is Python's ``None``: it becomes
    ``os.devnull``, on its own descriptor number when that is free (so the processes
    ``sof`` starts inherit it too). A closed stdin then reads as empty and a closed stdout
    or stderr takes the output nowhere; the command exits with its usual code."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is not None:
            continue
        try:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd and not _in_use(fd):
                os.dup2(null, fd)
                os.close(null)
                null = fd
            stream = open(null, mode, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        except OSError:  # no /dev/null: leave it as it is
            continue
        setattr(sys, name, stream)
        if getattr(sys, f"__{name}__") is None:
            setattr(sys, f"__{name}__", stream)


def _in_use(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True

