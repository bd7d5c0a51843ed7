"""sof-web: AgentZeroWebBrowserTool, a web fetcher for SOF that treats the web as hostile.

Public surface: the tool, its settings, the fetcher (for callers that want the guards without
a plan) and the errors. Everything else is internal.
"""

from __future__ import annotations

from sof_web.addresses import AllowList, why_blocked
from sof_web.errors import WebConfigError, WebFetchError, WebInputError
from sof_web.fetch import ALLOWED_TYPES, Fetcher, FetchResult, system_resolver
from sof_web.settings import WebSettings
from sof_web.skill import AgentZeroWebBrowserTool

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
