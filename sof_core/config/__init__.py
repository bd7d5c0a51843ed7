"""Configuration: ``SOFConfig`` (``model``), where its values come from (``sources``), and
the live manager (``manager``).

The seed's rollback commands work verbatim with ``sof_core.config`` in place of
``sam.orchestration.config``: ``disable_sof_framework()``, ``get_sof_config_manager()``,
``manager.update_config(sof_rollout_percentage=0)``. So do the manager methods SAM's callers
use most (``load_config()``, ``is_sof_enabled()``, ``disable_sof()``, ...), and SAM's own
config file is read as it is (``SAM_KEYS``).

Its names are imported on first use (``sof_core._lazy``): importing the package imports
none of its modules, nor pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_core._lazy import lazy_exports

if TYPE_CHECKING:
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
    from sof_core.errors import ConfigError

_LAZY = {
    "ConfigError": "sof_core.errors",  # what every config problem is (also sof_core's)
    "ConfigState": "sof_core.config.manager",
    "SOFConfigManager": "sof_core.config.manager",
    "disable_sof_framework": "sof_core.config.manager",
    "enable_sof_framework": "sof_core.config.manager",
    "get_sof_config": "sof_core.config.manager",
    "get_sof_config_manager": "sof_core.config.manager",
    "is_sof_enabled": "sof_core.config.manager",
    "reset_sof_config_managers": "sof_core.config.manager",
    "SAM_KEYS": "sof_core.config.model",
    "SAM_NAMES": "sof_core.config.model",
    "ConfigValidationError": "sof_core.config.model",
    "SamKey": "sof_core.config.model",
    "SOFConfig": "sof_core.config.model",
    "as_config": "sof_core.config.model",
    "sam_defaults": "sof_core.config.model",
    "layered_settings": "sof_core.config.plugin_settings",
    "ENV_CONFIG": "sof_core.config.sources",
    "ENV_DISABLE_AUTOLOAD": "sof_core.config.sources",
    "ENV_PREFIX": "sof_core.config.sources",
    "build_config": "sof_core.config.sources",
    "default_config_path": "sof_core.config.sources",
    "env_overrides": "sof_core.config.sources",
    "env_sources": "sof_core.config.sources",
    "load_config": "sof_core.config.sources",
    "load_host_config": "sof_core.config.sources",
    "read_config_file": "sof_core.config.sources",
    "unknown_env_vars": "sof_core.config.sources",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "ENV_CONFIG",
    "ENV_DISABLE_AUTOLOAD",
    "ENV_PREFIX",
    "SAM_KEYS",
    "SAM_NAMES",
    "ConfigError",
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
