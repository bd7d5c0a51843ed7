"""SAM's ``sam.orchestration.config`` on SOF: SAM's ``SOFConfig`` and its manager.

The same file as ``sof_core.config`` (``$SOF_CONFIG`` when set, else SAM's
``config/sof_config.json`` relative to the working directory), read and written by
``sof_core``'s one implementation: atomic, locked writes that keep every key they do not
change. SAM's 31 settings are read as SAM's code expects them; a shared setting written
under SOF's name (``total_timeout``) shows through SAM's name (``max_execution_time``), and a
``SOF_*`` variable for a shared setting overrides the file here as it does for SOF.

Where this differs from SAM, it is so that a rollback cannot silently fail:

- ``load_config()`` is cached until the file changes on disk (SAM cached it for the life of
  the process), so ``sof config disable`` in another process reaches SAM-style callers.
- A key SAM does not know no longer makes SAM ignore the whole file: it is logged once (with
  "did you mean") and kept in the file.
- ``update_config`` also takes SOF's setting names (``sof_rollout_percentage=0`` rolls back
  as the seed says); a name neither SAM nor SOF knows is logged with "did you mean" and
  ignored, as in SAM.
- A value that cannot be stored (a bad value, a file that cannot be written) raises
  ``sof_core.ConfigError`` where SAM only logged it.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import sof_core.config as core
from sof_core import ConfigError

logger = logging.getLogger(__name__)

#: SAM's default path, relative to the working directory (used when SOF_CONFIG is unset).
DEFAULT_CONFIG_PATH = Path("config/sof_config.json")


@dataclass
class SOFConfig:
    """SAM's configuration, field for field (SAM's names, order and defaults)."""

    # Core framework settings
    use_sof_framework: bool = False
    sof_version: str = "2.0.0"

    # Skill execution settings
    max_execution_time: float = 60.0
    skill_timeout: float = 30.0
    enable_parallel_execution: bool = False

    # Plan validation settings
    enable_plan_validation: bool = True
    max_plan_length: int = 10
    allow_circular_dependencies: bool = False

    # Error handling settings
    enable_fallback_plans: bool = True
    max_retry_attempts: int = 2
    continue_on_skill_failure: bool = False

    # Security settings
    enable_skill_sandboxing: bool = True
    require_vetting_for_external: bool = True
    max_intermediate_data_size: int = 10 * 1024 * 1024

    # Performance settings
    enable_plan_caching: bool = True
    plan_cache_ttl: int = 3600
    enable_execution_metrics: bool = True

    # Integration settings
    integrate_with_tpv: bool = True
    integrate_with_memory: bool = True
    integrate_with_vetting: bool = True

    # Logging and debugging
    log_level: str = "INFO"
    enable_execution_tracing: bool = True
    save_execution_logs: bool = True

    # Backward compatibility
    fallback_to_legacy: bool = True
    legacy_timeout: float = 30.0

    # SELF-REFLECT
    enable_self_reflect: bool = True
    self_reflect_confidence_threshold: float = 0.7
    self_reflect_profiles: list[str] = field(
        default_factory=lambda: ["researcher", "legal", "academic"]
    )
    self_reflect_query_keywords: list[str] = field(
        default_factory=lambda: ["what is", "who was", "when did", "define", "explain",
                                 "describe"]
    )
    enable_memoir_auto_correction: bool = True
    self_reflect_max_revisions: int = 1


_FIELDS = frozenset(f.name for f in fields(SOFConfig))
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _default_path() -> Path:
    explicit = os.environ.get(core.ENV_CONFIG)
    return Path(explicit).expanduser() if explicit else DEFAULT_CONFIG_PATH


class SOFConfigManager:
    """SAM's configuration manager, over ``sof_core.config.SOFConfigManager``."""

    def __init__(self, config_path: str | os.PathLike[str] | None = None) -> None:
        self.config_path = Path(config_path) if config_path else _default_path()
        self._core = core.SOFConfigManager(self.config_path)
        self._config: SOFConfig | None = None
        self._seen: Any = None
        self._warned: set[str] = set()

    @property
    def core(self) -> core.SOFConfigManager:
        """The ``sof_core`` manager of the same file (SOF's settings, rollout, ...)."""
        return self._core

    def load_config(self) -> SOFConfig:
        """SAM's settings from the file, cached until the file (or ``SOF_*``) changes.

        No file: SAM's defaults are written and used. A file that cannot be read or parsed:
        the error is logged and SAM's defaults are used (the file is left as it is).
        """
        state = self._core.state()
        if self._config is not None and state.key == self._seen:
            return self._config
        if state.file_data is not None and not os.path.lexists(self.config_path):
            try:
                self._core.save_sam_settings(core.sam_defaults())
                logger.info("Created default SOF configuration at %s", self.config_path)
            except ConfigError as exc:
                logger.error("Error saving SOF configuration: %s", exc)
            state = self._core.state()
        if state.file_data is None:
            logger.error("Error loading SOF configuration: %s; using defaults", state.error)
        else:
            self._warn_unknown(state.file_data)
        self._config = SOFConfig(**self._core.sam_settings())
        self._seen = self._core.state().key
        return self._config

    def _warn_unknown(self, data: Any) -> None:
        known = set(core.SAM_KEYS) | set(core.SOFConfig.model_fields)
        for key in data:
            if key not in known and key not in self._warned:
                self._warned.add(key)
                logger.warning("Unknown configuration key in %s: %r%s (SAM's settings ignore "
                               "it; it stays in the file)", self.config_path, key, _hint(key))

    def save_config(self, config: SOFConfig | None = None) -> None:
        """Store ``config`` (default: the loaded one): each setting whose value differs from
        what the file holds, under the name the file uses; other keys are kept as they are."""
        if config is None:
            config = self._config or SOFConfig()
        self._save(config)

    def _save(self, config: SOFConfig, also: dict[str, Any] | None = None) -> None:
        try:
            self._core.save_sam_settings(asdict(config), also=also)
        except ConfigError:
            self._config = None  # re-read: the object may hold the value that was refused
            raise
        if also:
            self._config = None  # SOF's names may change what SAM's read: read them back
        else:
            self._config = config
            self._seen = self._core.state().key
        logger.info("Saved SOF configuration to %s", self.config_path)

    def update_config(self, **kwargs: Any) -> SOFConfig:
        """Set SAM's settings (and SOF's, by SOF's names) and save them in one write.

        A name neither SAM nor SOF knows is logged with "did you mean" and ignored (SAM's
        behaviour); a bad value raises ``ConfigError`` and nothing is written.
        """
        self.load_config()  # SAM's: a missing file is created with the defaults first
        sam_settings: dict[str, Any] = {}
        sof_settings: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key in _FIELDS:
                sam_settings[key] = value
            elif key in core.SOFConfig.model_fields:
                sof_settings[key] = value
            else:
                logger.warning("Unknown configuration key: %r%s; ignored", key, _hint(key))
        # Only the keys given are written, compared with the file under its lock: a copy of
        # every setting read before would put back what another thread or process changed
        # meanwhile (a rollback undone by an unrelated update).
        try:
            self._core.save_sam_settings(sam_settings, also=sof_settings)
        except ConfigError:
            self._config = None
            raise
        self._config = None
        return self.load_config()

    def is_sof_enabled(self) -> bool:
        return bool(self.load_config().use_sof_framework)

    def enable_sof(self) -> None:
        self.update_config(use_sof_framework=True)
        logger.info("SOF framework enabled")

    def disable_sof(self) -> None:
        self.update_config(use_sof_framework=False)
        logger.info("SOF framework disabled")

    def get_skill_config(self, skill_name: str) -> dict[str, Any]:
        config = self.load_config()
        return {
            "max_execution_time": config.skill_timeout,
            "enable_sandboxing": config.enable_skill_sandboxing,
            "enable_metrics": config.enable_execution_metrics,
            "log_level": config.log_level,
        }

    def validate_config(self, config: SOFConfig | None = None) -> list[str]:
        """SAM's checks, one line per problem (a value of the wrong type is a problem, not a
        ``TypeError``). Without ``config``, also what SOF finds wrong in the file."""
        checked = config if config is not None else self.load_config()
        issues = _sam_checks(checked)
        if config is None:
            issues += [line for line in self._core.validate_config() if line not in issues]
        return issues

    def reset_to_defaults(self) -> SOFConfig:
        """Replace the file with SAM's defaults (the old file is kept as
        ``<name>.before-reset-<time>``)."""
        self._core.save_sam_settings(core.sam_defaults(), replace=True)
        self._config = SOFConfig()
        self._seen = self._core.state().key
        logger.info("SOF configuration reset to defaults")
        return self._config

    def get_migration_config(self) -> dict[str, Any]:
        config = self.load_config()
        return {
            "use_sof_framework": config.use_sof_framework,
            "fallback_to_legacy": config.fallback_to_legacy,
            "legacy_timeout": config.legacy_timeout,
            "enable_execution_tracing": config.enable_execution_tracing,
        }


