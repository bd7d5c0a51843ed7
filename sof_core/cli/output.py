"""Output helpers shared by every ``sof`` command: tables, JSON, one-line errors."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

#: Columns are never squeezed below this many characters to fit the terminal.
MIN_COLUMN = 6
GAP = "  "


class UsageError(Exception):
    """A command was given arguments it cannot use: one line on stderr, exit 2."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def terminal_width() -> int | None:
    """The width tables must fit, or ``None`` when nothing constrains it.

    Output piped to another program keeps whole lines (``grep`` sees every row on one line)
    unless ``COLUMNS`` asks for a width.
    """
    if os.environ.get("COLUMNS", "").strip().isdigit():
        return max(int(os.environ["COLUMNS"]), 20)
    if not sys.stdout.isatty():
        return None
    import shutil

    return max(shutil.get_terminal_size().columns, 20)


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None = None
) -> str:
    """A plain aligned text table that fits ``width`` (default: the terminal's).

    When the table is too wide, the widest column of prose is wrapped onto several lines,
    then the next widest, down to ``MIN_COLUMN`` characters each; nothing is cut off.
    """
    if width is None:
        width = terminal_width()
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], max((len(line) for line in cell.splitlines()), default=0))
    if width is not None:
        wrappable = [any(" " in row[i] for row in cells if i < len(row))
                     for i in range(len(widths))]
        _fit(widths, width, wrappable)

    def lines_of(values: Sequence[str]) -> list[str]:
        wrapped = [_wrap(value, widths[i]) for i, value in enumerate(values)]
        height = max((len(w) for w in wrapped), default=1)
        out = []
        for number in range(height):
            parts = [
                (w[number] if number < len(w) else "").ljust(widths[i])
                for i, w in enumerate(wrapped)
            ]
            out.append(GAP.join(parts).rstrip())
        return out

    out = [*lines_of(headers), GAP.join("-" * w for w in widths)]
    for row in cells:
        out.extend(lines_of(row))
    return "\n".join(out)


def _fit(widths: list[int], width: int, wrappable: Sequence[bool]) -> None:
    """Shrink the widest columns, one character at a time, until the table fits.

    Columns of prose (cells with spaces, which wrap between words) give way first; columns
    of single names (skill names, versions) only when that is not enough.
    """
    for allowed in ([i for i, w in enumerate(wrappable) if w], list(range(len(widths)))):
        while sum(widths) + len(GAP) * (len(widths) - 1) > width:
            candidates = [i for i in allowed if widths[i] > MIN_COLUMN]
            if not candidates:
                break
            widest = max(candidates, key=lambda i: widths[i])
            widths[widest] -= 1


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    lines: list[str] = []
    for line in text.splitlines() or [""]:
        if len(line) <= width:
            lines.append(line)
        else:
            lines.extend(
                textwrap.wrap(line, width, break_long_words=True, break_on_hyphens=False)
                or [""]
            )
    return lines


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False, default=str))


def one_line(message: str) -> str:
    """Messages that reach the terminal keep to one line (paths and values may hold breaks)."""
    return " ".join(str(message).split())


def fail(message: str, code: int = 2) -> int:
    print(f"sof: error: {one_line(message)}", file=sys.stderr)
    return code


def warn(message: str) -> None:
    print(f"sof: warning: {one_line(message)}", file=sys.stderr)
