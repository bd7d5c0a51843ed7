"""The shape of ``SOFConfig.tool_policy``: which tools and permissions a deployment allows.

Checked here, where the config is read, so a typo in a deny list is a ``ConfigError`` at
start-up rather than a policy that silently allows everything. ``sof_core.security`` applies
the checked policy (validation, limits, sandboxing); docs/security.md describes it.
"""

from __future__ import annotations

import math
from typing import Any

#: Permissions a skill may declare (the same set as ``sof_core.skills.spec.PERMISSIONS``,
#: kept here because the config layer sits below the skills layer).
PERMISSION_NAMES = ("filesystem", "network", "subprocess")
#: Limits a per-tool ``limits`` entry may set.
LIMIT_NAMES = ("max_execution_time", "max_output_bytes", "calls_per_minute")
#: How a tool without the "network" permission is kept off the network.
NETWORK_ISOLATION = ("auto", "unshare", "bwrap", "audit")
#: Output cap for tools that declare none (1 MiB).
DEFAULT_MAX_OUTPUT_BYTES = 1 << 20


def default_tool_policy() -> dict[str, Any]:
    """Every tool and permission allowed; the limits the tools declare; sandbox "auto"."""
    return {
        "allow_tools": None,
        "deny_tools": [],
        "allow_permissions": None,
        "deny_permissions": [],
        "limits": {},
        "default_max_output_bytes": DEFAULT_MAX_OUTPUT_BYTES,
        "network_isolation": "auto",
    }


def check_tool_policy(value: Any) -> dict[str, Any]:
    """``value`` merged over the defaults and checked; ``ValueError`` names the bad entry."""
    if not isinstance(value, dict):
        raise ValueError(
            f"must be a mapping such as {{\"deny_tools\": [\"ShellTool\"]}}, got "
            f"{type(value).__name__}"
        )
    policy = default_tool_policy()
    unknown = sorted(set(value) - set(policy))
    if unknown:
        raise ValueError(
            f"unknown entry {unknown[0]!r}; known: " + ", ".join(sorted(policy))
        )
    for key in ("allow_tools", "deny_tools"):
        if key in value:
            policy[key] = _names(key, value[key], nullable=key == "allow_tools")
    for key in ("allow_permissions", "deny_permissions"):
        if key in value:
            names = _names(key, value[key], nullable=key == "allow_permissions")
            for name in names or ():
                if name not in PERMISSION_NAMES:
                    raise ValueError(
                        f"{key} names unknown permission {name!r}; known: "
                        + ", ".join(PERMISSION_NAMES)
                    )
            policy[key] = names
    if "limits" in value:
        policy["limits"] = _limits(value["limits"])
    if "default_max_output_bytes" in value:
        policy["default_max_output_bytes"] = _limit(
            "default_max_output_bytes", "max_output_bytes", value["default_max_output_bytes"]
        )
    if "network_isolation" in value:
        mode = value["network_isolation"]
        if mode not in NETWORK_ISOLATION:
            raise ValueError(
                f"network_isolation must be one of {', '.join(NETWORK_ISOLATION)}, got {mode!r}"
            )
        policy["network_isolation"] = mode
    return policy


def _names(key: str, value: Any, *, nullable: bool) -> list[str] | None:
    if value is None and nullable:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        hint = " (or null for no restriction)" if nullable else ""
        raise ValueError(f"{key} must be a list of names{hint}, got {value!r}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{key} entries must be non-empty strings, got {item!r}")
    return list(value)


def _limits(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise ValueError(
            "limits must map tool names to limits, such as "
            "{\"CalculatorTool\": {\"max_execution_time\": 5}}"
        )
    limits: dict[str, dict[str, Any]] = {}
    for tool, entry in value.items():
        if not isinstance(entry, dict):
            raise ValueError(f"limits[{tool!r}] must be a mapping of limits, got {entry!r}")
        checked: dict[str, Any] = {}
        for name, limit in entry.items():
            if name not in LIMIT_NAMES:
                raise ValueError(
                    f"limits[{tool!r}] has unknown limit {name!r}; known: "
                    + ", ".join(LIMIT_NAMES)
                )
            checked[name] = _limit(f"limits[{tool!r}].{name}", name, limit)
        limits[str(tool)] = checked
    return limits


def _limit(where: str, name: str, value: Any) -> float | int | None:
    if value is None:
        return None
    if name == "max_execution_time":
        if (
            isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0 < value < math.inf
        ):
            raise ValueError(f"{where} must be a positive number of seconds or null")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where} must be a positive integer or null (no cap)")
    return value
