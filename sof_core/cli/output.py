"""Output helpers shared by every ``sof`` command: tables, JSON, one-line errors, and the
standard streams the console script writes through (``steady_streams``)."""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

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
    then the next widest, down to ``MIN_COLUMN`` characters each; nothing is cut off. On a
    terminal (and no ``width`` given) it is drawn with rich, in colour, when rich is
    installed; piped output stays plain.
    """
    if width is None:
        if _wants_rich():
            drawn = _rich_table(headers, rows)
            if drawn is not None:
                return drawn
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


#: Words in a status column and their colours on a terminal.
_STATUS_STYLES = {
    "loaded": "green", "passed": "green", "success": "green", "ok": "green",
    "failed": "bold red", "error": "bold red", "disabled": "yellow", "skipped": "dim",
}
_STATUS_COLUMNS = ("STATUS", "RESULT")


def _wants_rich() -> bool:
    """Only a terminal gets rich tables: pipes and files keep the plain format, byte for
    byte, and never pay for importing rich."""
    try:
        return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # a replaced or closed stdout
        return False


def _rich_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str | None:
    """The table drawn by rich for the terminal's width, or ``None`` without rich."""
    try:
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        return None
    import io

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=terminal_width(),
                      highlight=False, soft_wrap=False)
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, pad_edge=False,
                  collapse_padding=True)
    for i, header in enumerate(headers):
        # As in the plain table: columns of prose wrap between words; names stay whole.
        prose = any(" " in str(row[i]) for row in rows if i < len(row) and row[i] is not None)
        table.add_column(header, overflow="fold", no_wrap=not prose)
    status = [i for i, h in enumerate(headers) if h in _STATUS_COLUMNS]
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = "" if cell is None else str(cell)
            style = _STATUS_STYLES.get(text, "") if i in status else ""
            cells.append(Text(text, style=style))  # Text: brackets in values are not markup
        table.add_row(*cells)
    console.print(table)
    return buffer.getvalue().rstrip("\n")


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
    """Say ``message`` as the command's error line and return ``code``, whether or not
    the line could be written (stderr on a full disk): the exit code never depends on it."""
    _say(f"sof: error: {one_line(message)}")
    return code


def warn(message: str) -> None:
    _say(f"sof: warning: {one_line(message)}")


def _say(line: str) -> None:
    """One line on stderr, flushed; a stderr that cannot take it is left as it is."""
    stream = sys.stderr
    if stream is None:  # print(file=None) would write it to stdout
        return
    with contextlib.suppress(OSError, ValueError):  # failing, or closed
        print(line, file=stream, flush=True)


@contextlib.contextmanager
def others_write_to_stderr() -> Iterator[None]:
    """While plugins load and skills run, what they print (``print``, a C library writing
    to descriptor 1, an isolation worker started meanwhile, which inherits it) goes to
    stderr: stdout holds only what the command prints, so ``sof run --json`` stays JSON
    and ``--output KEY`` just the value, whatever a skill prints."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):  # no descriptor 1 (a closed or odd stdout)
        yield
        return
    try:
        os.dup2(2, 1)
    except OSError:
        os.close(saved)
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # what skills printed goes where it was meant
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# --- the standard streams of the console script -------------------------------------------

#: The error handler of the command's stdout and stderr (``steady_streams``).
ERRORS = "sof.console"


class OutputWriteError(OSError):
    """Writing the command's output (stdout) failed for a reason of its own (a full disk,
    an I/O error, a file size limit): an expected error, not a bug. A reader that went
    away (``BrokenPipeError``) is not one: it keeps its own handling."""


#: The output's write failure no one has reported yet (``take_output_failure``).
_unreported: list[OutputWriteError] = []


def take_output_failure() -> OutputWriteError | None:
    """The output's write failure not reported yet, which the caller now reports."""
    failure = _unreported[0] if _unreported else None
    _unreported.clear()
    return failure


