"""Every exception sof-web raises on purpose, in one tree (the httpx way).

    sof_core.SOFError
    ├── sof_core.ConfigError
    │   └── WebConfigError ...... a setting (plugin_settings.web.* or SOF_WEB_*) is invalid;
    │                             ``key`` names it
    └── sof_core.SkillExecutionError
        ├── WebInputError ....... the optional ``urls`` input is not a list of strings
        └── WebFetchError ....... no URL could be fetched; ``failures`` says, per URL, which
                                  guard refused it or what went wrong

A URL that fails while others succeed is not an exception: its ``external_content`` entry
carries ``error`` and ``error_code`` and the UIF gets a warning. Each class pickles with its
attributes, so the errors arrive intact from the isolation worker the tool runs in.
"""

from __future__ import annotations

from typing import Any

from sof_core import ConfigError, SkillExecutionError

SKILL_NAME = "AgentZeroWebBrowserTool"
#: The ``plugin_settings`` table the tool reads (``sof_web.settings.PLUGIN``). Here, not only
#: in ``settings``, so that configuring the tool at start-up does not import the settings
#: (and the address checks their allow-list brings).
PLUGIN = "web"


class WebConfigError(ConfigError):
    """A web setting is invalid; the message names the setting, where it came from and the fix."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.key))


class WebInputError(SkillExecutionError):
    """The ``urls`` input does not have the documented shape; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.detail = message
        super().__init__(f"input {key!r}: {message}", SKILL_NAME)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.detail))


class WebFetchError(SkillExecutionError):
    """Not one of the URLs could be fetched.

    ``failures`` is a list of ``{"url", "error_code", "error"}`` dicts, one per URL, in the
    order the URLs were found; ``error_code`` is one word (see docs/plugins/web.md), ``error``
    one sentence naming the guard or the failure and what to do.
    """

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        self.failures = [dict(f) for f in failures]
        count = len(self.failures)
        lines = "; ".join(f"{f['url']}: {f['error']}" for f in self.failures)
        noun = "URL" if count == 1 else f"all {count} URLs"
        super().__init__(f"could not fetch {noun}: {lines}", SKILL_NAME)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.failures,))


__all__ = ["WebConfigError", "WebFetchError", "WebInputError"]