def _hint(key: str) -> str:
    from difflib import get_close_matches

    candidates = sorted(_FIELDS | set(core.SOFConfig.model_fields))
    matches = get_close_matches(key, candidates, n=2, cutoff=0.75)
    return f" (did you mean {' or '.join(repr(m) for m in matches)}?)" if matches else ""


def _number(config: SOFConfig, name: str, issues: list[str]) -> float | None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        issues.append(f"{name} must be a number (got {value!r})")
        return None
    return float(value)


def _sam_checks(config: SOFConfig) -> list[str]:
    issues: list[str] = []
    total = _number(config, "max_execution_time", issues)
    skill = _number(config, "skill_timeout", issues)
    if total is not None and total <= 0:
        issues.append("max_execution_time must be positive")
    if skill is not None and skill <= 0:
        issues.append("skill_timeout must be positive")
    if total is not None and skill is not None and skill > total:
        issues.append("skill_timeout cannot exceed max_execution_time")
    length = _number(config, "max_plan_length", issues)
    if length is not None and length <= 0:
        issues.append("max_plan_length must be positive")
    retries = _number(config, "max_retry_attempts", issues)
    if retries is not None and retries < 0:
        issues.append("max_retry_attempts cannot be negative")
    ttl = _number(config, "plan_cache_ttl", issues)
    if ttl is not None and ttl <= 0:
        issues.append("plan_cache_ttl must be positive")
    size = _number(config, "max_intermediate_data_size", issues)
    if size is not None and size <= 0:
        issues.append("max_intermediate_data_size must be positive")
    if config.log_level not in _LOG_LEVELS:
        issues.append(f"log_level must be one of: {list(_LOG_LEVELS)} (got {config.log_level!r})")
    return issues


