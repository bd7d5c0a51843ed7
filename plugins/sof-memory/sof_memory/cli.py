"""``sof memory``: add, import, search and inspect the memory store from the shell.

The commands use the same backend and settings the skill would (``plugin_settings.memory``:
``backend``, ``path``, ``limit``), so what ``sof memory search`` finds is what
``MemoryRetrievalSkill`` finds in ``sof run``, and a setting the skill refuses is refused here.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sof_memory.backend import (
    MemoryBackend,
    MemoryFilters,
    MemoryHit,
    display_name,
    profile_filter,
)
from sof_memory.importer import (
    ImportIssue,
    ParsedFile,
    UnreadablePath,
    expand_paths,
    parse_file,
    sample_corpus,
)
from sof_memory.metadata import MAX_METADATA_DEPTH, text_problem, value_problem
from sof_memory.settings import MAX_LIMIT, configured_limit, is_limit

#: Show a progress bar from this many files on (when stderr is a terminal).
PROGRESS_MIN_FILES = 5


def open_backend() -> MemoryBackend:
    """The configured backend, from the plugins the ``sof`` command loaded (as ``sof run``
    selects it); loading them again would configure every plugin twice. Loaded afresh when
    the settings changed since (a process that calls this directly, as tests do)."""
    from sof_core import PluginManager, get_plugin_manager
    from sof_core.config import load_config
    from sof_memory.selection import select_backend

    config = load_config()
    manager = get_plugin_manager()
    if manager.config != config:
        manager = PluginManager(config).load()
    return select_backend(config.settings_for("memory"), manager.registry)


def load_settings() -> dict[str, Any]:
    """``plugin_settings.memory`` as the skill gets it (``config.settings_for("memory")``)."""
    from sof_core.config import load_config

    return load_config().settings_for("memory")


#: Replaced in tests that drive the commands through argparse in-process.
backend_factory: Callable[[], MemoryBackend] = open_backend
settings_factory: Callable[[], Mapping[str, Any]] = load_settings


def register(subparsers: Any) -> None:
    """Add ``sof memory`` and its sub-commands to the ``sof`` parser."""
    memory = subparsers.add_parser(
        "memory",
        help="add, import, search and inspect SOF's memory store",
        description="Manage the documents MemoryRetrievalSkill searches.",
    )
    memory.set_defaults(func=lambda args: _help(memory))
    sub = memory.add_subparsers(dest="memory_command", metavar="COMMAND")

    add = sub.add_parser("add", help="store one document")
    add.add_argument("text", metavar="TEXT", type=_text, help="the document text")
    add.add_argument("--source", default="cli", type=_text,
                     help="where it came from (default: cli)")
    add.add_argument(
        "--meta", action="append", default=[], metavar="KEY=VALUE", type=_text,
        help="metadata entry; VALUE is parsed as JSON when it can be (repeatable); "
        "NaN and infinity are rejected",
    )
    add.add_argument("--json", action="store_true", help="print the result as JSON")
    add.set_defaults(func=cmd_add)

    imp = sub.add_parser(
        "import", help="import .md/.txt/.jsonl files or folders, or the sample corpus"
    )
    imp.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to import")
    imp.add_argument("--sample", action="store_true", help="import the bundled sample corpus")
    imp.add_argument(
        "--split", choices=["file", "section"], default="file",
        help="text files: one document per file, or per markdown section / paragraph",
    )
    imp.add_argument("--json", action="store_true", help="print a summary as JSON")
    imp.set_defaults(func=cmd_import)

    search = sub.add_parser("search", help="search memory like MemoryRetrievalSkill does")
    search.add_argument("query", metavar="QUERY", type=_text)
    search.add_argument(
        "--limit", type=_limit, default=None, metavar="N",
        help=f"at most N results, 1 to {MAX_LIMIT} (default: plugin_settings.memory.limit, "
        "else 5)",
    )
    search.add_argument("--source", action="append", default=[], type=_text,
                        help="only this source")
    search.add_argument("--tag", action="append", default=[], type=_text,
                        help="only documents with tag")
    search.add_argument(
        "--profile", default=None, type=_text,
        help="only documents of this profile or of none ('general': every document)",
    )
    search.add_argument("--json", action="store_true", help="print results as JSON")
    search.set_defaults(func=cmd_search)

    stats = sub.add_parser("stats", help="how many documents, where they are stored")
    stats.add_argument("--json", action="store_true", help="print as JSON")
    stats.set_defaults(func=cmd_stats)


# --- commands ------------------------------------------------------------------------------


def cmd_add(args: argparse.Namespace) -> int:
    if not args.text.strip():
        return _fail("add", "TEXT is empty; give the document's text, e.g. "
                     "sof memory add \"Capsules are shared summaries\"")
    for name, value in (("TEXT", args.text), ("--source", args.source)):
        problem = text_problem(value)
        if problem:
            return _fail("add", f"{name} {problem}; pass UTF-8 text")
    metadata: dict[str, Any] = {}
    for item in args.meta:
        try:
            key, value = _meta_pair(item)
        except ValueError as exc:
            return _fail("add", str(exc))
        metadata[key] = value
    backend = backend_factory()
    refused = _nowhere_to_keep(backend, "add")
    if refused is not None:
        return refused
    doc_id = backend.add(args.text, source=args.source, metadata=metadata)
    if args.json:
        _print_json({"id": doc_id, "backend": display_name(backend)})
    else:
        print(f"stored {doc_id} in memory backend {display_name(backend)!r}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import what can be imported; report the rest.

    A bad line is skipped with a warning (exit 0); a path that cannot be read, or a file the
    backend refuses, is skipped with a warning and makes the exit code 1.
    """
    if not args.paths and not args.sample:
        return _fail("import", "give PATH... or --sample")
    try:
        files, issues = expand_paths(args.paths)
    except UnreadablePath as exc:
        return _fail("import", str(exc))
    backend = backend_factory()
    refused = _nowhere_to_keep(backend, "import")
    if refused is not None:
        return refused
    # "new": what this import added. The SQLite store counts it as it writes; for another
    # backend it is the growth of its document count, which another writer meanwhile
    # would also change (kept within what this import stored).
    counted = getattr(backend, "add_many_counted", None)
    before = None if callable(counted) else _count(backend)
    stored = 0
    added = 0
    batches: list[Callable[[], ParsedFile]] = []
    if args.sample:
        batches.append(sample_corpus)
    batches.extend(functools.partial(parse_file, path, args.split) for path in files)
    for parsed in _with_progress(batches):
        issues.extend(parsed.issues)
        try:
            if callable(counted):
                ids, fresh = counted(parsed.documents)
                added += fresh
            else:
                ids = backend.add_many(parsed.documents)
            stored += len(ids)
        except (TypeError, ValueError) as exc:  # a backend that refuses what we checked
            issues.append(ImportIssue(parsed.path, None, f"not stored: {exc}", True))
    new: int | None = added
    if not callable(counted):
        after = _count(backend)
        new = (None if before is None or after is None
               else min(max(after - before, 0), stored))
    for issue in issues:
        print(f"warning: {issue}", file=sys.stderr)
    skipped_lines = sum(1 for i in issues if i.line is not None)
    skipped_files = sum(1 for i in issues if i.skipped_file)
    summary = {
        "backend": display_name(backend),
        "files": len(files) + (1 if args.sample else 0),
        "documents": stored,
        "new": new,
        "skipped_lines": skipped_lines,
        "skipped_files": skipped_files,
        "issues": [str(i) for i in issues],
    }
    if args.json:
        _print_json(summary)
    else:
        fresh = "" if new is None else f" ({new} new, {stored - new} already present)"
        skipped = (
            f"; skipped {skipped_lines} bad line(s) and {skipped_files} path(s) "
            "(warnings above)" if skipped_lines or skipped_files else ""
        )
        others = len(issues) - skipped_lines - skipped_files
        notes = f"; {others} other warning(s)" if others else ""
        print(
            f"imported {stored} document(s){fresh} from {summary['files']} file(s) "
            f"into memory backend {display_name(backend)!r}{skipped}{notes}"
        )
    return 1 if skipped_files else 0


