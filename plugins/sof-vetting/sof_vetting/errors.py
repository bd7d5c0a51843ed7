"""Every exception sof-vetting raises on purpose.

    sof_core.SOFError
    ├── sof_core.ConfigError
    │   └── VettingConfigError ... a vetting setting is invalid (has ``key``)
    └── sof_core.SkillExecutionError
        └── VettingInputError .... ``external_content`` does not have a shape the skill can
                                   read (has ``key`` and, for one item, ``index``)
"""

from __future__ import annotations

from sof_core import ConfigError, SkillExecutionError

SKILL_NAME = "ContentVettingSkill"
#: The ``plugin_settings`` table the skill reads (``sof_vetting.settings.PLUGIN``). Here, not
#: only in ``settings``, so that configuring the skill at start-up does not import the settings.
PLUGIN = "vetting"


class VettingConfigError(ConfigError):
    """A vetting setting is invalid; ``key`` names it (``plugin_settings.vetting.<name>``)."""


class VettingInputError(SkillExecutionError):
    """``external_content`` (or one item of it) has a shape the skill cannot read."""

    def __init__(self, message: str, *, key: str = "external_content",
                 index: int | None = None) -> None:
        self.key = key
        self.index = index
        where = f"{key}[{index}]" if index is not None else key
        super().__init__(f"input {where!r}: {message}; see docs/plugins/vetting.md", SKILL_NAME)


__all__ = ["PLUGIN", "SKILL_NAME", "VettingConfigError", "VettingInputError"]