# --- process-wide managers ----------------------------------------------------------------

_managers: dict[Path, SOFConfigManager] = {}
_managers_lock = threading.Lock()


def get_sof_config_manager(config_path: str | os.PathLike[str] | None = None) -> SOFConfigManager:
    """The process-wide manager for ``config_path`` (default: ``$SOF_CONFIG``, else SAM's
    ``config/sof_config.json``). One manager per path: unlike SAM, asking for another path
    later gives that path's manager, not the first one."""
    path = Path(config_path) if config_path else _default_path()
    with _managers_lock:
        manager = _managers.get(path)
        if manager is None:
            manager = _managers[path] = SOFConfigManager(path)
        return manager


def reset_sof_config_managers() -> None:
    """Forget the process-wide managers (tests, or a host that changed ``SOF_CONFIG``)."""
    with _managers_lock:
        _managers.clear()


def get_sof_config() -> SOFConfig:
    return get_sof_config_manager().load_config()


def is_sof_enabled() -> bool:
    return get_sof_config_manager().is_sof_enabled()


def enable_sof_framework() -> None:
    get_sof_config_manager().enable_sof()


def disable_sof_framework() -> None:
    """Roll back: every new query takes the legacy path (works on any file that parses; an
    unparseable one is kept as ``<name>.corrupt-<time>`` and replaced)."""
    get_sof_config_manager().disable_sof()


__all__ = [
    "DEFAULT_CONFIG_PATH",
    "SOFConfig",
    "SOFConfigManager",
    "disable_sof_framework",
    "enable_sof_framework",
    "get_sof_config",
    "get_sof_config_manager",
    "is_sof_enabled",
    "reset_sof_config_managers",
]
