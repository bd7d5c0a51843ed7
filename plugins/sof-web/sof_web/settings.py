"""The web tool's settings, from ``plugin_settings["web"]`` and ``SOF_WEB_*`` variables.

Sources, lowest to highest (the order SOF itself uses): defaults, the config's
``plugin_settings["web"]`` table, environment variables, explicit constructor arguments.
Unknown keys and bad values raise ``WebConfigError`` naming the key and its source, so a typo
(``web_allow_hosts``) never silently leaves the allow-list empty.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sof_core.config import layered_settings
from sof_web.addresses import AllowList
from sof_web.errors import PLUGIN, WebConfigError

#: Environment variable -> setting.
ENV_VARS: dict[str, str] = {
    "SOF_WEB_ALLOWED_HOSTS": "web_allowed_hosts",
    "SOF_WEB_CONNECT_TIMEOUT": "connect_timeout",
    "SOF_WEB_READ_TIMEOUT": "read_timeout",
    "SOF_WEB_FETCH_TIMEOUT": "fetch_timeout",
    "SOF_WEB_MAX_REDIRECTS": "max_redirects",
    "SOF_WEB_MAX_BYTES": "max_bytes",
    "SOF_WEB_MAX_URLS": "max_urls",
    "SOF_WEB_MAX_TEXT_CHARS": "max_text_chars",
    "SOF_WEB_MAX_HTML_CHARS": "max_html_chars",
    "SOF_WEB_USER_AGENT": "user_agent",
    "SOF_WEB_CA_BUNDLE": "ca_bundle",
}
#: Longest timeout accepted, in seconds.
MAX_TIMEOUT = 3600.0

_TIMEOUTS = ("connect_timeout", "read_timeout", "fetch_timeout")
_POSITIVE = ("max_bytes", "max_urls", "max_text_chars", "max_html_chars")


@dataclass(frozen=True)
class WebSettings:
    """Every setting of the web tool (see docs/plugins/web.md)."""

    #: Destinations the SSRF guard lets through: host names, ``*.domain`` wildcards,
    #: addresses or CIDR networks (a list, or one comma-separated string).
    web_allowed_hosts: tuple[str, ...] = ()
    #: Seconds to open a connection (TCP and TLS).
    connect_timeout: float = 5.0
    #: Seconds one read (or write) may wait for the server.
    read_timeout: float = 10.0
    #: Seconds one URL may take in all, redirects and the whole body included.
    fetch_timeout: float = 20.0
    #: Redirects followed per URL (each one checked by the guard again).
    max_redirects: int = 5
    #: Most body bytes read per URL (after content-encoding); the rest is cut and flagged.
    max_bytes: int = 2 * 1024 * 1024
    #: Most URLs fetched per call; the rest are skipped with a warning.
    max_urls: int = 5
    #: Longest ``text`` kept per URL (characters).
    max_text_chars: int = 100_000
    #: Longest ``html`` kept per URL (characters).
    max_html_chars: int = 200_000
    user_agent: str = "SOF-AgentZeroWebBrowserTool/1.0"
    #: CA bundle (PEM file) to verify servers with, instead of certifi's.
    ca_bundle: str | None = None
    allow_list: AllowList = field(default_factory=AllowList, compare=False, repr=False)

    @classmethod
    def resolve(
        cls,
        plugin_settings: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> WebSettings:
        """Merge defaults, ``plugin_settings``, environment and ``overrides``, validated."""
        values, sources = layered_settings(PLUGIN, plugin_settings, ENV_VARS, environ, overrides)
        return cls.from_mapping(values, sources)

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], sources: Mapping[str, str] | None = None
    ) -> WebSettings:
        """Build settings from raw values (strings from the environment are coerced)."""
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "allow_list"}
        clean: dict[str, Any] = {}
        for key, value in values.items():
            where = (sources or {}).get(key, f'plugin_settings["{PLUGIN}"]')
            if key not in fields:
                raise WebConfigError(
                    f"unknown web setting {key!r} (from {where}); known settings: "
                    + ", ".join(sorted(fields)),
                    key=f"plugin_settings.{PLUGIN}.{key}",
                )
            clean[key] = _coerce(key, value, fields[key].default, where)
        hosts = clean.get("web_allowed_hosts", ())
        try:
            allow = AllowList.parse(hosts)
        except ValueError as exc:
            where = (sources or {}).get("web_allowed_hosts", f'plugin_settings["{PLUGIN}"]')
            raise WebConfigError(
                f"web setting 'web_allowed_hosts' (from {where}): {exc}",
                key=f"plugin_settings.{PLUGIN}.web_allowed_hosts",
            ) from None
        settings = cls(**clean, allow_list=allow)
        settings._check(sources or {})
        return settings

    def _check(self, sources: Mapping[str, str]) -> None:
        """Ranges; a value out of range names where it came from, as a mistyped one does
        (a setting left at its default names none)."""

        def _bad(key: str, why: str) -> WebConfigError:
            where = sources.get(key)
            return _bad_value(key, why, where)

        for key in _TIMEOUTS:
            value = getattr(self, key)
            if not (0 < value <= MAX_TIMEOUT) or not math.isfinite(value):
                raise _bad(key, f"must be a positive number of seconds up to {MAX_TIMEOUT:g}, "
                                f"got {value!r}")
        for key in _POSITIVE:
            if getattr(self, key) < 1:
                raise _bad(key, f"must be at least 1, got {getattr(self, key)}")
        if self.max_redirects < 0:
            raise _bad("max_redirects", f"must be 0 or more, got {self.max_redirects}")
        if not self.user_agent.strip() or any(c in self.user_agent for c in "\r\n"):
            raise _bad("user_agent", "must be one non-empty line")
        if self.ca_bundle is not None and not os.path.isfile(self.ca_bundle):
            raise _bad("ca_bundle", f"{self.ca_bundle!r} is not a file; give a PEM CA bundle")

    def public(self) -> dict[str, Any]:
        """The settings as plain data, for metadata and listings."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data.pop("allow_list")
        data["web_allowed_hosts"] = list(self.web_allowed_hosts)
        return data


def _bad_value(key: str, why: str, where: str | None = None) -> WebConfigError:
    source = f" (from {where})" if where else ""
    return WebConfigError(f"web setting {key!r}{source}: {why}",
                          key=f"plugin_settings.{PLUGIN}.{key}")


def _coerce(key: str, value: Any, default: Any, where: str) -> Any:
    """Turn ``value`` into the type of the setting's default; errors name key and source."""

    def bad(expected: str) -> WebConfigError:
        return WebConfigError(
            f"web setting {key!r} (from {where}) must be {expected}, got {value!r}",
            key=f"plugin_settings.{PLUGIN}.{key}",
        )

    if key == "web_allowed_hosts":
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(v.strip() for v in value if v.strip())
        raise bad("a list of hosts/CIDRs or one comma-separated string")
    if value is None:
        if default is None:
            return None
        raise bad(f"a {type(default).__name__}")
    if isinstance(default, bool) or isinstance(value, bool):
        raise bad(f"a {type(default).__name__}")
    if isinstance(default, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad("an integer") from None
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad("a number") from None
    if not isinstance(value, str):
        raise bad("a string")
    return value


__all__ = ["ENV_VARS", "MAX_TIMEOUT", "PLUGIN", "WebSettings"]
