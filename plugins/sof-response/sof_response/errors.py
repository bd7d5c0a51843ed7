"""Every exception sof-response raises on purpose, in one tree (the httpx way).

    sof_core.SOFError
    ├── sof_core.ConfigError
    │   └── ResponseConfigError ..... a setting is invalid, or names a backend or generation
    │                                 controller that is not installed (has ``key``)
    └── sof_core.SkillExecutionError
        ├── ResponseInputError ...... an input (memory_results, conflicts, tool_results), or
        │                             the messages given to a backend's generate(), does
        │                             not have the documented shape (has ``key``)
        └── LLMBackendError ......... a language-model backend produced no usable text
            │                         (has ``backend``, ``url`` and ``reason``)
            ├── LLMConnectionError .. the server could not be reached
            ├── LLMTimeoutError ..... the generation did not finish by its deadline (the
            │                         backend's timeout or the skill's remaining time)
            ├── LLMResponseTooLargeError  the answer ran past max_response_bytes, on the
            │                         wire or decompressed (has ``which`` and ``limit``)
            ├── LLMHTTPError ........ the server answered with an HTTP error status
            │   │                     (has ``status`` and ``server_message``)
            │   └── LLMAuthError .... ... 401 or 403: the API key is missing or wrong
            ├── LLMProtocolError .... the body was not the JSON / SSE the API promises
            └── LLMEmptyAnswerError . the answer was empty or only whitespace (raised by
                                      the skill, for any backend but the extractive one)

Catch ``LLMBackendError`` to handle any model failure, or the exact class you care about.
``reason`` is one short word per cause ("connection", "timeout", "deadline", "size", "http",
"auth", "protocol", "empty", "error"); the skill records it as ``generation["fallback_reason"]``.
"""

from __future__ import annotations

from sof_core import ConfigError, SkillExecutionError

SKILL_NAME = "ResponseGenerationSkill"


class ResponseConfigError(ConfigError):
    """A response setting is invalid or names a component that is not installed."""


class ResponseInputError(SkillExecutionError):
    """An input of ResponseGenerationSkill, or the ``messages`` given to a backend's
    ``generate()``, has the wrong shape; ``key`` names it. ``skill`` is None for the latter."""

    def __init__(self, key: str, message: str, *, skill: str | None = SKILL_NAME) -> None:
        self.key = key
        super().__init__(f"input {key!r}: {message}", skill)


class LLMBackendError(SkillExecutionError):
    """A language-model backend could not produce text; the message says where and why."""

    #: One word for the cause, recorded by the skill when it falls back to extractive.
    reason = "error"

    def __init__(self, message: str, *, backend: str, url: str | None = None) -> None:
        self.backend = backend
        self.url = url
        where = f" ({url})" if url else ""
        super().__init__(f"LLM backend {backend!r}{where}: {message}")


class LLMConnectionError(LLMBackendError):
    """The server could not be reached (refused, DNS failure, connection reset)."""

    reason = "connection"


class LLMTimeoutError(LLMBackendError):
    """The whole generation (connect, send, the entire answer) did not finish in time.

    ``reason`` is "timeout" when the backend's own ``timeout`` setting ran out first and
    "deadline" when the caller's deadline (the skill's remaining time) did; ``limit`` is the
    number of seconds the generation was given.
    """

    reason = "timeout"

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        url: str | None = None,
        reason: str = "timeout",
        limit: float | None = None,
    ) -> None:
        self.reason = reason
        self.limit = limit
        super().__init__(message, backend=backend, url=url)


class LLMResponseTooLargeError(LLMBackendError):
    """The answer ran past ``max_response_bytes``; reading stopped at the limit.

    ``which`` is "raw" (bytes received on the wire) or "decoded" (after decompression);
    ``limit`` is the setting's value.
    """

    reason = "size"

    def __init__(
        self, message: str, *, backend: str, url: str | None = None, which: str, limit: int
    ) -> None:
        self.which = which
        self.limit = limit
        super().__init__(message, backend=backend, url=url)


class LLMHTTPError(LLMBackendError):
    """The server answered with an HTTP error status; ``server_message`` is its own words."""

    reason = "http"

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

    reason = "auth"


class LLMProtocolError(LLMBackendError):
    """The response body was malformed: bad JSON, bad SSE, or missing fields."""

    reason = "protocol"


class LLMEmptyAnswerError(LLMBackendError):
    """The model's answer was empty or nothing but whitespace (not cut by a controller)."""

    reason = "empty"


__all__ = [
    "LLMAuthError",
    "LLMBackendError",
    "LLMConnectionError",
    "LLMEmptyAnswerError",
    "LLMHTTPError",
    "LLMProtocolError",
    "LLMResponseTooLargeError",
    "LLMTimeoutError",
    "ResponseConfigError",
    "ResponseInputError",
]
