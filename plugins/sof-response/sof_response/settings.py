"""The response plugin's settings, from ``plugin_settings["response"]`` and the environment.

Sources, lowest to highest (the order SOF itself uses): defaults, the config's
``plugin_settings["response"]`` table, environment variables, explicit constructor arguments.
Unknown keys and bad values raise ``ResponseConfigError`` naming the key and its source, so a
typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sof_core.config import layered_settings
from sof_response.errors import ResponseConfigError

PLUGIN = "response"

#: Environment variable -> setting. The LLM ones are shared with other LLM-using plugins.
ENV_VARS: dict[str, str] = {
    "SOF_RESPONSE_BACKEND": "backend",
    "SOF_LLM_BASE_URL": "base_url",
    "SOF_LLM_MODEL": "model",
    "SOF_LLM_API_KEY": "api_key",
    "SOF_LLM_TIMEOUT": "timeout",
    "SOF_LLM_MAX_RESPONSE_BYTES": "max_response_bytes",
    "SOF_USE_TPV_CONTROL": "use_tpv_control",
    "SOF_TPV_CONTROLLER": "controller",
    "SOF_TPV_MAX_TOKENS": "tpv_max_tokens",
    "SOF_RESPONSE_STREAM": "stream",
}

#: The variables for the LLM server alone (``SOF_LLM_*``): what an ``OpenAICompatibleBackend``
#: built directly reads for the settings it was not given (see ``ResponseSettings.for_backend``).
LLM_ENV_VARS: dict[str, str] = {
    var: key for var, key in ENV_VARS.items() if var.startswith("SOF_LLM_")
}

#: Default cap on an answer's size, on the wire and decompressed: far above any real answer
#: (a long streamed answer of 16k tokens is about 3 MB of server-sent events).
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
#: Longest ``timeout`` accepted (about 11.6 days); beyond it a socket cannot be told to wait.
MAX_TIMEOUT = 1_000_000.0

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class ResponseSettings:
    """Every setting of the response plugin (see docs/plugins/response.md)."""

    #: Name of the LLM backend to use ("extractive" needs no model at all).
    backend: str = "extractive"
    #: OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1 (Ollama).
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    #: Seconds one whole generation may take: connect, send, and the entire answer. The
    #: skill's remaining time shortens it further (see docs/plugins/response.md).
    timeout: float = 60.0
    #: Most bytes an answer may have, counted on the wire and again after decompression.
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    temperature: float | None = None
    #: Server-side cap on generated tokens (sent as ``max_tokens``); None sends nothing.
    max_tokens: int | None = None
    #: Stream the answer (always on when a generation controller is active).
    stream: bool = False
    #: Turn SAM's TPV generation control on, with the controller named by ``controller``.
    use_tpv_control: bool = False
    controller: str = "stop"
    #: Settings of the shipped "stop" controller.
    tpv_max_tokens: int = 512
    tpv_max_repeats: int = 3
    tpv_ngram: int = 4
    #: How many passages go into the prompt, and how many sentences an extractive answer has.
    max_passages: int = 8
    max_passage_chars: int = 1200
    max_sentences: int = 3
    #: When the LLM fails, answer extractively (with a warning) instead of failing the skill.
    fallback_to_extractive: bool = True
    #: Replaces the built-in system prompt.
    system_prompt: str | None = None

    @classmethod
    def resolve(
        cls,
        plugin_settings: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> ResponseSettings:
        """Merge defaults, ``plugin_settings``, environment and ``overrides``, validated."""
        values, sources = layered_settings(PLUGIN, plugin_settings, ENV_VARS, environ, overrides)
        return cls.from_mapping(values, sources)

    @classmethod
    def for_backend(
        cls, environ: Mapping[str, str] | None = None, **given: Any
    ) -> ResponseSettings:
        """Settings for an LLM backend built directly, outside the skill and its config.

        Each setting comes from ``given`` (None means not given), else its ``SOF_LLM_*``
        variable (``LLM_ENV_VARS``, read exactly as ``resolve`` reads them), else the default.
        The skill's own variables (``SOF_RESPONSE_*``, ``SOF_TPV_*``) are not read: they
        configure the skill, not a backend. ``environ={}`` reads no variables at all.
        """
        values, sources = layered_settings(PLUGIN, None, LLM_ENV_VARS, environ, given)
        return cls.from_mapping(values, sources)

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], sources: Mapping[str, str] | None = None
    ) -> ResponseSettings:
        """Build settings from raw values (strings from the environment are coerced)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        clean: dict[str, Any] = {}
        origins: dict[str, str] = {}  # where each value came from, for every error about it
        for key, value in values.items():
            where = origins[key] = (sources or {}).get(key, f'plugin_settings["{PLUGIN}"]')
            if key not in fields:
                known = ", ".join(sorted(fields))
                raise ResponseConfigError(
                    f"unknown response setting {key!r} (from {where}); known settings: {known}",
                    key=f"plugin_settings.{PLUGIN}.{key}",
                )
            default = fields[key].default
            clean[key] = _coerce(key, value, default, where)
        settings = cls(**clean)
        settings._check(origins)
        return settings

    def _check(self, sources: Mapping[str, str] | None = None) -> None:
        """Range checks; ``sources`` says where each given value came from, so that an
        error names the variable or config entry to fix, as type errors do."""
        def bad(key: str, why: str) -> ResponseConfigError:
            where = (sources or {}).get(key)
            origin = f" (from {where})" if where else ""
            return ResponseConfigError(
                f"response setting {key!r}{origin}: {why}", key=f"plugin_settings.{PLUGIN}.{key}"
            )

        if not self.backend.strip():
            raise bad("backend", "must name an LLM backend, e.g. 'extractive' or 'openai'")
        timeout_problem = check_timeout(self.timeout)
        if timeout_problem:
            raise bad("timeout", timeout_problem)
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise bad(
                "base_url",
                f"{self.base_url!r} must start with http:// or https://, "
                "e.g. http://127.0.0.1:11434/v1",
            )
        for key in ("tpv_max_tokens", "tpv_max_repeats", "tpv_ngram", "max_passages",
                    "max_passage_chars", "max_sentences", "max_response_bytes"):
            if getattr(self, key) < 1:
                raise bad(key, f"must be at least 1, got {getattr(self, key)}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise bad("max_tokens", f"must be at least 1, got {self.max_tokens}")

    def public(self) -> dict[str, Any]:
        """The settings without secrets, for metadata and listings."""
        data = dataclasses.asdict(self)
        if data["api_key"]:
            data["api_key"] = "***"
        return data


def check_timeout(value: float) -> str | None:
    """Why ``value`` is not a usable timeout, or None when it is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        0 < value <= MAX_TIMEOUT
    ) or not math.isfinite(value):
        return (
            f"must be a positive, finite number of seconds up to {MAX_TIMEOUT:g}, got {value!r}"
        )
    return None


def _coerce(key: str, value: Any, default: Any, where: str) -> Any:
    """Turn ``value`` into the type of the setting's default; errors name key and source."""
    def bad(expected: str) -> ResponseConfigError:
        return ResponseConfigError(
            f"response setting {key!r} (from {where}) must be {expected}, got {value!r}",
            key=f"plugin_settings.{PLUGIN}.{key}",
        )

    if value is None:
        if default is None:
            return None
        raise bad(f"a {type(default).__name__}")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad("true or false (1/0, yes/no, on/off)")
    if isinstance(default, int) or key == "max_tokens":
        if isinstance(value, bool):
            raise bad("an integer")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad("an integer") from None
    if isinstance(default, float) or key == "temperature":
        if isinstance(value, bool):
            raise bad("a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad("a number") from None
    if not isinstance(value, str):
        raise bad("a string")
    return value


__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "ENV_VARS",
    "LLM_ENV_VARS",
    "MAX_TIMEOUT",
    "ResponseSettings",
    "check_timeout",
]
