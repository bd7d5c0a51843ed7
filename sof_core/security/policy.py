"""The tool policy: which tools and permissions a deployment allows, and each tool's limits.

``SOFConfig.tool_policy`` (checked by ``sof_core.config.tool_policy``) is applied when a plan
is compiled: ``denials`` names, for each denied skill, the policy entry that denies it (a
validation problem), and ``tool_limits`` gives each tool step what it runs with. A denied
tool's limits carry the denial too, so it is refused at run time even when plan validation
is switched off.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sof_core.config import SOFConfig
from sof_core.config.tool_policy import default_tool_policy
from sof_core.plugins.registry import SkillEntry

#: Registry kind of skills registered through ``sof_register_tools``.
TOOL_KIND = "tools"


@dataclass(frozen=True)
class ToolLimits:
    """What one tool step runs with (computed when the plan is compiled).

    ``permissions`` are those it declared; ``timeout`` its ``max_execution_time`` after the
    policy (None: the configured ``skill_timeout``); ``max_output_bytes`` and
    ``calls_per_minute`` its caps (None: none); ``network_isolation`` how it is kept off the
    network if it lacks "network"; ``denied`` the policy's reason to refuse it, if any.
    """

    permissions: frozenset[str] = frozenset()
    timeout: float | None = None
    max_output_bytes: int | None = None
    calls_per_minute: int | None = None
    network_isolation: str = "auto"
    denied: str | None = None

    @property
    def network(self) -> bool:
        return "network" in self.permissions


@dataclass(frozen=True)
class Denial:
    """A skill the policy refuses: ``message`` names the policy entry that refuses it."""

    skill: str
    permission: str | None
    message: str


class ToolPolicy:
    """``SOFConfig.tool_policy`` made ready to apply (see docs/security.md)."""

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        merged = {**default_tool_policy(), **dict(settings or {})}
        self.allow_tools: list[str] | None = merged["allow_tools"]
        self.deny_tools: list[str] = list(merged["deny_tools"])
        self.allow_permissions: list[str] | None = merged["allow_permissions"]
        self.deny_permissions: list[str] = list(merged["deny_permissions"])
        self.limits: dict[str, dict[str, Any]] = dict(merged["limits"])
        self.default_max_output_bytes: int | None = merged["default_max_output_bytes"]
        self.network_isolation: str = merged["network_isolation"]

    @classmethod
    def from_config(cls, config: SOFConfig) -> ToolPolicy:
        return cls(config.tool_policy)

    # --- what is allowed ---------------------------------------------------------------------

    def denial(self, name: str, permissions: Iterable[str], *, tool: bool) -> Denial | None:
        """Why the policy refuses skill ``name`` declaring ``permissions``, or None.

        Name lists apply to tools (``tool``); permission lists to every skill that declares
        permissions. ``deny_*`` entries win over ``allow_*`` ones.
        """
        if tool:
            entry = _matching(name, self.deny_tools)
            if entry is not None:
                return Denial(
                    name, None,
                    f"tool {name!r} is denied by tool_policy.deny_tools entry {entry!r}; "
                    "remove the entry to allow it, or take the tool out of the plan",
                )
            if self.allow_tools is not None and _matching(name, self.allow_tools) is None:
                return Denial(
                    name, None,
                    f"tool {name!r} is not allowed: tool_policy.allow_tools "
                    f"{self.allow_tools!r} does not list it; add it there to allow it",
                )
        for permission in sorted(permissions):
            if permission in self.deny_permissions:
                return Denial(
                    name, permission,
                    f"{'tool' if tool else 'skill'} {name!r} needs permission {permission!r}, "
                    f"which tool_policy.deny_permissions entry {permission!r} denies; "
                    "remove the entry to allow it, or take the skill out of the plan",
                )
            if self.allow_permissions is not None and permission not in self.allow_permissions:
                return Denial(
                    name, permission,
                    f"{'tool' if tool else 'skill'} {name!r} needs permission {permission!r}, "
                    f"which tool_policy.allow_permissions {self.allow_permissions!r} does "
                    "not list; add it there to allow it",
                )
        return None

    def denials(self, entries: Iterable[SkillEntry]) -> list[Denial]:
        """The policy's refusals for a plan's skills (tools, and skills with permissions)."""
        found = []
        for entry in entries:
            tool = entry.kind == TOOL_KIND
            if not tool and not entry.spec.permissions:
                continue
            denial = self.denial(entry.spec.name, entry.spec.permissions, tool=tool)
            if denial is not None:
                found.append(denial)
        return found

    # --- what a tool runs with ---------------------------------------------------------------

    def tool_limits(self, entry: SkillEntry) -> ToolLimits:
        """The limits tool ``entry`` runs with: its declarations, then ``limits[name]``."""
        spec = entry.spec
        override = self.limits.get(spec.name, {})
        timeout = override.get("max_execution_time", spec.max_execution_time)
        output = override.get("max_output_bytes", spec.max_output_bytes)
        if output is None and "max_output_bytes" not in override:
            output = self.default_max_output_bytes
        denial = self.denial(spec.name, spec.permissions, tool=True)
        return ToolLimits(
            permissions=spec.permissions,
            timeout=timeout,
            max_output_bytes=output,
            calls_per_minute=override.get("calls_per_minute", spec.calls_per_minute),
            network_isolation=self.network_isolation,
            denied=None if denial is None else denial.message,
        )


def is_tool(entry: SkillEntry) -> bool:
    """Whether ``entry`` was registered through ``sof_register_tools``."""
    return entry.kind == TOOL_KIND


def _matching(name: str, patterns: Iterable[str]) -> str | None:
    """The first entry of ``patterns`` naming ``name`` (exactly or as an fnmatch pattern)."""
    for pattern in patterns:
        if pattern == name or fnmatch.fnmatchcase(name, pattern):
            return pattern
    return None
