"""The installed SOF plugins, read from package metadata files only (no import, no parse).

``sof --version`` lists them, and the configuration asks whether an unknown ``SOF_...``
environment variable belongs to one of them; both run before (or without) plugin
discovery, which goes through ``importlib.metadata`` and costs several times more (it is
what checks and loads plugins: ``sof_core.plugins.loader``). A module of its own, below every
layer, so that the configuration and the CLI share it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence

#: The entry-point group SOF plugins register under (``sof_core.plugins.ENTRY_POINT_GROUP``).
ENTRY_POINT_GROUP = "sof.plugins"


def installed_plugins(path: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    """``(entry-point name, distribution, version)`` of every installed plugin, sorted.

    Read straight from the ``.dist-info``/``.egg-info`` folders on ``sys.path`` (what
    ``importlib.metadata`` reads, without its cost): ``sof --version`` stays fast. As for
    imports, the first distribution of a name on ``sys.path`` wins; unreadable metadata is
    skipped (``sof plugins`` names it). ``path``: the folders to look in instead of
    ``sys.path`` (another process's import path).
    """
    found: list[tuple[str, str, str]] = []
    for key, path_, meta_file, plugins in _plugin_distributions(path):
        dist, version = _name_and_version(_read(os.path.join(path_, meta_file)))
        found.extend((plugin, dist or key, version or "?") for plugin in plugins)
    return sorted(found)


def child_import_path(environ: Mapping[str, str]) -> list[str]:
    """The folders a Python started with ``environ`` (this interpreter, a script's folder
    aside) finds distributions in: its ``PYTHONPATH`` first, then this process's
    ``sys.path``. Enough to ask ``installed_plugins`` what a ``sof`` subprocess loads."""
    extra = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return [*extra, *sys.path]


def plugin_variable(var: str, path: Sequence[str] | None = None) -> bool:
    """Whether ``var`` (``SOF_MEMORY_PATH``) is an installed plugin's: it is ``SOF_<NAME>`` or
    starts with ``SOF_<NAME>_`` for a plugin's entry-point name (upper case, ``-`` as
    ``_``), the configuration's rule for not warning about it. Set such a variable for a
    child process only when this holds, or SOF warns there about a variable nobody reads."""
    rest = var[len("SOF_"):] if var.startswith("SOF_") else None
    if not rest:
        return False
    names = {name.upper().replace("-", "_") for name, _, _ in installed_plugins(path)}
    return any(rest == name or rest.startswith(name + "_") for name in names if name)


def plugin_metadata_stamps() -> list[tuple[str, int]]:
    """``(metadata folder, modification time in ns)`` of every installed plugin's
    distribution: what changes when a plugin is installed, upgraded or removed (the CLI keys
    its cache of plugin commands on it). Same rules and cost as ``installed_plugins``."""
    stamps: list[tuple[str, int]] = []
    for _, path, meta_file, _ in _plugin_distributions():
        try:
            stamps.append((path, os.stat(os.path.join(path, meta_file)).st_mtime_ns))
        except OSError:
            stamps.append((path, 0))
    return stamps


def distribution_folders(
    path: Sequence[str] | None = None,
) -> Iterator[tuple[str, str, str]]:
    """``(key, metadata folder, metadata file name)`` of each distribution on ``path``
    (``sys.path``): the first of a name wins, as for imports and ``importlib.metadata``,
    whose name normalisation gives ``key``."""
    seen: set[str] = set()
    for folder in sys.path if path is None else path:
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:
            continue
        for name in names:
            stem, _, suffix = name.rpartition(".")
            if suffix == "dist-info":
                meta_file = "METADATA"
            elif suffix == "egg-info":
                meta_file = "PKG-INFO"
            else:
                continue
            key = _SEPARATORS.sub("_", stem.partition("-")[0]).lower()
            if key in seen:
                continue
            seen.add(key)
            yield key, os.path.join(folder or ".", name), meta_file


_SEPARATORS = re.compile(r"[-_.]+")


def _plugin_distributions(
    path: Sequence[str] | None = None,
) -> list[tuple[str, str, str, list[str]]]:
    """``(key, metadata folder, metadata file name, plugin names)`` of each distribution on
    ``path`` (``sys.path``) that declares SOF plugins; the first of a name wins, as for
    imports."""
    found: list[tuple[str, str, str, list[str]]] = []
    for key, folder, meta_file in distribution_folders(path):
        entries = group_entries(_read(os.path.join(folder, "entry_points.txt")))
        if entries:
            found.append((key, folder, meta_file, [name for name, _ in entries]))
    return found


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return ""


def group_entries(text: str, group: str = ENTRY_POINT_GROUP, *,
                  strict: bool = False) -> list[tuple[str, str]] | None:
    """``(name, value)`` of the entries in the ``[group]`` section of an
    ``entry_points.txt``. With ``strict``, None when a line of any section has no ``=``
    (``importlib.metadata`` fails on such a file); otherwise such a line is skipped."""
    entries: list[tuple[str, str]] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
            continue
        name, equals, value = line.partition("=")
        if not equals:
            if strict:
                return None
            continue
        if inside:
            entries.append((name.strip(), value.strip()))
    return entries


def _name_and_version(text: str) -> tuple[str | None, str | None]:
    name = version = None
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line
        if line.startswith("Name:"):
            name = line[5:].strip()
        elif line.startswith("Version:"):
            version = line[8:].strip()
    return name, version


__all__ = ["ENTRY_POINT_GROUP", "child_import_path", "distribution_folders", "group_entries",
           "installed_plugins", "plugin_metadata_stamps", "plugin_variable"]
