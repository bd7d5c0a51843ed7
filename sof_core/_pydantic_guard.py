"""Keep pydantic's own plugin scan from stopping SOF; imported for that effect alone.

The first pydantic model a process builds makes pydantic scan every installed distribution's
entry points (group ``pydantic``). One malformed ``entry_points.txt`` in any distribution (a
group line without ``=``, binary content) makes that scan raise, and with it the definition
of SOF's models (``UIF``, ``SOFConfig``): every host would stop at import.

Importing this module runs the scan once, inside a try, by building an empty model; the
modules that define SOF's models import it first. Only if the scan fails are pydantic plugins
switched off for the process (``PYDANTIC_DISABLE_PLUGINS=__all__``, which pydantic reads on
every later model build), with a warning naming the broken distribution. When the scan works,
nothing changes and nothing is paid that pydantic would not pay at its first model anyway.
"""

from __future__ import annotations

import logging
import os

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
            broken.append(str(name))
    return broken


def guard_plugin_scan() -> None:
    """Run pydantic's plugin scan now; on failure, turn pydantic plugins off and say why."""
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") in ("__all__", "1", "true"):
        return
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
