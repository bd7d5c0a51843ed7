"""A plugin's own settings, layered the way SOF's are: defaults < the config file's
``plugin_settings[<plugin>]`` < environment variables < arguments.

Plugins validate and coerce their values themselves (each knows its types); what they share
is where the values come from, and saying where a bad one came from. ``layered_settings``
returns both, so an error can name ``environment variable SOF_WEB_TIMEOUT`` rather than
just ``timeout``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def layered_settings(
    plugin: str,
    plugin_settings: Mapping[str, Any] | None,
    env_vars: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """``(values, sources)`` for plugin ``plugin``: each setting given, and where from.

    ``plugin_settings`` is the config file's ``plugin_settings[plugin]``; ``env_vars`` maps
    an environment variable to the setting it sets (blank values count as unset, others are
    stripped strings for the plugin to coerce); ``environ`` defaults to ``os.environ``;
    ``overrides`` are arguments, of which None means "not given". Later layers win.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in (plugin_settings or {}).items():
        values[key] = value
        sources[key] = f'plugin_settings["{plugin}"]'
    for var, key in env_vars.items():
        raw = environ.get(var)
        if raw is not None and raw.strip():
            values[key] = raw.strip()
            sources[key] = f"environment variable {var}"
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
            sources[key] = "arguments"
    return values, sources


__all__ = ["layered_settings"]
