"""A traceback as text, whatever the interpreter does while making it.

Python 3.11's ``traceback`` parses each source line with ``ast`` to place its ``^^^``
markers, and the ``ast`` module's recursion bookkeeping is shared by every thread (CPython
gh-106905): two threads formatting at once can raise ``SystemError: AST constructor
recursion depth mismatch``. A skill's failure is formatted on its run's thread, beside other
runs' threads, so that interpreter error must not turn one skill's failure into a crashed
run: the formatting is tried again, then done without the markers (no ``ast`` involved).
"""

from __future__ import annotations

import traceback
from types import TracebackType


def traceback_text(error: BaseException, tb: TracebackType | None) -> str:
    """``traceback.format_exception`` of ``error`` from ``tb``, never raising."""
    for _ in range(2):  # the bookkeeping is reset by the next parse: once more usually does
        try:
            return "".join(traceback.format_exception(type(error), error, tb))
        except Exception:  # the interpreter's fault (see above), tried once more
            continue
    return plain_traceback_text(error, tb)


def plain_traceback_text(error: BaseException, tb: TracebackType | None) -> str:
    """The traceback in the usual layout without the ``^^^`` markers (and without the
    chained exceptions): the frames and the exception line."""
    lines: list[str] = []
    if tb is not None:
        try:
            frames = traceback.extract_tb(tb)
        except Exception:  # a source file that cannot be read as text, say
            frames = traceback.StackSummary()
        lines.append("Traceback (most recent call last):\n")
        for frame in frames:
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n')
            if frame.line:
                lines.append(f"    {frame.line.strip()}\n")
    try:
        lines.extend(traceback.format_exception_only(type(error), error))
    except Exception:
        lines.append(f"{type(error).__name__}: <its text could not be made>\n")
    return "".join(lines)