def cmd_search(args: argparse.Namespace) -> int:
    values = [("QUERY", args.query), ("--profile", args.profile or "")]
    values += [("--source", v) for v in args.source] + [("--tag", v) for v in args.tag]
    for name, value in values:
        problem = text_problem(value)
        if problem:
            return _fail("search", f"{name} {problem}; pass UTF-8 text")
    # The skill's limit: plugin_settings.memory.limit, checked the same way (a bad one is a
    # ConfigError even when --limit overrides it, as `sof run` would fail on it).
    limit = configured_limit(settings_factory())
    if args.limit is not None:
        limit = args.limit
    backend = backend_factory()
    filters = MemoryFilters(
        sources=tuple(args.source), tags=tuple(args.tag),
        profile=profile_filter(args.profile),  # "general" filters nothing, as in the skill
    )
    hits = [_as_dict(h) for h in list(backend.search(args.query, limit, filters))[:limit]]
    if args.json:
        _print_json(hits)
        return 0
    if not hits:
        print("no matching memories")
        return 0
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank}. [{hit['score']:.3f}] {hit['source'] or '(no source)'}  id={hit['id']}")
        print(textwrap.indent(textwrap.fill(hit["text"], width=88), "   "))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    stats = backend_factory().stats()
    if args.json:
        _print_json(stats)
    else:
        width = max((len(k) for k in stats), default=0)
        for key, value in stats.items():
            print(f"{key:<{width}}  {value}")
    return 0