class _Output(io.FileIO):
    """Standard output's descriptor: a write that fails raises ``OutputWriteError``, and
    is remembered until reported (argparse, printing ``--help``, swallows it)."""

    def write(self, data: ReadableBuffer, /) -> int:
        try:
            return super().write(data)
        except (BrokenPipeError, BlockingIOError):
            raise
        except OSError as exc:
            failure = OutputWriteError(exc.errno, exc.strerror)
            _unreported[:] = [failure]
            raise failure from exc


class _Messages(io.FileIO):
    """Standard error's descriptor: a write that fails is dropped (there is nowhere left
    to say so), so a command ends the same, exit code included, whether or not its
    warnings and error line could be written."""

    def write(self, data: ReadableBuffer, /) -> int:
        try:
            return super().write(data)
        except OSError:
            return memoryview(data).nbytes


def _escape(exc: UnicodeError) -> tuple[str | bytes, int]:
    """Text the stream's encoding cannot hold (``PYTHONIOENCODING=ascii``, a latin-1 or C
    locale): bytes that came in undecodable (surrogates) go out as they came, anything
    else as a backslash escape (``caf\\xe9``), never an error."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    if all("\udc80" <= char <= "\udcff" for char in exc.object[exc.start:exc.end]):
        return codecs.lookup_error("surrogateescape")(exc)
    return codecs.backslashreplace_errors(exc)


def steady_streams() -> None:
    """Standard output and error as ``sof`` writes them: the same encoding, newlines and
    buffering, with ``ERRORS`` as their error handler and their descriptor wrapped (stdout:
    ``_Output``; stderr: ``_Messages``). A stream that is not a plain file descriptor (a
    Windows console) only gets the error handler."""
    codecs.register_error(ERRORS, _escape)
    for name, raw in (("stdout", _Output), ("stderr", _Messages)):
        stream = getattr(sys, name)
        if not isinstance(stream, io.TextIOWrapper):
            continue
        try:
            stream.flush()
            replaced = _rewrapped(stream, raw)
        except (OSError, ValueError):  # closed, or flushing failed already: leave it
            continue
        if replaced is None:
            stream.reconfigure(errors=ERRORS)
        else:
            setattr(sys, name, replaced)


def _rewrapped(stream: io.TextIOWrapper, raw: type[io.FileIO]) -> io.TextIOWrapper | None:
    """``stream`` again over ``raw`` on the same descriptor, or ``None`` when it is not a
    plain one (its binary layer: a ``FileIO``, unbuffered with ``-u``, or one buffered)."""
    binary = stream.buffer
    inner = binary.raw if isinstance(binary, io.BufferedWriter) else binary
    if type(inner) is not io.FileIO:
        return None
    layer: io.FileIO | io.BufferedWriter = raw(inner.fileno(), "w", closefd=False)
    if isinstance(binary, io.BufferedWriter):
        layer = io.BufferedWriter(layer)
    return io.TextIOWrapper(
        layer, encoding=stream.encoding, errors=ERRORS, newline=None if os.name == "nt" else "\n",
        line_buffering=stream.line_buffering, write_through=stream.write_through,
    )


def settle_streams() -> None:
    """Before the interpreter's exit flushes them: output that could not be written and
    was not reported (``sof --help > /dev/full``) is one error line and exit 1 instead of
    exit 0, or Python's "Exception ignored" and exit 120; messages that cannot be written
    are dropped."""
    for name in ("stderr", "stdout"):
        stream = getattr(sys, name)
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            _drop(stream)
    failure = take_output_failure()
    if failure is not None:
        raise SystemExit(fail(f"could not write the output: {failure.strerror}", 1))


def _drop(stream: io.TextIOWrapper) -> None:
    """Send what ``stream`` still holds to ``os.devnull`` (its descriptor becomes it)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
        stream.flush()
    except (OSError, ValueError):
        pass
