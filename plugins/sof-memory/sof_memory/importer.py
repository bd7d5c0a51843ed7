"""Reading files into memory documents: text, markdown and JSONL.

A bad line or an unreadable file is an ``ImportIssue`` (reported as ``file:line: reason``),
never an exception, so one broken record cannot stop a bulk import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from sof_memory.backend import MemoryDocument

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


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[ImportIssue]]:
    """Files to import: given files as they are, directories searched for known suffixes."""
    files: list[Path] = []
    issues: list[ImportIssue] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES | JSONL_SUFFIXES
            )
            if not found:
                issues.append(ImportIssue(str(path), None, "no .md, .txt or .jsonl files found"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            issues.append(ImportIssue(str(path), None, "no such file or directory", True))
    return list(dict.fromkeys(files)), issues


def parse_file(path: Path, split: Split = "file") -> ParsedFile:
    """Documents in ``path``: JSONL by line, anything else as text (whole or by section)."""
    label = str(path)
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ParsedFile(label, issues=[ImportIssue(label, None, "not UTF-8 text", True)])
    except OSError as exc:
        issue = ImportIssue(label, None, f"cannot read: {exc.strerror}", True)
        return ParsedFile(label, issues=[issue])
    if path.suffix.lower() in JSONL_SUFFIXES:
        return parse_jsonl(content.splitlines(), label)
    return parse_text(content, label, split, markdown=path.suffix.lower() in MARKDOWN_SUFFIXES)


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


def parse_jsonl(lines: Sequence[str], label: str) -> ParsedFile:
    """One document per line: ``{"text": ..., "source"?: ..., "metadata"?: {...}}``."""
    parsed = ParsedFile(label)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            parsed.issues.append(ImportIssue(label, number, f"invalid JSON ({exc})"))
            continue
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


def sample_corpus() -> ParsedFile:
    """The bundled sample documents about SAM and SOF (package data)."""
    corpus = resources.files("sof_memory").joinpath("sample").joinpath(SAMPLE_FILE)
    text = corpus.read_text(encoding="utf-8")
    return parse_jsonl(text.splitlines(), f"sof_memory/sample/{SAMPLE_FILE}")


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        return "'text' must be a non-empty string"
    if record.get("source") is not None and not isinstance(record["source"], str):
        return "'source' must be a string"
    if record.get("metadata") is not None and not isinstance(record["metadata"], dict):
        return "'metadata' must be a JSON object"
    if record.get("id") is not None and not isinstance(record["id"], str):
        return "'id' must be a string"
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
