"""The settings themselves: ``SOFConfig`` (the seed's migration flags plus the execution
settings), validated, and SAM's names for them.

A bad value raises ``ConfigValidationError``, a ``ConfigError`` naming the setting. Where
values come from (defaults, a config file, ``SOF_*`` variables, arguments) and how they
merge is ``sof_core.config.sources``.

SAM's own config file (``config/sof_config.json``, 31 keys) is a valid config file too:
``SAM_KEYS`` says which of SAM's keys map onto which SOF setting, and the keys SOF has no
use for are kept in the file untouched (see docs/configuration.md, "SAM's configuration
keys").
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

import sof_core._pydantic_guard  # noqa: F401  (before any model: see the module)
from sof_core._reply_trust import package_problem
from sof_core._timeouts import MAX_TIMEOUT
from sof_core.config.tool_policy import check_tool_policy, default_tool_policy
from sof_core.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

#: Limits of an isolated skill's process unless configured (``isolation_limits``).
#: ``output_mb`` bounds what a call sends back (its writes, pickled): the host reads the
#: reply into memory, so an unbounded one would let a skill's output, or a forged length
#: on its socket, exhaust the host's memory instead of its own.
ISOLATION_LIMIT_DEFAULTS: dict[str, float | None] = {
    "cpu_seconds": 60.0, "memory_mb": 2048.0, "open_files": 256.0, "output_mb": 256.0,
}
#: Seconds an idle isolation worker is kept (``isolation_idle_timeout``'s default): long
#: enough that a host answering queries keeps its workers warm, short enough that a
#: burst's extra processes do not live as long as the host (loky retires its idle workers
#: after the same 300 s).
ISOLATION_IDLE_TIMEOUT_DEFAULT = 300.0


def _new_list() -> list[Any]:
    """A new empty list: ``default_factory=list`` without its class-creation cost (see
    ``sof_core.uif._new_list``: the builtin makes pydantic compile ``tokenize``'s regexes)."""
    return []


class ConfigValidationError(ValidationError, ConfigError):
    """A bad value given to ``SOFConfig`` directly: pydantic's ``ValidationError`` (its
    ``errors()`` and message, so code catching that keeps working) that is also SOF's
    ``ConfigError``, with ``key`` naming the first setting at fault; a host catches one SOF
    exception for every configuration mistake, however the value arrived."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """The errors are set by pydantic's ``__new__`` (``from_exception_data``)."""
        errors = self.errors()
        loc = errors[0]["loc"] if errors else ()
        self.key = str(loc[0]) if loc else None

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> ConfigValidationError:
        return cls.from_exception_data(exc.title, exc.errors(include_url=False))  # type: ignore[arg-type]

    def __str__(self) -> str:
        """pydantic's text, and "did you mean" for each misspelt setting name."""
        text = super().__str__()
        unknown = dict.fromkeys(str(e["loc"][0]) for e in self.errors()
                                if e["type"] == "extra_forbidden" and e["loc"])
        hints = [f"unknown config key {key!r}{unknown_key_hint(key)}" for key in unknown]
        return "\n".join([text, *hints])


@contextmanager
def _config_errors() -> Iterator[None]:
    """pydantic's ``ValidationError`` out of the block as a ``ConfigValidationError``."""
    try:
        yield
    except ConfigValidationError:
        raise
    except ValidationError as exc:
        raise ConfigValidationError.from_validation_error(exc) from None


#: Settings assignments ever made to any ``SOFConfig`` in this process (``config_revision``).
_assignments = [0]


def config_revision() -> int:
    """A number that changes whenever a setting is assigned on any ``SOFConfig``: what an
    engine derived from its settings (compiled plans carry timeouts, retries, isolation)
    is derived again after ``engine.config.skill_timeout = 5``, as after assigning a new
    ``SOFConfig``. (Process-wide, not per object: a pydantic private attribute would take
    part in ``==``; assignments are rare, and a spare recompile is all one costs.)"""
    return _assignments[0]


class SOFConfig(BaseModel):
    """Every setting SOF reads. Unknown keys are errors, so typos never pass silently.

    A bad value raises ``ConfigValidationError``: a ``ConfigError`` naming the setting,
    and still pydantic's ``ValidationError``.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    def __init__(self, /, **data: Any) -> None:
        with _config_errors():
            super().__init__(**data)

    def __setattr__(self, name: str, value: Any) -> None:
        with _config_errors():
            super().__setattr__(name, value)
        _assignments[0] += 1

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> SOFConfig:
        with _config_errors():
            return super().model_validate(obj, *args, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any) -> SOFConfig:
        with _config_errors():
            return super().model_validate_json(json_data, *args, **kwargs)

    @classmethod
    def model_validate_strings(cls, obj: Any, *args: Any, **kwargs: Any) -> SOFConfig:
        with _config_errors():
            return super().model_validate_strings(obj, *args, **kwargs)

    # --- the seed's migration flags ------------------------------------------------------
    use_sof_framework: bool = False
    fallback_to_legacy: bool = True
    enable_plan_validation: bool = True
    enable_execution_metrics: bool = True
    sof_rollout_percentage: float = Field(default=0, ge=0, le=100)

    # --- alerts and automatic rollback (docs/operations.md) -------------------------------
    #: The seed's alert thresholds, evaluated over the last ``alert_window_seconds``:
    #: error rate and skill failure rate as fractions, response time in seconds (the
    #: window's p95), memory as percent of the machine's RAM used by this process.
    alert_error_rate: float = Field(default=0.05, ge=0, le=1)
    alert_response_time: float = Field(default=10.0, gt=0)
    alert_memory_percent: float = Field(default=80.0, gt=0, le=100)
    alert_skill_failure_rate: float = Field(default=0.10, ge=0, le=1)
    alert_window_seconds: float = Field(default=60.0, gt=0)
    #: No rate alert until the window holds this many queries (one early error is not 100 %).
    alert_min_samples: int = Field(default=20, ge=1)
    #: On a breach of the error-rate or response-time threshold on the SOF path, lower
    #: ``sof_rollout_percentage`` by ``auto_rollback_step`` (100: to 0) through the same
    #: atomic write as ``sof config``; it stays there until a person raises it.
    auto_rollback: bool = False
    auto_rollback_step: float = Field(default=100, gt=0, le=100)

    # --- planning ------------------------------------------------------------------------
    default_plan: list[str] = Field(
        default_factory=lambda: ["MemoryRetrievalSkill", "ResponseGenerationSkill"]
    )
    #: Which planner chooses the skills when no plan is given (docs/planning.md): "rules"
    #: (from what the registered skills declare), "static" (``default_plan``), "goal",
    #: "llm", or a plugin's. Read per query, like every planning setting.
    planner: str = "rules"
    #: Options of individual planners, by planner name, e.g. ``{"rules": {"threshold":
    #: 0.5}, "llm": {"timeout": 20, "max_tokens": 800}}`` (docs/planning.md lists them).
    planner_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    max_plan_length: int = Field(default=10_000, ge=1)
    require_vetting: bool = True
    enable_plan_cache: bool = True
    plan_cache_size: int = Field(default=256, ge=1)
    #: Keep compiled plans' graph answers (cycles, stages, order) in the user cache dir, so
    #: a new process compiling the same plan skips the graph build and the networkx import
    #: (see sof_core/graph/plan_store.py). Off when ``enable_plan_cache`` is off.
    plan_store: bool = True
    #: Seconds a planner may reuse a plan it generated for a query (SAM's meaning; read by
    #: planners that cache generated plans). None: no expiry. Compiled plans need no TTL:
    #: they are cached per registry version.
    plan_cache_ttl: float | None = Field(default=3600.0, gt=0)
    #: Keep planners' plans in a SQLite file too, so they survive restarts and are shared
    #: by the processes of one machine (``plan_cache_path``, default: the user cache dir).
    plan_cache_persist: bool = False
    plan_cache_path: str | None = None
    #: On an invalid plan or an unknown skill, run SAM's safe plan instead (SAM's
    #: ``CoordinatorEngine`` behaviour, as mirrored by ``sof_sam``).
    enable_fallback_plans: bool = True

    # --- execution -----------------------------------------------------------------------
    executor: str = "threads"
    #: How a plan's order is read. ``dependencies``: producers run before the skills that
    #: read their outputs, required or optional, wherever they are listed. ``written``: a
    #: skill is not held back for an optional input that a skill listed after it produces
    #: (it runs where it is written, without it: SAM's sequential plans; sof-sam sets it
    #: while ``enable_parallel_execution`` is off); required inputs still order the plan.
    plan_order: Literal["dependencies", "written"] = "dependencies"
    #: Thread-pool size for concurrent stages; sized for I/O-bound skills, not the CPU count.
    max_workers: int = Field(default=64, ge=1)
    #: Timeout (s) for skills whose ``max_execution_time`` is None; None means no limit.
    #: Finite: at most ``MAX_TIMEOUT`` (inf or 1e300 would never expire).
    skill_timeout: float | None = Field(default=30.0, gt=0, le=MAX_TIMEOUT)
    #: Timeout (s) for the whole run; None means no limit.
    total_timeout: float | None = Field(default=120.0, gt=0, le=MAX_TIMEOUT)
    #: How long (s) the caller of a run waits for one observer call made from its thread
    #: (``sof_before_plan``, ``sof_after_plan``, ...) before it goes on without it; None:
    #: observers are called directly, without a bound (docs/hooks.md).
    observer_timeout: float | None = Field(default=5.0, gt=0, le=MAX_TIMEOUT)
    #: A skill with more calls than this still running after their timeout (abandoned, in
    #: threads Python cannot stop) is quarantined: it fails fast until they return. None:
    #: never quarantine.
    max_hung_calls_per_skill: int | None = Field(default=4, ge=0)
    skill_retries: int = Field(default=0, ge=0)
    #: The pause (s) before the first retry; each later one doubles. Finite, like the
    #: timeouts: an infinite pause would sleep forever in a run with no timeout.
    retry_backoff: float = Field(default=0.0, ge=0, le=MAX_TIMEOUT)
    continue_on_skill_failure: bool = False
    #: False lets skills whose class opts in (``sof_sam.BaseSkillModule`` subclasses) read
    #: and write undeclared ``intermediate_data`` keys and set undeclared UIF fields, each
    #: logged once with the declaration to add; native skills always get
    #: ``UndeclaredReadError``/``UndeclaredWriteError``.
    strict_declarations: bool = True
    #: Skills to run in isolation worker processes whatever they declare, by skill name or
    #: by plugin/distribution name for all of a plugin's skills (docs/operations.md).
    isolate_skills: list[str] = Field(default_factory=_new_list)
    #: Worker processes kept for isolated skills (started on first use, then reused).
    isolation_workers: int = Field(default=2, ge=1, le=64)
    #: Seconds an idle worker process is kept before it is retired (started again on
    #: demand); None keeps idle workers for good. Finite, like the timeouts.
    isolation_idle_timeout: float | None = Field(
        default=ISOLATION_IDLE_TIMEOUT_DEFAULT, gt=0, le=MAX_TIMEOUT
    )
    #: Limits of each isolated call: ``cpu_seconds``, ``memory_mb`` (what the call may add
    #: to its process's address space), ``open_files``, ``output_mb``; None: no limit.
    #: Keys left out keep their defaults; None for the whole setting turns every limit off
    #: (stored as each key None). A skill's own ``isolation_limits`` win over these.
    isolation_limits: dict[str, float | None] = Field(
        default_factory=lambda: dict(ISOLATION_LIMIT_DEFAULTS)
    )
    #: Environment variables an isolated skill sees besides the minimal set (PATH, HOME,
    #: locale, temp and XDG dirs): names, or prefixes ending in ``*`` (``SOF_MEMORY_*``).
    isolation_env: list[str] = Field(default_factory=_new_list)
    #: Top-level packages whose functions and classes isolated skills may send back
    #: (``["numpy"]``), for every isolated skill; plain data, standard value types and a
    #: skill's own package's classes need none (docs/security.md).
    isolation_reply_packages: list[str] = Field(default_factory=_new_list)
    #: Tool security policy (docs/security.md): ``allow_tools``/``deny_tools`` (names or
    #: patterns), ``allow_permissions``/``deny_permissions``, per-tool ``limits``,
    #: ``default_max_output_bytes``, ``network_isolation``. Keys left out keep defaults
    #: (everything allowed). ``SOF_TOOL_POLICY`` takes a JSON object.
    tool_policy: dict[str, Any] = Field(default_factory=default_tool_policy)

    # --- plugins -------------------------------------------------------------------------
    plugins_autoload: bool = True
    plugins_only: list[str] | None = None
    plugins_disable: list[str] = Field(default_factory=_new_list)
    strict_plugins: bool = False
    #: Settings for individual plugins, by plugin name (e.g. ``{"memory": {"path": ...}}``).
    plugin_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: The seed's switch for SAM's TPV generation control (the response plugin's
    #: controller), as a top-level setting; ``plugin_settings.response.use_tpv_control``,
    #: when given, wins. None: not set here.
    use_tpv_control: bool | None = None
    #: The web plugin's allow-list (hosts, IPs or CIDRs its address guard lets through), as a
    #: top-level setting, the name issue 11 gives it; ``plugin_settings.web.web_allowed_hosts``,
    #: when given, wins, and ``SOF_WEB_ALLOWED_HOSTS`` (read by the plugin) wins over both.
    #: None: not set here.
    web_allowed_hosts: list[str] | str | None = None
    #: Which plugin provides a skill name that several installed plugins register, by plugin
    #: or distribution name (``{"MemoryRetrievalSkill": "sam-skills"}``); until it is set,
    #: such a name is unavailable rather than silently given to one of them.
    skill_providers: dict[str, str] = Field(default_factory=dict)
    #: A plugin import slower than this (ms) is logged and recorded; strict mode fails it.
    plugin_import_budget_ms: float = Field(default=1000.0, gt=0)
    #: A plugin whose import has not finished after this many seconds is skipped (its
    #: import left running in a daemon thread), and so is one whose registration hooks or
    #: ``sof_configure`` take as long; ``None``: no deadline, plugins are imported on the
    #: loading thread.
    plugin_import_timeout: float | None = Field(default=60.0, gt=0, le=MAX_TIMEOUT)

    # --- observability -------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"

    @field_validator("*", mode="before")
    @classmethod
    def _no_flag_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """``true`` is not a number: pydantic would read it as 1 (a rollout of 1 %, a 1 s
        timeout) from a file or an argument, while ``SOF_*=true`` is refused as text."""
        if isinstance(value, bool) and info.field_name in _NUMBER_FIELDS:
            raise ValueError(f"must be a number, not {str(value).lower()}; write the number itself")
        return value

    @field_validator("*")
    @classmethod
    def _finite_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """No setting holds ``inf`` or ``nan`` (``1e999`` reads as ``inf``): JSON cannot
        write them (``sof config show --json``, the config file) and no threshold, window
        or TTL means anything at infinity (``null`` is "no limit" where one is allowed).
        The timeouts refuse them by their bound; ``isolation_limits`` says it itself."""
        if info.field_name == "isolation_limits":
            return value
        problem = non_finite_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("plugins_only")
    @classmethod
    def _some_plugins(cls, value: list[str] | None) -> list[str] | None:
        """``[]`` reads as "only these" with the names forgotten: every plugin would be
        left out without a word, so it is refused with the two settings meant instead."""
        if value is not None and not value:
            raise ValueError(
                "is empty, which would load no plugin; leave it unset (null) to load every "
                "plugin, or set plugins_autoload = false to load none"
            )
        if value is not None and any(not name.strip() for name in value):
            raise ValueError(
                f"holds a blank name ({value!r}), which names no plugin; list the plugins to "
                'load (["memory", "response"]), or leave it unset (null) to load every plugin'
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("tool_policy", mode="before")
    @classmethod
    def _checked_tool_policy(cls, value: Any) -> dict[str, Any]:
        return check_tool_policy(value)

    @field_validator("isolation_reply_packages")
    @classmethod
    def _package_names(cls, value: list[str]) -> list[str]:
        for package in value:
            problem = package_problem(package)
            if problem is not None:
                raise ValueError(problem)
        return value

    @field_validator("isolation_limits", mode="before")
    @classmethod
    def _no_flag_limits(cls, value: Any) -> Any:
        """``null`` for the whole setting is "no limits" (every limit off), as ``null`` is
        "no limit" for one of them and for the timeouts. ``true`` is not a limit (pydantic
        would read it as 1.0: a 1 MB, 1 s or 1 file limit nobody meant)."""
        if value is None:
            return dict.fromkeys(ISOLATION_LIMIT_DEFAULTS)
        if isinstance(value, Mapping):
            for key, limit in value.items():
                if isinstance(limit, bool):
                    raise ValueError(
                        f"{key} must be a positive number or null (no limit), not {limit}"
                    )
        return value

    @field_validator("isolation_limits")
    @classmethod
    def _known_limits(cls, value: dict[str, float | None]) -> dict[str, float | None]:
        for key, limit in value.items():
            if key not in ISOLATION_LIMIT_DEFAULTS:
                raise ValueError(
                    f"unknown limit {key!r}; known: " + ", ".join(ISOLATION_LIMIT_DEFAULTS)
                )
            if limit is not None and not 0 < limit < float("inf"):
                raise ValueError(f"{key} must be a positive number or null (no limit)")
        return {**ISOLATION_LIMIT_DEFAULTS, **value}

    def settings_for(self, plugin: str) -> dict[str, Any]:
        """A plugin's own settings (empty when none are configured)."""
        return dict(self.plugin_settings.get(plugin, {}))

    # --- SAM's names for shared settings (read-only), for SAM callers of get_sof_config() --

    @property
    def max_execution_time(self) -> float | None:
        """SAM's name for ``total_timeout``."""
        return self.total_timeout

    @property
    def enable_plan_caching(self) -> bool:
        """SAM's name for ``enable_plan_cache``."""
        return self.enable_plan_cache

    @property
    def max_retry_attempts(self) -> int:
        """SAM's name for ``skill_retries``."""
        return self.skill_retries

    @property
    def require_vetting_for_external(self) -> bool:
        """SAM's name for ``require_vetting``."""
        return self.require_vetting

    @property
    def enable_parallel_execution(self) -> bool:
        """SAM's flag: True unless the executor runs one skill at a time."""
        return self.executor != "sequential"


#: Settings whose value is a number (``bool`` is an ``int`` to Python, never to a user).
_NUMBER_FIELDS = frozenset(
    name for name, field in SOFConfig.model_fields.items()
    if any(kind in (int, float) for kind in (field.annotation, *getattr(field.annotation,
                                                                       "__args__", ())))
)


def non_finite_problem(value: Any) -> str | None:
    """Why ``value`` (a number, or JSON-like data: mappings and lists, walked without
    recursion) cannot be a setting's value because it holds ``inf`` or ``nan``; None when
    every number in it is finite."""
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, where = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            at = f" (at {where})" if where else ""
            return (f"must be a finite number{at}, got {item!r}; infinity and NaN are not "
                    "numbers a setting can hold")
        if isinstance(item, Mapping):
            pending.extend((v, f"{where}.{k}" if where else str(k)) for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            pending.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
    return None


def unknown_key_hint(key: str) -> str:
    """"did you mean" for a near miss of a SOF setting or a SAM key; else where to look."""
    candidates = list(dict.fromkeys([*SOFConfig.model_fields, *SAM_KEYS]))
    import difflib  # only for a misspelt name

    matches = difflib.get_close_matches(key, candidates, n=2, cutoff=0.75)
    if matches:
        return "; did you mean " + " or ".join(repr(m) for m in matches) + "?"
    # not plain `sof config show`: with this key in the file it stops at the same error
    return ("; no SOF setting or SAM key has that name (`SOF_CONFIG=/dev/null sof config "
            "show` lists the settings)")


def as_config(value: SOFConfig | Mapping[str, Any], what: str = "config") -> SOFConfig:
    """``value`` as settings: a ``SOFConfig`` as is, a mapping of settings validated into
    one (``{"skill_timeout": 5}``, as ``SOFConfig(**mapping)`` would), so a host can pass
    either to ``CoordinatorEngine``, ``engine.config`` and ``PluginManager``. A bad value
    is a ``ConfigValidationError`` naming the setting; anything else a ``ConfigError``
    naming ``what`` instead of an ``AttributeError`` from deep inside the first use."""
    if isinstance(value, SOFConfig):
        return value
    if isinstance(value, Mapping):
        with _config_errors():
            return SOFConfig.model_validate(dict(value))
    raise ConfigError(
        f"{what} must be a SOFConfig or a mapping of settings (such as "
        f"{{'skill_timeout': 5}}), not {type(value).__name__}",
        key=what,
    )


# --- SAM's config file --------------------------------------------------------------------


@functools.cache
def _bool_adapter() -> TypeAdapter[bool]:
    """pydantic's lax ``bool`` (``"yes"``, ``0``, ...), built at its first use: SAM's
    ``enable_parallel_execution`` is rare, and a ``TypeAdapter`` costs every start-up a
    module import and a schema."""
    from pydantic import TypeAdapter

    return TypeAdapter(bool)


@dataclass(frozen=True)
class SamKey:
    """One of the 31 keys SAM writes to ``config/sof_config.json``, and what SOF makes of it."""

    name: str
    #: SAM's default (a tuple stands for a list, so the table stays immutable).
    default: Any
    #: SAM's type for the value, checked when the key is written through SOF.
    type: Any
    #: The SOF setting it maps onto (None: SOF does not use it).
    setting: str | None = None
    #: What SOF does instead, for a key SOF does not use.
    note: str = ""

    @property
    def renamed(self) -> bool:
        """True when SOF's setting has another name than SAM's key."""
        return self.setting is not None and self.setting != self.name

    def to_sof(self, value: Any) -> Any:
        """The value as SOF's setting takes it; ``ConfigError`` when it cannot be one."""
        if self.setting == "executor":
            try:
                parallel = _bool_adapter().validate_python(value)
            except ValidationError:
                raise ConfigError(
                    f"{self.name} must be true or false (got {_short(value)})", key=self.name
                ) from None
            return "threads" if parallel else "sequential"
        return value

    def to_sam(self, value: Any) -> Any:
        """SOF's value of the setting as SAM's key holds it."""
        if self.setting == "executor":
            return value != "sequential"
        return value

    def fresh_default(self) -> Any:
        return list(self.default) if isinstance(self.default, tuple) else self.default


def _sam_table(*keys: SamKey) -> Mapping[str, SamKey]:
    return MappingProxyType({key.name: key for key in keys})


#: SAM's 31 keys in SAM's order, with SAM's defaults (SAM at commit 02c913ee).
SAM_KEYS: Mapping[str, SamKey] = _sam_table(
    SamKey("use_sof_framework", False, bool, "use_sof_framework"),
    SamKey("sof_version", "2.0.0", str, None, "a label in SAM's file; `sof --version` gives "
           "SOF's version"),
    SamKey("max_execution_time", 60.0, float, "total_timeout"),
    SamKey("skill_timeout", 30.0, float, "skill_timeout"),
    SamKey("enable_parallel_execution", False, bool, "executor"),
    SamKey("enable_plan_validation", True, bool, "enable_plan_validation"),
    SamKey("max_plan_length", 10, int, "max_plan_length"),
    SamKey("allow_circular_dependencies", False, bool, None, "SOF always rejects a cycle, "
           "naming its path"),
    SamKey("enable_fallback_plans", True, bool, "enable_fallback_plans"),
    SamKey("max_retry_attempts", 2, int, "skill_retries"),
    SamKey("continue_on_skill_failure", False, bool, "continue_on_skill_failure"),
    SamKey("enable_skill_sandboxing", True, bool, None, "a skill sets isolation = "
           "\"process\" to run in a worker process"),
    SamKey("require_vetting_for_external", True, bool, "require_vetting"),
    SamKey("max_intermediate_data_size", 10 * 1024 * 1024, int, None, "not enforced by "
           "SOF"),
    SamKey("enable_plan_caching", True, bool, "enable_plan_cache"),
    SamKey("plan_cache_ttl", 3600, int, "plan_cache_ttl"),
    SamKey("enable_execution_metrics", True, bool, "enable_execution_metrics"),
    SamKey("integrate_with_tpv", True, bool, None, "the response plugin's use_tpv_control"),
    SamKey("integrate_with_memory", True, bool, None, "read by SAM's own code"),
    SamKey("integrate_with_vetting", True, bool, None, "SOF's vetting rule is "
           "require_vetting"),
    SamKey("log_level", "INFO", str, "log_level"),
    SamKey("enable_execution_tracing", True, bool, None, "read by SAM's own code"),
    SamKey("save_execution_logs", True, bool, None, "read by SAM's own code"),
    SamKey("fallback_to_legacy", True, bool, "fallback_to_legacy"),
    SamKey("legacy_timeout", 30.0, float, None, "the legacy pipeline's own concern "
           "(get_migration_config() returns it)"),
    SamKey("enable_self_reflect", True, bool, None, "read by SAM's own code"),
    SamKey("self_reflect_confidence_threshold", 0.7, float, None, "read by SAM's own code"),
    SamKey("self_reflect_profiles", ("researcher", "legal", "academic"), list[str], None,
           "read by SAM's own code"),
    SamKey("self_reflect_query_keywords",
           ("what is", "who was", "when did", "define", "explain", "describe"), list[str],
           None, "read by SAM's own code"),
    SamKey("enable_memoir_auto_correction", True, bool, None, "read by SAM's own code"),
    SamKey("self_reflect_max_revisions", 1, int, None, "read by SAM's own code"),
)

#: SOF setting -> SAM's other name for it (only the settings SAM names differently).
SAM_NAMES: Mapping[str, str] = MappingProxyType(
    {key.setting: key.name for key in SAM_KEYS.values() if key.setting and key.renamed}
)


def sam_defaults() -> dict[str, Any]:
    """SAM's 31 keys with SAM's defaults: the file SAM writes when it has none."""
    return {name: key.fresh_default() for name, key in SAM_KEYS.items()}


def _short(value: Any) -> str:
    """A bounded ``repr`` (never the whole of a huge or deeply nested value)."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = 80
    shortener.maxlevel = 3
    try:
        return shortener.repr(value)
    except Exception as exc:  # an int of more than 4300 digits: reprlib's repr raises
        return f"<{type(value).__name__} object (repr raised {type(exc).__name__})>"
