"""The ``response`` entry point: hook implementations only, everything else is imported.

Registers ResponseGenerationSkill, the "extractive" and "openai" LLM backends and the "stop"
generation controller, and hands the registered skill the config and registry once every
plugin is loaded, so it can use backends and controllers other plugins contribute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sof_core import hookimpl
from sof_response.skill import ResponseGenerationSkill, builtin_backends, builtin_controllers

if TYPE_CHECKING:
    from sof_core import Registry
    from sof_core.config import SOFConfig

#: The plugin API this module was written against (a different core API skips it cleanly).
SOF_API_VERSION = 1


@hookimpl
def sof_register_skills() -> list[Any]:
    return [ResponseGenerationSkill]


@hookimpl
def sof_register_llm_backends() -> list[Any]:
    return builtin_backends()


@hookimpl
def sof_register_generation_controllers() -> list[Any]:
    return builtin_controllers()


@hookimpl
def sof_configure(config: SOFConfig, registry: Registry) -> None:
    """Give the registered skill its settings and the registry to pick components from."""
    entry = registry.skill(ResponseGenerationSkill.skill_name)
    if entry is not None and isinstance(entry.instance, ResponseGenerationSkill):
        entry.instance.configure(config, registry)
