"""The vetting plugin's settings, from ``plugin_settings["vetting"]`` and the environment.

Sources, lowest to highest (the order SOF itself uses): defaults, the config's
``plugin_settings["vetting"]`` table, ``SOF_VETTING_*`` environment variables, explicit
constructor arguments. Unknown keys and bad values raise ``VettingConfigError`` naming the
key and where it came from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sof_core.config import layered_settings
from sof_vetting.errors import PLUGIN, VettingConfigError
from sof_vetting.findings import ACTIONS

ENV_VARS: dict[str, str] = {
    "SOF_VETTING_ACTIONS": "actions",
    "SOF_VETTING_DISABLE": "disabled",
    "SOF_VETTING_PHONE_REGION": "phone_region",
    "SOF_VETTING_ALLOWED_LINK_HOSTS": "allowed_link_hosts",
    "SOF_VETTING_MAX_CHARS": "max_chars",
    "SOF_VETTING_ON_DETECTOR_ERROR": "on_detector_error",
    "SOF_VETTING_DECODE_DEPTH": "decode_depth",
    "SOF_VETTING_DEFAULT_ACTION": "default_action",
}

#: What each shipped category does unless ``actions`` says otherwise.
DEFAULT_ACTIONS: dict[str, str] = {
    "injection": "block",
    "hidden_text": "sanitize",
    "secret": "sanitize",
    "pii": "sanitize",
    "link": "sanitize",
}


@dataclass(frozen=True)
class VettingSettings:
    """Every setting of the vetting plugin (see docs/plugins/vetting.md)."""

    #: category -> "block" | "sanitize" | "report", over ``DEFAULT_ACTIONS``.
    actions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    #: Action for categories ``actions`` does not name (a plugin's own categories).
    default_action: str = "block"
    #: Detector names, or finding-name prefixes ("pii.phone", "link"), to turn off.
    disabled: tuple[str, ...] = ()
    #: Region for phone numbers written without a country code (ISO 3166 alpha-2).
    phone_region: str = "US"
    #: Hosts (and their subdomains) the link detector never reports.
    allowed_link_hosts: tuple[str, ...] = ()
    #: Characters of one source that are vetted; the rest is cut off (and the cut recorded).
    max_chars: int = 200_000
    #: What a detector that raises does to the source: "block" (fail closed) or "report".
    on_detector_error: str = "block"
    #: How many encodings deep the encoded-payload detector decodes.
    decode_depth: int = 2

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.actions.items())), self.default_action, self.disabled,
                     self.phone_region, self.allowed_link_hosts, self.max_chars,
                     self.on_detector_error, self.decode_depth))

    def action_for(self, category: str) -> str:
        return self.actions.get(category, self.default_action)

    def is_disabled(self, name: str) -> bool:
        """Whether detector or finding ``name`` is turned off (exactly or by prefix)."""
        return any(name == d or name.startswith(d + ".") for d in self.disabled)

    @classmethod
    def resolve(
        cls,
        plugin_settings: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> VettingSettings:
        """Merge defaults, ``plugin_settings``, environment and ``overrides``, validated."""
        values, sources = layered_settings(PLUGIN, plugin_settings, ENV_VARS, environ, overrides)
        return cls.from_mapping(values, sources)

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], sources: Mapping[str, str] | None = None
    ) -> VettingSettings:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        clean: dict[str, Any] = {}
        for key, value in values.items():
            where = (sources or {}).get(key, f'plugin_settings["{PLUGIN}"]')
            if key not in fields:
                raise VettingConfigError(
                    f"unknown vetting setting {key!r} (from {where}); known settings: "
                    f"{', '.join(sorted(fields))}",
                    key=f"plugin_settings.{PLUGIN}.{key}",
                )
            clean[key] = _coerce(key, value, where)
        return cls(**clean)


def _bad(key: str, where: str, expected: str, value: Any) -> VettingConfigError:
    return VettingConfigError(
        f"vetting setting {key!r} (from {where}) must be {expected}, got {value!r}",
        key=f"plugin_settings.{PLUGIN}.{key}",
    )


def _names(key: str, value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise _bad(key, where, "a list of names or a comma-separated string", value)
    return tuple(v for v in items if v)


def _action(key: str, value: Any, where: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in ACTIONS:
        raise _bad(key, where, f"one of {', '.join(ACTIONS)}", value)
    return value.strip().lower()


def _coerce(key: str, value: Any, where: str) -> Any:
    if key == "actions":
        pairs: dict[str, Any]
        if isinstance(value, str):
            pairs = {}
            for part in filter(None, (p.strip() for p in value.split(","))):
                category, sep, action = part.partition("=")
                if not sep or not category.strip():
                    raise _bad(key, where, "category=action pairs, e.g. 'pii=report,link=block'",
                               value)
                pairs[category.strip()] = action
        elif isinstance(value, Mapping):
            pairs = dict(value)
        else:
            raise _bad(key, where, "a table of category = action", value)
        merged = dict(DEFAULT_ACTIONS)
        for category, action in pairs.items():
            merged[str(category)] = _action(f"{key}.{category}", action, where)
        return merged
    if key in ("default_action",):
        return _action(key, value, where)
    if key == "on_detector_error":
        if not isinstance(value, str) or value.strip().lower() not in ("block", "report"):
            raise _bad(key, where, "'block' or 'report'", value)
        return value.strip().lower()
    if key in ("disabled", "allowed_link_hosts"):
        return _names(key, value, where)
    if key in ("max_chars", "decode_depth"):
        if isinstance(value, bool):
            raise _bad(key, where, "an integer", value)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise _bad(key, where, "an integer", value) from None
        lowest = 0 if key == "decode_depth" else 1
        if number < lowest or (key == "decode_depth" and number > 5):
            limits = "0 to 5" if key == "decode_depth" else "at least 1"
            raise _bad(key, where, f"an integer {limits}", value)
        return number
    if key == "phone_region":
        if not isinstance(value, str) or len(value.strip()) != 2 or not value.strip().isalpha():
            raise _bad(key, where, "a two-letter region code such as 'US' or 'GB'", value)
        return value.strip().upper()
    raise _bad(key, where, "a known setting", value)  # pragma: no cover - fields are listed


__all__ = ["DEFAULT_ACTIONS", "ENV_VARS", "PLUGIN", "VettingSettings"]
