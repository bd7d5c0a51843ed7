"""The ``vetting`` entry point: hook implementations only, everything else is imported.

Registers ContentVettingSkill and the shipped detectors (through the same
``sof_register_vetting_detectors`` hook other plugins use to add theirs), and hands the
registered skill the config and registry once every plugin is loaded, so it runs every
installed detector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sof_core import hookimpl
from sof_vetting.detectors import builtin_detectors
from sof_vetting.skill import ContentVettingSkill

if TYPE_CHECKING:
    from sof_core import Registry
    from sof_core.config import SOFConfig

#: The plugin API this module was written against (a different core API skips it cleanly).
SOF_API_VERSION = 1


@hookimpl
def sof_register_skills() -> list[Any]:
    return [ContentVettingSkill]


@hookimpl
def sof_register_vetting_detectors() -> list[Any]:
    return builtin_detectors()


@hookimpl
def sof_configure(config: SOFConfig, registry: Registry) -> None:
    """Give the registered skill its settings and the registry to find detectors in."""
    entry = registry.skill(ContentVettingSkill.skill_name)
    if entry is not None and isinstance(entry.instance, ContentVettingSkill):
        entry.instance.configure(config, registry)
