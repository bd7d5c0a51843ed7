"""Configuration: the seed's migration flags plus the execution settings, from four sources.

Sources, lowest to highest: defaults, a config file (JSON or TOML; ``SOF_CONFIG`` or the
user config dir), ``SOF_*`` environment variables, explicit arguments. Every value is
validated; a bad one raises ``ConfigError`` naming the key and the source it came from.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

import sof_core._pydantic_guard  # noqa: F401  (before any model: see the module)
from sof_core.errors import ConfigError

ENV_PREFIX = "SOF_"

#: Short environment names kept for familiarity (pytest-style plugin switches).
ENV_ALIASES: dict[str, str] = {
    "SOF_PLUGINS_DISABLE": "plugins_disable",
    "SOF_PLUGINS_ONLY": "plugins_only",
    "SOF_STRICT_PLUGINS": "strict_plugins",
    "SOF_ROLLOUT_PERCENTAGE": "sof_rollout_percentage",
    "SOF_EXECUTOR": "executor",
}
#: pytest's PYTEST_DISABLE_PLUGIN_AUTOLOAD, spelt for SOF: set means "no autoload".
ENV_DISABLE_AUTOLOAD = "SOF_DISABLE_PLUGIN_AUTOLOAD"


class SOFConfig(BaseModel):
    """Every setting SOF reads. Unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    # --- the seed's migration flags ------------------------------------------------------
    use_sof_framework: bool = False
    fallback_to_legacy: bool = True
    enable_plan_validation: bool = True
    enable_execution_metrics: bool = True
    sof_rollout_percentage: float = Field(default=0, ge=0, le=100)

    # --- planning ------------------------------------------------------------------------
    default_plan: list[str] = Field(
        default_factory=lambda: ["MemoryRetrievalSkill", "ResponseGenerationSkill"]
    )
    planner: str = "static"
    max_plan_length: int = Field(default=32, ge=1)
    require_vetting: bool = True
    enable_plan_cache: bool = True
    plan_cache_size: int = Field(default=256, ge=1)

    # --- execution -----------------------------------------------------------------------
    executor: str = "threads"
    #: Thread-pool size for concurrent stages; sized for I/O-bound skills, not the CPU count.
    max_workers: int = Field(default=64, ge=1)
    #: Timeout (s) for skills whose ``max_execution_time`` is None; None means no limit.
    skill_timeout: float | None = Field(default=30.0, gt=0)
    #: Timeout (s) for the whole run; None means no limit.
    total_timeout: float | None = Field(default=120.0, gt=0)
    skill_retries: int = Field(default=0, ge=0)
    retry_backoff: float = Field(default=0.0, ge=0)
    continue_on_skill_failure: bool = False

    # --- plugins -------------------------------------------------------------------------
    plugins_autoload: bool = True
    plugins_only: list[str] | None = None
    plugins_disable: list[str] = Field(default_factory=list)
    strict_plugins: bool = False
    #: Settings for individual plugins, by plugin name (e.g. ``{"memory": {"path": ...}}``).
    plugin_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Which plugin provides a skill name that several installed plugins register, by plugin
    #: or distribution name (``{"MemoryRetrievalSkill": "sam-skills"}``); until it is set,
    #: such a name is unavailable rather than silently given to one of them.
    skill_providers: dict[str, str] = Field(default_factory=dict)
    #: A plugin import slower than this (ms) is logged and recorded; strict mode fails it.
    plugin_import_budget_ms: float = Field(default=1000.0, gt=0)

    # --- observability -------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def settings_for(self, plugin: str) -> dict[str, Any]:
        """A plugin's own settings (empty when none are configured)."""
        return dict(self.plugin_settings.get(plugin, {}))


def default_config_path() -> Path:
    """``$SOF_CONFIG``, else the platform's user config dir (no extra dependency needed)."""
    explicit = os.environ.get("SOF_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "sof" / "config.json"


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a JSON or TOML config file; ``ConfigError`` names the file on any failure."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}", key=None) from exc
    return parse_config_bytes(raw, path)


def parse_config_bytes(raw: bytes, path: Path) -> dict[str, Any]:
    """Parse a config file's bytes (TOML when ``path`` ends in ``.toml``, else JSON)."""
    try:
        if path.suffix == ".toml":
            data: Any = _load_toml(raw)
        else:
            data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"config file {path} is corrupt ({exc}); fix it or delete it to use defaults"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold an object/table at top level")
    return data


