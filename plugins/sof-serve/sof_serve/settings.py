"""The server's settings: ``plugin_settings.serve`` in the config file, then CLI options.

Limits exist so one client cannot take the service down: a body larger than
``max_body_bytes`` is refused (413) before it is read in full, ``max_concurrency`` requests
are answered at once and up to ``max_queue`` more wait for a slot; past that a request gets
503 at once instead of queueing without bound, and a request still
unanswered after ``request_timeout`` seconds gets 504 (the run itself is bounded by SOF's own
``total_timeout``). The admin token comes from the environment only (``SOF_ADMIN_TOKEN``), so
it never lands in a config file that is shown by ``sof config show``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from typing import Any

from sof_core import ConfigError

#: Where the settings live: ``plugin_settings.serve``.
SETTINGS_KEY = "serve"
#: The environment variable holding the admin bearer token; unset or empty: admin is off.
ADMIN_TOKEN_ENV = "SOF_ADMIN_TOKEN"


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``sof serve`` and ``create_app`` can be told (see docs/operations.md)."""

    host: str = "127.0.0.1"
    port: int = 8765
    #: Largest request body accepted, in bytes (413 above it).
    max_body_bytes: int = 1_048_576
    #: Requests answered at once (worker threads running queries); a thread whose request
    #: timed out keeps its place until it returns.
    max_concurrency: int = 32
    #: Requests that may wait for one of those slots; past both, 503 with ``Retry-After``.
    max_queue: int = 1024
    #: Seconds a request may take before the client gets 504.
    request_timeout: float = 60.0
    #: Seconds a connection may take to send a whole request head, from connecting or from
    #: its previous answer; past it 408 and closed (slowloris, idle sockets).
    header_timeout: float = 10.0
    #: Seconds an idle keep-alive connection stays open after an answer (uvicorn's
    #: ``timeout_keep_alive``, whole seconds).
    keep_alive_timeout: float = 5.0
    #: Open connections at most; a new one past it is answered 503 and closed at once.
    max_connections: int = 4096
    #: Connections the OS queues before the server accepts them (``listen()`` backlog).
    backlog: int = 2048
    #: Finished runs kept for ``GET /v1/runs`` and the page (oldest dropped first).
    recent_runs: int = 200
    #: ``module:callable`` of the legacy pipeline; None: the fixed ``default_plan``.
    legacy: str | None = None
    #: Share (0..1) of queries also run on the other path in the background, to count
    #: where SOF's and legacy's answers disagree (the router's shadow mode).
    shadow_sample_rate: float = 0.0
    #: Bearer token of the admin endpoints; None: they answer 404.
    admin_token: str | None = None

    @classmethod
    def load(cls, plugin_settings: dict[str, Any] | None = None, **overrides: Any) -> ServeSettings:
        """Defaults, then ``plugin_settings.serve``, then ``overrides`` (None values skipped).

        Raises ``ConfigError`` naming the key for an unknown key or a bad value.
        """
        data: dict[str, Any] = {}
        known = {f.name for f in fields(cls)} - {"admin_token"}
        for key, value in (plugin_settings or {}).items():
            if key not in known:
                raise ConfigError(
                    f"plugin_settings.serve.{key} is not a setting of sof serve; known: "
                    + ", ".join(sorted(known)),
                    key=f"plugin_settings.serve.{key}",
                )
            data[key] = value
        data.update({k: v for k, v in overrides.items() if v is not None})
        token = os.environ.get(ADMIN_TOKEN_ENV, "").strip()
        data.setdefault("admin_token", token or None)
        settings = cls(**data)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ``ConfigError`` naming the first bad value."""
        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"plugin_settings.serve.{key}: {why}",
                               key=f"plugin_settings.serve.{key}")

        if not isinstance(self.host, str) or not self.host:
            raise bad("host", f"must be a host name or address, got {self.host!r}")
        if not _int(self.port) or not 0 <= self.port <= 65535:
            raise bad("port", f"must be a whole number 0-65535, got {self.port!r}")
        if not _int(self.max_queue) or self.max_queue < 0:
            raise bad("max_queue", f"must be a whole number >= 0, got {self.max_queue!r}")
        for key in ("max_body_bytes", "max_concurrency", "recent_runs", "max_connections",
                    "backlog"):
            value = getattr(self, key)
            if not _int(value) or value < 1:
                raise bad(key, f"must be a whole number >= 1, got {value!r}")
        for key in ("request_timeout", "header_timeout", "keep_alive_timeout"):
            timeout = getattr(self, key)
            if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                    or not math.isfinite(timeout) or timeout <= 0):
                raise bad(key, f"must be a number of seconds > 0, got {timeout!r}")
        rate = self.shadow_sample_rate
        if (isinstance(rate, bool) or not isinstance(rate, (int, float))
                or not 0 <= rate <= 1):
            raise bad("shadow_sample_rate", f"must be a number from 0 to 1, got {rate!r}")
        if self.legacy is not None and (not isinstance(self.legacy, str)
                                        or ":" not in self.legacy):
            raise bad("legacy", f"must be 'module:callable', got {self.legacy!r}")

    def with_(self, **changes: Any) -> ServeSettings:
        settings = replace(self, **changes)
        settings.check()
        return settings


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
