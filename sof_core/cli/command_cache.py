"""The commands installed plugins add, kept between runs so ``sof --help`` imports no plugin.

Listing a plugin's commands means importing the plugin (its ``sof_register_commands`` hook
adds them), which costs most of a ``sof --help`` (about 250 ms of 350 ms with the bundled
plugins). So whenever the plugins are loaded for the CLI and every one of them loaded and
added its commands cleanly, the names and one-line helps of the commands they added are
written to ``commands.json`` in SOF's user cache folder (``$XDG_CACHE_HOME/sof`` on Linux),
with what they depend on: SOF's version, the interpreter and its ``sys.path``, each installed
plugin distribution's metadata file and its time, the ``SOF_*`` variables, and the config
file's size and time. The top-level help uses an entry only while all of that is unchanged;
otherwise it loads the plugins as before and adds an entry. The file keeps the ``KEEP`` most
recent entries, so alternating environments (``sof`` and ``python -m sof_core.cli``, two
virtualenvs, a ``SOF_`` variable set in one shell only) each keep theirs instead of
rebuilding the other's every time. A plugin problem is never cached: while one exists the
help loads the plugins and warns every time.

A command's help text edited in an editable install without reinstalling it is shown as it
was until the plugin's metadata changes. The cache is best effort: a folder that cannot be
written or a file that cannot be read costs only the time the cache would have saved.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sof_core._installed import plugin_metadata_stamps
from sof_core._paths import cache_dir, config_file, read_cache_file
from sof_core._version import __version__

#: Bump when the file's layout changes.
FORMAT = 3
#: Entries kept (most recently written first): one per environment the CLI runs in.
KEEP = 4
#: A longer file is not read (a few kB with every bundled plugin's commands).
MAX_BYTES = 4 << 20


def cache_file() -> Path:
    return cache_dir() / "commands.json"


def fingerprint() -> str:
    """What the plugin commands depend on (metadata and ``stat`` calls only), as JSON text:
    compared whole, not as a digest, so a command run with no ``SOF_`` variable set does
    without importing ``hashlib`` (OpenSSL's bindings, about 5 ms of a 50 ms
    ``sof --version``). The ``SOF_`` variables' values are digested all the same: they may
    hold secrets (``SOF_LLM_API_KEY``, ``SOF_ADMIN_TOKEN``), and the cache is a file."""
    path = config_file()
    try:
        stat = os.stat(path)
        config = [stat.st_size, stat.st_mtime_ns]
    except OSError:
        config = None
    material = {
        "format": FORMAT,
        "sof": __version__,
        "python": sys.executable,
        "path": sys.path,
        "plugins": plugin_metadata_stamps(),
        "env": _environment_digest(),
        "config": [str(path), config],
    }
    return json.dumps(material, default=str, separators=(",", ":"))


def _environment_digest() -> str:
    """A digest of the ``SOF_`` variables (names and values), or "" when none is set."""
    variables = sorted((k, v) for k, v in os.environ.items() if k.startswith("SOF_"))
    if not variables:
        return ""
    import hashlib

    return hashlib.sha256(json.dumps(variables).encode("utf-8", "surrogateescape")).hexdigest()


def cached_commands(key: str) -> list[tuple[str, str]] | None:
    """The commands stored under ``key``, or None (no file, no entry for this key,
    unreadable, or not as ``remember`` writes it: a file edited by hand or cut short is
    rebuilt, never read as "no plugin commands" or as commands named by whatever it holds)."""
    for stored_key, stored in _entries():
        if stored_key == key:
            return _commands(stored)
    return None


def _entries() -> list[tuple[object, object]]:
    """The file's ``[key, commands]`` entries as written, or none when it cannot be read."""
    try:
        raw = read_cache_file(cache_file(), MAX_BYTES)
        if raw is None:
            return []
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    return [(entry[0], entry[1]) for entry in entries
            if isinstance(entry, list) and len(entry) == 2]


def _commands(stored: object) -> list[tuple[str, str]] | None:
    if not isinstance(stored, list):
        return None
    commands: list[tuple[str, str]] = []
    for item in stored:
        if not (isinstance(item, list) and len(item) == 2
                and all(isinstance(part, str) for part in item)
                and item[0].strip() and not item[0].startswith("-")):
            return None
        commands.append((item[0], item[1]))
    return commands


def remember(key: str, commands: Sequence[tuple[str, str]]) -> None:
    """Store ``commands`` under ``key``, first, keeping the ``KEEP - 1`` most recent other
    entries (atomically: a reader sees the old file or the new)."""
    import tempfile  # only when the cache is written: it imports shutil, random, bz2, lzma

    others = [[k, c] for k, c in _entries() if isinstance(k, str) and k != key]
    entries = [[key, [list(c) for c in commands]], *others[: KEEP - 1]]
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".commands-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"entries": entries}, out)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        pass