def _load_toml(raw: bytes) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    return tomllib.loads(raw.decode("utf-8"))


def env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Config values from ``SOF_<FIELD>`` variables (and the aliases), as raw strings."""
    environ = os.environ if environ is None else environ
    fields = SOFConfig.model_fields
    values: dict[str, Any] = {}
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        key = ENV_ALIASES.get(var) or var[len(ENV_PREFIX) :].lower()
        if key in fields and key != "plugin_settings":
            values[key] = _coerce_env(var, key, raw)
    if environ.get(ENV_DISABLE_AUTOLOAD):
        values["plugins_autoload"] = False
    return values


def env_sources(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Which variable set each key (for ``sof config show``): ``{key: "SOF_..."}``."""
    environ = os.environ if environ is None else environ
    fields = SOFConfig.model_fields
    sources: dict[str, str] = {}
    for var in environ:
        if not var.startswith(ENV_PREFIX):
            continue
        key = ENV_ALIASES.get(var) or var[len(ENV_PREFIX) :].lower()
        if key in fields and key != "plugin_settings":
            sources[key] = var
    if environ.get(ENV_DISABLE_AUTOLOAD):
        sources["plugins_autoload"] = ENV_DISABLE_AUTOLOAD
    return sources


def _coerce_env(var: str, key: str, raw: str) -> Any:
    annotation = str(SOFConfig.model_fields[key].annotation)
    text = raw.strip()
    if "list" in annotation:
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise ConfigError(f"{var}={raw!r} is not a JSON list: {exc}", key=key) from exc
        return [part.strip() for part in text.split(",") if part.strip()]
    if annotation.startswith("dict"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            value = exc
        if not isinstance(value, dict):
            example = (
                '{"MemoryRetrievalSkill": "sam-skills"}'
                if key == "skill_providers"
                else '{"name": "value"}'
            )
            raise ConfigError(
                f"{var}={raw!r} is not a JSON object; write it like {var}='{example}'",
                key=key,
            )
        return value
    if text.lower() in ("none", "null") and "None" in annotation:
        return None
    return text


def build_config(
    file_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> SOFConfig:
    """Merge defaults, file, environment and arguments into one validated ``SOFConfig``."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    path = file_path if file_path is not None else default_config_path()
    for source, layer in (
        (f"config file {path}", read_config_file(path)),
        ("environment", env_overrides(environ)),
        ("arguments", overrides),
    ):
        for key, value in layer.items():
            merged[key] = value
            sources[key] = source
    try:
        return SOFConfig(**merged)
    except ValidationError as exc:
        raise config_error_from(exc, sources) from None


def config_error_from(
    exc: ValidationError, sources: Mapping[str, str] | None = None
) -> ConfigError:
    """Turn pydantic's error into one ``ConfigError`` naming each bad key and its source."""
    parts = []
    first_key = None
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "<config>"
        first_key = first_key or key
        top = str(error["loc"][0]) if error["loc"] else ""
        where = f" (from {sources[top]})" if sources and top in sources else ""
        if error["type"] == "extra_forbidden":
            known = ", ".join(sorted(SOFConfig.model_fields))
            parts.append(f"unknown config key {key!r}{where}; known keys: {known}")
        else:
            parts.append(f"{key}{where}: {error['msg']} (got {error.get('input')!r})")
    return ConfigError("invalid configuration: " + "; ".join(parts), key=first_key)


def load_config(**overrides: Any) -> SOFConfig:
    """The active configuration from every source; a bad file or value raises ConfigError."""
    return build_config(**overrides)


def load_host_config(**overrides: Any) -> SOFConfig:
    """``load_config`` for a host starting up: a broken config file never stops it.

    The file is logged and ignored (defaults, environment and arguments still apply); the
    router meanwhile reports the same file and sends queries to legacy where
    ``fallback_to_legacy`` is set. Bad environment variables or arguments still raise:
    they were given explicitly, to this process.
    """
    try:
        return build_config(**overrides)
    except ConfigError as exc:
        config = build_config(file_path=Path(os.devnull), **overrides)
        logging.getLogger("sof.config").warning("ignoring the config file: %s", exc)
        return config
