"""Every exception sof-response raises on purpose, in one tree (the httpx way).

    sof_core.SOFError
    ├── sof_core.ConfigError
    │   └── ResponseConfigError ..... a setting is invalid, or names a backend or generation
    │                                 controller that is not installed (has ``key``)
    └── sof_core.SkillExecutionError
        ├── ResponseInputError ...... an input (memory_results, conflicts, tool_results)
        │                             does not have the documented shape (has ``key``)
        └── LLMBackendError ......... a language-model backend produced no usable text
            │                         (has ``backend`` and ``url``)
            ├── LLMConnectionError .. the server could not be reached
            ├── LLMTimeoutError ..... the server did not answer within the timeout
            ├── LLMHTTPError ........ the server answered with an HTTP error status
            │   │                     (has ``status`` and ``server_message``)
            │   └── LLMAuthError .... ... 401 or 403: the API key is missing or wrong
            └── LLMProtocolError .... the body was not the JSON / SSE the API promises

Catch ``LLMBackendError`` to handle any model failure, or the exact class you care about.
"""

from __future__ import annotations

from sof_core import ConfigError, SkillExecutionError

SKILL_NAME = "ResponseGenerationSkill"


class ResponseConfigError(ConfigError):
    """A response setting is invalid or names a component that is not installed."""


class ResponseInputError(SkillExecutionError):
    """An input of ResponseGenerationSkill has the wrong shape; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"input {key!r}: {message}", SKILL_NAME)


class LLMBackendError(SkillExecutionError):
    """A language-model backend could not produce text; the message says where and why."""

    def __init__(self, message: str, *, backend: str, url: str | None = None) -> None:
        self.backend = backend
        self.url = url
        where = f" ({url})" if url else ""
        super().__init__(f"LLM backend {backend!r}{where}: {message}")


class LLMConnectionError(LLMBackendError):
    """The server could not be reached (refused, DNS failure, connection reset)."""


class LLMTimeoutError(LLMBackendError):
    """The server did not answer (or stopped sending) within the configured timeout."""


class LLMHTTPError(LLMBackendError):
    """The server answered with an HTTP error status; ``server_message`` is its own words."""

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        url: str | None,
        status: int,
        server_message: str,
    ) -> None:
        self.status = status
        self.server_message = server_message
        super().__init__(message, backend=backend, url=url)


class LLMAuthError(LLMHTTPError):
    """HTTP 401 or 403: set SOF_LLM_API_KEY (or plugin_settings.response.api_key)."""


class LLMProtocolError(LLMBackendError):
    """The response body was malformed: bad JSON, bad SSE, or missing fields."""


__all__ = [
    "LLMAuthError",
    "LLMBackendError",
    "LLMConnectionError",
    "LLMHTTPError",
    "LLMProtocolError",
    "LLMTimeoutError",
    "ResponseConfigError",
    "ResponseInputError",
]
