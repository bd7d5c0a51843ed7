"""Configuration: ``SOFConfig`` (``model``), where its values come from (``sources``), and
the live manager (``manager``).

The seed's rollback commands work verbatim with ``sof_core.config`` in place of
``sam.orchestration.config``: ``disable_sof_framework()``, ``get_sof_config_manager()``,
``manager.update_config(sof_rollout_percentage=0)``. So do the manager methods SAM's callers
use most (``load_config()``, ``is_sof_enabled()``, ``disable_sof()``, ...), and SAM's own
config file is read as it is (``SAM_KEYS``).
"""

from __future__ import annotations

from sof_core.config.manager import (
    ConfigState,
    SOFConfigManager,
    disable_sof_framework,
    enable_sof_framework,
    get_sof_config,
    get_sof_config_manager,
    is_sof_enabled,
    reset_sof_config_managers,
)
from sof_core.config.model import (
    SAM_KEYS,
    SAM_NAMES,
    ConfigValidationError,
    SamKey,
    SOFConfig,
    as_config,
    sam_defaults,
)
from sof_core.config.plugin_settings import layered_settings
from sof_core.config.sources import (
    ENV_CONFIG,
    ENV_DISABLE_AUTOLOAD,
    ENV_PREFIX,
    build_config,
    default_config_path,
    env_overrides,
    env_sources,
    load_config,
    load_host_config,
    read_config_file,
    unknown_env_vars,
)

__all__ = [
    "ENV_CONFIG",
    "ENV_DISABLE_AUTOLOAD",
    "ENV_PREFIX",
    "SAM_KEYS",
    "SAM_NAMES",
    "ConfigState",
    "ConfigValidationError",
    "SOFConfig",
    "SOFConfigManager",
    "SamKey",
    "as_config",
    "build_config",
    "default_config_path",
    "disable_sof_framework",
    "enable_sof_framework",
    "env_overrides",
    "env_sources",
    "get_sof_config",
    "get_sof_config_manager",
    "is_sof_enabled",
    "layered_settings",
    "load_config",
    "load_host_config",
    "read_config_file",
    "reset_sof_config_managers",
    "sam_defaults",
    "unknown_env_vars",
]
