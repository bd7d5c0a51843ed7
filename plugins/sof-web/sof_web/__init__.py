"""sof-web: AgentZeroWebBrowserTool, a web fetcher for SOF that treats the web as hostile.

Public surface: the tool, its settings, the fetcher (for callers that want the guards without
a plan) and the errors. Everything else is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sof_web.addresses import AllowList, why_blocked
from sof_web.errors import WebConfigError, WebFetchError, WebInputError
from sof_web.settings import WebSettings
from sof_web.skill import AgentZeroWebBrowserTool

if TYPE_CHECKING:
    from sof_web.fetch import ALLOWED_TYPES, Fetcher, FetchResult, system_resolver

#: Names from ``sof_web.fetch``, imported on first use: it imports httpx (over 100 ms), which
#: every process that loads the installed plugins would otherwise pay without fetching.
_FROM_FETCH = frozenset({"ALLOWED_TYPES", "Fetcher", "FetchResult", "system_resolver"})


def __getattr__(name: str) -> Any:
    if name in _FROM_FETCH:
        from sof_web import fetch

        return getattr(fetch, name)
    raise AttributeError(f"module 'sof_web' has no attribute {name!r}")

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
