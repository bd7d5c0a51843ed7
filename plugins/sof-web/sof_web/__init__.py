"""sof-web: AgentZeroWebBrowserTool, a web fetcher for SOF that treats the web as hostile.

Public surface: the tool, its settings, the fetcher (for callers that want the guards without
a plan) and the errors. Everything else is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_core import lazy_exports
from sof_web.errors import WebConfigError, WebFetchError, WebInputError
from sof_web.skill import AgentZeroWebBrowserTool

if TYPE_CHECKING:
    from sof_web.addresses import AllowList, why_blocked
    from sof_web.fetch import ALLOWED_TYPES, Fetcher, FetchResult, system_resolver
    from sof_web.settings import WebSettings

#: Names imported on first use, from the module that defines them. ``sof_web.fetch`` imports
#: httpx (over 100 ms) and the settings their address checks: every process that loads the
#: installed plugins would otherwise pay for them without fetching anything.
_LAZY = {
    "ALLOWED_TYPES": "sof_web.fetch",
    "Fetcher": "sof_web.fetch",
    "FetchResult": "sof_web.fetch",
    "system_resolver": "sof_web.fetch",
    "AllowList": "sof_web.addresses",
    "why_blocked": "sof_web.addresses",
    "WebSettings": "sof_web.settings",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__version__ = "0.1.0"

__all__ = [
    "ALLOWED_TYPES",
    "AgentZeroWebBrowserTool",
    "AllowList",
    "FetchResult",
    "Fetcher",
    "WebConfigError",
    "WebFetchError",
    "WebInputError",
    "WebSettings",
    "system_resolver",
    "why_blocked",
]
