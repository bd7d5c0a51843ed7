"""Reading files into memory documents: text, markdown and JSONL.

A bad line or an unreadable file is an ``ImportIssue`` (reported as ``file:line: reason``),
never an exception, so one broken record cannot stop a bulk import.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from sof_memory.backend import MemoryDocument
from sof_memory.metadata import metadata_problem, text_problem

TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".text"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
SAMPLE_FILE = "corpus.jsonl"

Split = Literal["file", "section"]
_HEADING = re.compile(r"^#{1,6}\s+(.*\S)\s*$")


@dataclass(frozen=True)
class ImportIssue:
    """Something skipped during import, with where it was."""

    path: str
    line: int | None
    message: str
    #: True when a whole file or path was skipped (missing, unreadable), not just a line.
    skipped_file: bool = False

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


@dataclass
class ParsedFile:
    """The documents read from one file and the issues met on the way."""

    path: str
    documents: list[MemoryDocument] = field(default_factory=list)
    issues: list[ImportIssue] = field(default_factory=list)


class UnreadablePath(ValueError):
    """A path given to import that cannot be read at all (an expected error, exit 2)."""


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[ImportIssue]]:
    """Files to import: given files as they are, directories searched for known suffixes.

    A file or folder met while searching that cannot be read is skipped with an issue
    naming it; a given path that is not a regular file or a folder is skipped the same way
    (``/dev/zero``: "not a regular file"). A given folder that cannot be read at all raises
    ``UnreadablePath``.
    """
    files: list[Path] = []
    issues: list[ImportIssue] = []
    for raw in paths:
        path = Path(raw)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            issues.append(
                ImportIssue(display_path(path), None, "no such file or directory", True)
            )
            continue
        except (OSError, ValueError) as exc:  # no permission, a name too long, a NUL
            issues.append(ImportIssue(display_path(path), None, f"cannot read: {_why(exc)}",
                                      True))
            continue
        if stat.S_ISDIR(mode):
            try:
                os.scandir(path).close()
            except OSError as exc:
                raise UnreadablePath(
                    f"cannot read folder {display_path(path)}: {_why(exc)}") from None
            found = _search(path, issues)
            if not found:
                issues.append(
                    ImportIssue(display_path(path), None, "no .md, .txt or .jsonl files found")
                )
            files.extend(found)
        elif stat.S_ISREG(mode):
            files.append(path)
        else:
            issues.append(ImportIssue(display_path(path), None,
                                      f"not a regular file ({_kind(mode)}); give a file or "
                                      "a folder", True))
    return list(dict.fromkeys(files)), issues


#: Filesystems the kernel makes up: they hold no documents, and walking them (``/proc``
#: alone has a folder per process and thread) made ``sof memory import /`` take ~20 s.
KERNEL_FILESYSTEMS = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
    "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "proc", "pstore",
    "rpc_pipefs", "securityfs", "selinuxfs", "sysfs", "tracefs",
})
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def kernel_mounts(mountinfo: str = "/proc/self/mountinfo") -> frozenset[str]:
    """Where kernel filesystems are mounted (Linux's mount table); none where it has none."""
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as table:
            lines = table.read().splitlines()
    except OSError:
        return frozenset()
    points: set[str] = set()
    for line in lines:
        mount, separator, source = line.partition(" - ")
        fields = mount.split()
        if separator and len(fields) >= 5 and source.split(" ", 1)[0] in KERNEL_FILESYSTEMS:
            # Spaces and the like are written as octal escapes ("\040").
            points.add(_OCTAL_ESCAPE.sub(lambda code: chr(int(code.group(1), 8)), fields[4]))
    return frozenset(points)


def _mounts_inside(real: str) -> frozenset[str]:
    """Kernel filesystems mounted below the folder whose real path is ``real``."""
    base = real.rstrip(os.sep) + os.sep
    return frozenset(point for point in kernel_mounts() if point.startswith(base))


def _search(folder: Path, issues: list[ImportIssue]) -> list[Path]:
    """The regular files with a known suffix under ``folder``: symlinked folders are not
    followed, and kernel filesystems mounted below it (``/proc``, ``/sys``, ``/dev``) are
    not searched; a folder or file that cannot be read is an issue, and the search goes
    on."""
    found: list[Path] = []
    real = os.path.realpath(folder)
    skip = _mounts_inside(real)

    def unreadable(exc: OSError) -> None:
        where = exc.filename if exc.filename is not None else folder
        issues.append(ImportIssue(display_path(Path(where)), None,
                                  f"cannot read: {_why(exc)}", True))

    suffixes = TEXT_SUFFIXES | JSONL_SUFFIXES
    for top, dirs, names in os.walk(folder, onerror=unreadable):
        if skip:  # the walk follows no symlink: a folder's real path is real + its place
            here = os.path.normpath(os.path.join(real, os.path.relpath(top, folder)))
            dirs[:] = [name for name in dirs if os.path.join(here, name) not in skip]
        for name in names:
            if os.path.splitext(name)[1].lower() not in suffixes:
                continue
            path = Path(top, name)
            try:
                regular = stat.S_ISREG(path.stat().st_mode)
            except OSError as exc:
                if not isinstance(exc, FileNotFoundError):  # gone meanwhile, or a dead link
                    unreadable(exc)
                continue
            if regular:
                found.append(path)
    return sorted(found)


def _why(exc: BaseException) -> str:
    """An OS error's reason without its repeated file name."""
    return exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else str(exc)


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a file or folder"


def parse_file(path: Path, split: Split = "file") -> ParsedFile:
    """Documents in ``path``: JSONL by line, anything else as text (whole or by section).

    A JSONL file is decoded line by line, so a line that is not UTF-8 is skipped alone; a
    text file that is not UTF-8 is skipped whole, naming where the first bad byte is.
    """
    label = display_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        issue = ImportIssue(label, None, f"cannot read: {exc.strerror or exc}", True)
        return ParsedFile(label, issues=[issue])
    if path.suffix.lower() in JSONL_SUFFIXES:
        return parse_jsonl(data.split(b"\n"), label)
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})"
        return ParsedFile(label, issues=[ImportIssue(label, None, message, True)])
    content = content.removeprefix("\ufeff")
    return parse_text(content, label, split, markdown=path.suffix.lower() in MARKDOWN_SUFFIXES)