# --- helpers -------------------------------------------------------------------------------


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _nowhere_to_keep(backend: MemoryBackend, command: str) -> int | None:
    """The error of a command that would store into the SQLite database kept in RAM for
    want of a home directory (its documents gone at exit), or None."""
    from sof_memory.paths import unplaced
    from sof_memory.sqlite_backend import SQLiteMemoryBackend

    if not isinstance(backend, SQLiteMemoryBackend):
        return None
    problem = unplaced(settings_factory())
    if problem is None:
        return None
    return _fail(command, f"{problem} (what it stores would be lost at exit)")


def _fail(command: str, message: str) -> int:
    """An expected error: one line on stderr, exit code 2 (as for every ``sof`` command)."""
    print(f"sof memory {command}: error: {message}", file=sys.stderr)
    return 2


def _text(value: str) -> str:
    """An argument that is text (not a path), as the UTF-8 it was typed in: under a locale
    whose encoding is not UTF-8 (``LC_ALL=C``, ``PYTHONUTF8=0``) Python gives ``café`` as
    ``'caf\\udcc3\\udca9'``. Bytes that are not UTF-8 are kept, for ``text_problem`` to
    refuse. (``sof``'s own commands read their text arguments the same way.)"""
    if value.isascii():
        return value
    try:
        return os.fsencode(value).decode("utf-8")
    except UnicodeError:
        return value


def _meta_pair(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE as JSON when it parses (else the text); raises ValueError."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--meta expects KEY=VALUE, got {text!r}")
    problem = text_problem(text)
    if problem:
        raise ValueError(f"--meta {text!r} {problem}; pass UTF-8 text")
    try:
        value: Any = json.loads(raw)
    except RecursionError:
        raise ValueError(
            f"--meta {key}: the JSON value is nested too deeply to parse; at most "
            f"{MAX_METADATA_DEPTH} levels are stored"
        ) from None
    except ValueError:
        value = raw
    problem = value_problem(value, f"--meta {key}")
    if problem:
        raise ValueError(problem)
    return key, value


def _limit(text: str) -> int:
    """``--limit``: an integer from 1 to ``MAX_LIMIT``, the range of the limit setting."""
    try:
        value = int(text)
    except ValueError:  # not a number, or too many digits to convert
        value = None
    if value is None or not is_limit(value):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise argparse.ArgumentTypeError(
            f"expected an integer from 1 to {MAX_LIMIT}, got {shown!r}"
        )
    return value


def _count(backend: MemoryBackend) -> int | None:
    value = backend.stats().get("documents")
    return value if isinstance(value, int) else None


def _as_dict(hit: Any) -> dict[str, Any]:
    if isinstance(hit, MemoryHit):
        return hit.to_dict()
    return dict(hit)


def _print_json(data: Any) -> None:
    """Readable JSON (``é`` as itself), or ``\\u00e9`` escapes where standard output cannot
    encode the text (an ASCII locale): JSON stays JSON whatever the terminal."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except (UnicodeError, LookupError):
        text = json.dumps(data, indent=2)
    print(text)


def _with_progress(batches: Sequence[Callable[[], ParsedFile]]) -> Iterator[ParsedFile]:
    """Parse batches one by one (the caller stores each), with a progress bar on a terminal
    when there are many files."""
    if len(batches) < PROGRESS_MIN_FILES or not sys.stderr.isatty():
        for load in batches:
            yield load()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("import", total=len(batches))
        for load in batches:
            yield load()
            progress.advance(task)


__all__ = [
    "ImportIssue", "backend_factory", "load_settings", "open_backend", "register",
    "settings_factory",
]
