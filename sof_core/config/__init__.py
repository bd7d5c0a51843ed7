"""Configuration: ``SOFConfig``, where its values come from, and the live manager.

The seed's rollback commands work verbatim with ``sof_core.config`` in place of
``sam.orchestration.config``: ``disable_sof_framework()``, ``get_sof_config_manager()``,
``manager.update_config(sof_rollout_percentage=0)``.
"""

from __future__ import annotations

from sof_core.config.manager import (
    ConfigState,
    SOFConfigManager,
    disable_sof_framework,
    enable_sof_framework,
    get_sof_config_manager,
    reset_sof_config_managers,
)
from sof_core.config.model import (
    ENV_DISABLE_AUTOLOAD,
    ENV_PREFIX,
    SOFConfig,
    build_config,
    default_config_path,
    env_overrides,
    env_sources,
    load_config,
    load_host_config,
    read_config_file,
)

__all__ = [
    "ENV_DISABLE_AUTOLOAD",
    "ENV_PREFIX",
    "ConfigState",
    "SOFConfig",
    "SOFConfigManager",
    "build_config",
    "default_config_path",
    "disable_sof_framework",
    "enable_sof_framework",
    "env_overrides",
    "env_sources",
    "get_sof_config_manager",
    "load_config",
    "load_host_config",
    "read_config_file",
    "reset_sof_config_managers",
]
