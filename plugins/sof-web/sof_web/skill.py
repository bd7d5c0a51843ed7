"""AgentZeroWebBrowserTool: fetches the web pages a query names, as untrusted content.

The tool reads URLs from the query (and from the optional ``urls`` input), fetches each with
every guard on (``sof_web.fetch``) and writes one entry per URL to ``external_content``
(SAM's key). It declares ``requires_external_access``: SOF's taint rule then lets its output
reach the response only through a vetting skill such as ContentVettingSkill.

Tools run in an isolation worker, whose environment is cleaned of ``SOF_WEB_*``; so the skill
takes those variables with it when it is pickled for the worker (``__getstate__``), and the
settings a run uses are the host's at the moment the call is sent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import sof_core
from sof_core import UIF, BaseToolModule
from sof_web.errors import PLUGIN, WebFetchError, WebInputError

if TYPE_CHECKING:
    from sof_core.config import SOFConfig
    from sof_web.fetch import Resolver
    from sof_web.settings import WebSettings

# The settings (with the address checks of their allow-list) and the URL finder are imported
# by the methods that use them: registering and configuring the tool, which every process
# that loads the plugin does, needs neither.

#: Time kept back from the skill's deadline to write the results after the last fetch.
RESERVE = 0.5


def core_deadline() -> float | None:
    """The running step's deadline from ``sof_core.current_deadline()``, where the core has it."""
    current = getattr(sof_core, "current_deadline", None)
    if not callable(current):
        return None
    value = current()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


class AgentZeroWebBrowserTool(BaseToolModule):
    """Fetches the http(s) URLs in the query; their text is untrusted ``external_content``."""

    skill_name = "AgentZeroWebBrowserTool"
    skill_version = "1.0.0"
    skill_description = (
        "Fetches the http/https URLs in the query (or the urls input) behind an SSRF guard, "
        "with time, size and content-type limits, and returns their readable text as "
        "untrusted external_content"
    )
    skill_category = "tool"
    required_inputs = ["input_query"]
    optional_inputs = [("urls", list)]
    output_keys = [("external_content", list)]
    requires_external_access = True
    permissions: ClassVar[tuple[str, ...]] = ("network",)
    can_run_parallel = True
    estimated_execution_time = 2.0
    max_execution_time = 60.0
    #: Five pages of 100k characters of text and 200k of HTML, with room to spare.
    max_output_bytes = 8 * 1024 * 1024
    #: For the rules planner (docs/planning.md): a URL in the query suggests this tool;
    #: ``can_handle_query`` is the exact test (the URLs ``execute`` would fetch).
    triggers: ClassVar[tuple[str, ...]] = (r"\bhttps?://",)

    def can_handle_query(self, query: str) -> bool:
        """Whether ``query`` names an http(s) URL this tool would fetch."""
        from sof_web.urls import find_urls

        return bool(find_urls(query or ""))

    def __init__(
        self,
        settings: WebSettings | Mapping[str, Any] | None = None,
        *,
        resolver: Resolver | None = None,
        config: SOFConfig | None = None,
    ) -> None:
        """``settings`` (overrides, or complete ``WebSettings``) win over config and
        environment; ``resolver`` replaces system DNS (it must pickle to reach the worker)."""
        super().__init__()
        self._explicit = settings
        self._resolver = resolver
        self._plugin_settings: dict[str, Any] = {}
        self._environ: dict[str, str] | None = None
        self._time_limit: float | None = None
        if config is not None:
            self.configure(config)

    def configure(self, config: SOFConfig) -> None:
        """Take ``plugin_settings["web"]`` from ``config`` (called by ``sof_configure``), and
        the time limit the tool policy gives this tool (``limits.<name>.max_execution_time``):
        in its isolation worker that is when it is killed, so its fetches must end first."""
        self._plugin_settings = config.settings_for(PLUGIN)
        top = getattr(config, "web_allowed_hosts", None)  # the top-level spelling
        if top is not None and "web_allowed_hosts" not in self._plugin_settings:
            self._plugin_settings = {**self._plugin_settings, "web_allowed_hosts": top}
        limits = (config.tool_policy or {}).get("limits", {}).get(self.skill_name, {})
        limit = limits.get("max_execution_time") if isinstance(limits, Mapping) else None
        self._time_limit = float(limit) if isinstance(limit, (int, float)) and not isinstance(
            limit, bool) and limit > 0 else None

    def __getstate__(self) -> dict[str, Any]:
        """Pickle with the host's ``SOF_WEB_*`` variables (the worker does not see them)."""
        from sof_web.settings import ENV_VARS

        state = dict(self.__dict__)
        state.pop("logger", None)
        if state.get("_environ") is None:
            state["_environ"] = {k: v for k, v in os.environ.items() if k in ENV_VARS}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        import logging

        self.logger = logging.getLogger(f"sof.skill.{self.skill_name}")

    def settings(self) -> WebSettings:
        """The effective settings: defaults < plugin_settings < environment < arguments."""
        from sof_web.settings import WebSettings

        if isinstance(self._explicit, WebSettings):
            return self._explicit
        environ = os.environ if self._environ is None else self._environ
        return WebSettings.resolve(self._plugin_settings, environ, **dict(self._explicit or {}))

    def urls(self, uif: UIF, settings: WebSettings) -> list[str]:
        """The URLs to fetch: the query's, then the ``urls`` input's, without duplicates."""
        from sof_web.urls import find_urls

        found = find_urls(uif.input_query or "")
        given = uif.intermediate_data.get("urls")
        if given is not None:
            if not isinstance(given, (list, tuple)) or not all(isinstance(u, str) for u in given):
                raise WebInputError(
                    "urls", f"must be a list of URL strings, got {type(given).__name__}"
                )
            found += [u.strip() for u in given if u.strip()]
        unique = list(dict.fromkeys(found))
        if len(unique) > settings.max_urls:
            uif.add_warning(
                f"{self.skill_name}: {len(unique)} URLs given; fetched the first "
                f"{settings.max_urls} (max_urls)"
            )
            unique = unique[: settings.max_urls]
        return unique

    def deadline(self, started: float) -> float:
        """When the last fetch must end: the step's deadline (``current_deadline()``, which
        the core also gives in an isolation worker; where there is none, the tool called
        outside a run, the policy's or the class's ``max_execution_time`` from ``started``)
        less a short reserve to write the results."""
        end = core_deadline()
        if end is None:
            limit = getattr(self, "_time_limit", None) or self.max_execution_time or 60.0
            end = started + limit
        return end - min(RESERVE, max(0.0, end - started) * 0.1)

    def execute(self, uif: UIF) -> UIF:
        started = time.monotonic()
        settings = self.settings()
        urls = self.urls(uif, settings)
        end = self.deadline(started)
        from sof_web.fetch import Fetcher  # httpx: imported when a fetch happens, not at load

        fetcher = Fetcher(settings, resolver=self._resolver)
        results = [fetcher.fetch(url, end) for url in urls]
        if results and all(r.error is not None for r in results):
            raise WebFetchError(
                [{"url": r.url, "error_code": r.error_code, "error": r.error} for r in results]
            )
        for result in results:
            if result.error is not None:
                uif.add_warning(f"{self.skill_name}: {result.url}: {result.error}")
            for note in result.notes:
                uif.add_warning(f"{self.skill_name}: {note}")
        uif.intermediate_data["external_content"] = [r.as_entry() for r in results]
        uif.add_log_entry(
            f"{self.skill_name}: fetched {sum(r.error is None for r in results)} of "
            f"{len(results)} URLs"
        )
        return uif


__all__ = ["AgentZeroWebBrowserTool", "core_deadline"]