def display_path(path: Path) -> str:
    """``path`` as text that can be printed and stored (undecodable bytes become U+FFFD)."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def parse_text(content: str, label: str, split: Split, *, markdown: bool) -> ParsedFile:
    """One document per file, or one per markdown heading section / text paragraph."""
    parsed = ParsedFile(label)
    if split == "file":
        chunks = [content]
    elif markdown:
        chunks = _markdown_sections(content)
    else:
        chunks = re.split(r"\n\s*\n", content)
    for number, chunk in enumerate((c.strip() for c in chunks), start=1):
        if not chunk:
            continue
        metadata: dict[str, Any] = {}
        title = _title(chunk) if markdown else None
        if title:
            metadata["title"] = title
        if split == "section":
            metadata["section"] = number
        parsed.documents.append(MemoryDocument(text=chunk, source=label, metadata=metadata))
    if not parsed.documents:
        parsed.issues.append(ImportIssue(label, None, "empty file; nothing to import"))
    return parsed


def parse_jsonl(lines: Sequence[str | bytes], label: str) -> ParsedFile:
    """One document per line: ``{"text": ..., "source"?: ..., "metadata"?: {...}}``.

    Every line is parsed on its own: one that is not UTF-8, not JSON (including JSON nested
    too deeply for the parser), or not a valid record becomes an ``ImportIssue`` with its
    line number, and the other lines are still imported.
    """
    parsed = ParsedFile(label)
    for number, raw in enumerate(lines, start=1):
        line, problem = _decode_line(raw, first=number == 1)
        if problem is None and not line.strip():
            continue
        record: Any = None
        if problem is None:
            try:
                record = json.loads(line)
            except RecursionError:
                problem = "invalid JSON (nested too deeply to parse)"
            except ValueError as exc:
                problem = f"invalid JSON ({exc})"
        if problem is None:
            problem = _record_problem(record)
        if problem:
            parsed.issues.append(ImportIssue(label, number, problem))
            continue
        parsed.documents.append(
            MemoryDocument(
                text=record["text"].strip(),
                source=record.get("source") or label,
                metadata=record.get("metadata") or {},
                id=record.get("id"),
            )
        )
    return parsed


def _decode_line(raw: str | bytes, *, first: bool) -> tuple[str, str | None]:
    if isinstance(raw, bytes):
        raw = raw.removesuffix(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return "", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
    else:
        text = raw
    return (text.removeprefix("\ufeff") if first else text), None


def sample_corpus() -> ParsedFile:
    """The bundled sample documents about SAM and SOF (package data)."""
    corpus = resources.files("sof_memory").joinpath("sample").joinpath(SAMPLE_FILE)
    return parse_jsonl(corpus.read_bytes().split(b"\n"), f"sof_memory/sample/{SAMPLE_FILE}")


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        return "'text' must be a non-empty string"
    for name in ("text", "source", "id"):
        value = record.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            return f"{name!r} must be a string"
        problem = text_problem(value)
        if problem:
            return f"{name!r} {problem}"
    if record.get("metadata") is not None:
        if not isinstance(record["metadata"], dict):
            return "'metadata' must be a JSON object"
        return metadata_problem(record["metadata"])
    return None


def _markdown_sections(content: str) -> list[str]:
    sections: list[list[str]] = [[]]
    in_fence = False
    for line in content.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        if not in_fence and _HEADING.match(line) and any(s.strip() for s in sections[-1]):
            sections.append([])
        sections[-1].append(line)
    return ["\n".join(lines) for lines in sections]


def _title(chunk: str) -> str | None:
    for line in chunk.splitlines():
        match = _HEADING.match(line)
        if match:
            return match.group(1)
    return None
