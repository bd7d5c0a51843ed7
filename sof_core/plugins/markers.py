"""The pluggy markers of project ``sof``; plugins import ``hookimpl`` from ``sof_core``."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "sof"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
