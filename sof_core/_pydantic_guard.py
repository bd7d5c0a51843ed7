"""Keep pydantic's own plugin scan from stopping SOF; imported for that effect alone.

The first pydantic model a process builds makes pydantic scan every installed distribution's
entry points (group ``pydantic``). One malformed ``entry_points.txt`` in any distribution (a
group line without ``=``, binary content) makes that scan raise, and with it the definition
of SOF's models (``UIF``, ``SOFConfig``): every host would stop at import.

Importing this module runs the scan once, inside a try; the modules that define SOF's models
import it first. The scan reads the metadata files directly and fills pydantic's plugin cache
as pydantic would (its own scan, through ``importlib.metadata``, costs ~40 ms a process);
where that quick read cannot stand for pydantic's (a zip or custom finder on the path, a
malformed file), pydantic scans itself, by building an empty model. Only if the scan fails
are pydantic plugins switched off for the process (``PYDANTIC_DISABLE_PLUGINS=__all__``,
which pydantic reads on every later model build), with a warning naming the broken
distribution. When the scan works, nothing changes and nothing is paid that pydantic would
not pay at its first model anyway.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger("sof")


def _unreadable_distributions() -> list[str]:
    """Installed distributions whose entry points cannot be parsed (the failure path only)."""
    import importlib.metadata

    broken: list[str] = []
    for dist in importlib.metadata.distributions():
        try:
            list(dist.entry_points)
        except Exception:
            try:
                name = dist.metadata["Name"] or "?"
            except Exception:
                name = "?"
            if str(name) not in broken:  # one name, however many copies are on sys.path
                broken.append(str(name))
    return broken


def _path_based(finder: object) -> bool:
    """Whether ``finder`` finds distributions in the folders of ``sys.path`` and nowhere
    else: the standard library's ``PathFinder``, or the ``importlib_metadata`` backport's
    ``MetadataPathFinder`` (which SOF's dependencies install, reading the same folders)."""
    import importlib.machinery

    if finder is importlib.machinery.PathFinder:
        return True
    kind = finder if isinstance(finder, type) else type(finder)
    return (kind.__module__.partition(".")[0] == "importlib_metadata"
            and kind.__name__ == "MetadataPathFinder")


def _pydantic_entry_points() -> list[tuple[str, str]] | None:
    """``(name, value)`` of each ``pydantic`` entry point, read from the metadata files on
    ``sys.path`` (the first distribution of a name wins, as for ``importlib.metadata``); None
    when this quick read cannot stand for ``importlib.metadata``'s: a zip or a custom finder
    on the path, or an ``entry_points.txt`` it would fail on (not UTF-8, a line without
    ``=``), so that pydantic's own scan runs and the guard below sees its failure."""
    import sys

    for finder in sys.meta_path:
        if hasattr(finder, "find_distributions") and not _path_based(finder):
            return None
    from sof_core._installed import distribution_folders, group_entries

    for folder in sys.path:
        folder = folder or "."
        if not os.path.isdir(folder) and os.path.exists(folder):
            return None  # a zip file: importlib.metadata reads inside it
    found: list[tuple[str, str]] = []
    for _, folder, _ in distribution_folders():
        try:
            with open(os.path.join(folder, "entry_points.txt"), "rb") as file:
                text = file.read().decode("utf-8")
        except (FileNotFoundError, NotADirectoryError):
            continue
        except (OSError, UnicodeDecodeError):
            return None
        entries = group_entries(text, "pydantic", strict=True)
        if entries is None:
            return None
        found.extend(entries)
    return found


def _fill_plugin_cache() -> bool:
    """Load pydantic's plugins into its cache the way ``pydantic.plugin._loader`` does, from
    the quick read above: pydantic's own scan (``importlib.metadata.entry_points``) reads
    every installed distribution's metadata, about 40 ms of each process's start with a
    hundred distributions installed. False, changing nothing, when this pydantic keeps its
    cache elsewhere, has scanned already, or the quick read cannot be trusted."""
    try:
        from pydantic.plugin import _loader
    except ImportError:
        return False
    if getattr(_loader, "_plugins", False) is not None or not isinstance(
            getattr(_loader, "_loading_plugins", None), bool):
        return False
    entries = _pydantic_entry_points()
    if entries is None:
        return False
    import importlib.metadata
    import warnings

    disabled = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
    plugins: dict[str, Any] = {}
    _loader._loading_plugins = True  # a plugin that builds models gets no plugins, as in pydantic
    try:
        for name, value in entries:
            if value in plugins or (disabled is not None and name in disabled.split(",")):
                continue
            entry_point = importlib.metadata.EntryPoint(name=name, value=value, group="pydantic")
            try:
                plugins[value] = entry_point.load()
            except (ImportError, AttributeError) as e:
                warnings.warn(
                    f"{e.__class__.__name__} while loading the `{name}` Pydantic plugin, "
                    f"this plugin will not be installed.\n\n{e!r}", stacklevel=2)
    finally:
        _loader._loading_plugins = False
    _loader._plugins = plugins
    return True


def guard_plugin_scan() -> None:
    """Run pydantic's plugin scan now; on failure, turn pydantic plugins off and say why."""
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") in ("__all__", "1", "true"):
        return
    try:
        if _fill_plugin_cache():
            return
    except Exception:  # a plugin's load failing otherwise: pydantic's own scan says so below
        from pydantic.plugin import _loader

        _loader._plugins = None
    from pydantic import BaseModel

    try:

        class _PluginScanProbe(BaseModel):
            pass

    except Exception as exc:
        os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
        names = ", ".join(repr(n) for n in _unreadable_distributions()) or "unknown"
        log.warning(
            "pydantic's plugin scan failed (%s: %s), caused by the entry_points.txt of "
            "installed distribution(s) %s; pydantic plugins are off for this process "
            "(PYDANTIC_DISABLE_PLUGINS=__all__). Reinstall or remove the distribution.",
            type(exc).__name__,
            exc,
            names,
        )


guard_plugin_scan()
