"""Where configuration comes from, and how the sources merge into one ``SOFConfig``.

Sources, lowest to highest: defaults, a config file (JSON or TOML; ``SOF_CONFIG`` or the
user config dir; SAM's ``config/sof_config.json`` is one too), ``SOF_*`` environment
variables, explicit arguments. Every value is validated; a bad one raises ``ConfigError``
naming the key and the source it came from. ``sof_core.config.model`` holds the settings
themselves; this module reads, interprets and merges them (``load_config``).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from sof_core._paths import ENV_CONFIG as _ENV_CONFIG
from sof_core._paths import config_file, expand_user
from sof_core.config.model import (
    SAM_KEYS,
    SOFConfig,
    _short,
    unknown_key_hint,
)
from sof_core.errors import ConfigError, validation_message

log = logging.getLogger("sof.config")

ENV_PREFIX = "SOF_"

#: Short environment names kept for familiarity (pytest-style plugin switches).
ENV_ALIASES: dict[str, str] = {
    "SOF_PLUGINS_DISABLE": "plugins_disable",
    "SOF_PLUGINS_ONLY": "plugins_only",
    "SOF_STRICT_PLUGINS": "strict_plugins",
    "SOF_ROLLOUT_PERCENTAGE": "sof_rollout_percentage",
    "SOF_EXECUTOR": "executor",
}
#: pytest's PYTEST_DISABLE_PLUGIN_AUTOLOAD, spelt for SOF: a true value means "no autoload".
ENV_DISABLE_AUTOLOAD = "SOF_DISABLE_PLUGIN_AUTOLOAD"
#: The config file's path (``sof_core._paths.ENV_CONFIG``).
ENV_CONFIG = _ENV_CONFIG
#: Variables bundled plugins read outside their own ``SOF_<PLUGIN>_`` namespace: the LLM
#: plugins' shared ones, and sof-serve's ``SOF_ADMIN_TOKEN`` (the name the issue gives it).
SHARED_ENV_PREFIXES: tuple[str, ...] = ("SOF_LLM_", "SOF_TPV_", "SOF_USE_TPV_",
                                        "SOF_ADMIN_TOKEN")
#: Settings that cannot come from the environment (a nested table per plugin).
_NOT_FROM_ENV = frozenset({"plugin_settings", "web_allowed_hosts"})  # the web plugin reads
# SOF_WEB_ALLOWED_HOSTS itself (its own namespace, its own parsing)
#: JSON in a variable nested deeper than this is refused (no setting needs more, and
#: Python's parser would hit its recursion limit a few thousand levels down).
MAX_ENV_DEPTH = 32

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def default_config_path() -> Path:
    """``$SOF_CONFIG``, else the platform's user config dir (no extra dependency needed);
    ``os.devnull`` (no file: defaults) when that needs a home directory and there is none
    (``sof_core._paths.config_file_problem`` says what to set)."""
    return config_file()


@dataclass
class FileSettings:
    """A config file's keys sorted out: SOF's settings, SAM's names for them, the rest."""

    #: SOF settings by SOF name (and any unknown key, for validation to report).
    values: dict[str, Any] = field(default_factory=dict)
    #: SOF setting -> the SAM key its value was read from.
    names: dict[str, str] = field(default_factory=dict)
    #: SAM's settings SOF does not use, as in the file.
    sam_unused: dict[str, Any] = field(default_factory=dict)
    #: SAM key -> the SOF key in the same file that wins over it.
    shadowed: dict[str, str] = field(default_factory=dict)
    #: ``(key, message)`` for values that cannot be turned into SOF's setting.
    problems: list[tuple[str, str]] = field(default_factory=list)
    #: Both names of one setting set to different values (SOF's name wins).
    notes: list[str] = field(default_factory=list)


@dataclass
class SamKey:
    """A key SAM's table names that is not simply SOF's own setting (see ``sort_keys``)."""

    key: str
    value: Any
    #: ``"unused"`` (SOF has no such setting), ``"both"`` (the SOF name is given too) or
    #: ``"bad"`` (its value cannot be turned into SOF's setting).
    kind: Literal["unused", "both", "bad"]
    #: The SOF setting SAM's key stands for (None for ``"unused"``).
    setting: str | None = None
    error: ConfigError | None = None


@dataclass
class SortedKeys:
    """Keys sorted by SAM's key table: what SOF reads, and the SAM keys each source treats
    in its own way (a file keeps unused ones, code arguments refuse them)."""

    #: SOF settings by SOF name (unknown keys too, for validation to report with "did you
    #: mean"), SAM's names already turned into SOF's setting.
    values: dict[str, Any] = field(default_factory=dict)
    #: SOF setting -> the SAM key its value came from.
    names: dict[str, str] = field(default_factory=dict)
    #: The other SAM keys, in the order given.
    others: list[SamKey] = field(default_factory=list)


def sort_keys(data: Mapping[str, Any]) -> SortedKeys:
    """Sort ``data``'s keys: SOF names as they are, SAM's names mapped onto SOF's settings,
    the rest set apart for the caller (one place knows SAM's key table's rules)."""
    out = SortedKeys()
    for key, value in data.items():
        sam = SAM_KEYS.get(key)
        if sam is None or sam.setting == key:
            out.values[key] = value
        elif sam.setting is None:
            out.others.append(SamKey(key, value, "unused"))
        elif sam.setting in data:
            out.others.append(SamKey(key, value, "both", sam.setting))
        else:
            try:
                out.values[sam.setting] = sam.to_sof(value)
            except ConfigError as exc:
                out.others.append(SamKey(key, value, "bad", sam.setting, exc))
            else:
                out.names[sam.setting] = key
    return out


def interpret_file(data: Mapping[str, Any], source: str = "config file") -> FileSettings:
    """Sort a config file's keys: SOF names as they are, SAM's names mapped onto SOF's
    settings (SOF's name wins when a file holds both), SAM's other keys set apart."""
    keys = sort_keys(data)
    out = FileSettings(values=keys.values, names=keys.names)
    for other in keys.others:
        key, value = other.key, other.value
        if other.kind == "unused":
            out.sam_unused[key] = value
        elif other.kind == "both":
            setting = str(other.setting)
            out.shadowed[key] = setting
            sof_value = data[setting]
            if SAM_KEYS[key].to_sam(sof_value) != value:
                out.notes.append(
                    f"{source} sets both {key} = {_short(value)} (SAM's name) and "
                    f"{setting} = {_short(sof_value)}; SOF uses {setting}"
                )
        else:
            out.problems.append((key, f"{key} (from {source}): {other.error}"))
    return out


def argument_problem(other: SamKey) -> str:
    """Why a SAM key given in code (arguments, ``update_config``) cannot be taken as is."""
    key = other.key
    if other.kind == "unused":
        return (f"{key} is one of SAM's settings that SOF does not use "
                f"({SAM_KEYS[key].note}); it cannot be given here")
    if other.kind == "both":
        return f"{key} is SAM's name for {other.setting}, which is given too; give only one of them"
    return str(other.error)


def interpret_arguments(
    overrides: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, str], list[tuple[str, str]]]:
    """Keyword settings given in code: SOF names, or SAM's names for shared settings.

    Returns ``(values, names, problems)``. A SAM key SOF does not use is a problem, not a
    silently ignored argument; an unknown name is left in ``values`` for validation to
    report with "did you mean".
    """
    keys = sort_keys(overrides)
    return keys.values, keys.names, [(o.key, argument_problem(o)) for o in keys.others]


_noted: set[tuple[str, str]] = set()
_noted_lock = threading.Lock()


def note_file(path: Path, file: FileSettings) -> None:
    """Log, once per process, SAM's keys SOF does not use and the keys set under both names."""
    lines: list[tuple[int, str]] = []
    if file.sam_unused:
        lines.append((logging.INFO, f"SAM settings SOF does not use, kept in {path}: "
                                    + ", ".join(file.sam_unused)))
    lines += [(logging.WARNING, note) for note in file.notes]
    for level, line in lines:
        with _noted_lock:
            if (str(path), line) in _noted:
                continue
            _noted.add((str(path), line))
        log.log(level, "%s", line)


# --- reading the file -----------------------------------------------------------------------


class UnusableConfigPath(ConfigError):
    """The config path is not a regular file (a FIFO, a device, a directory): SOF neither
    reads it (a FIFO would block forever) nor replaces it."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_a_file(path: Path, mode: int) -> UnusableConfigPath:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    named = os.environ.get(ENV_CONFIG)
    via = f" ({ENV_CONFIG})" if named and expand_user(named) == path else ""
    return UnusableConfigPath(
        f"config file {path}{via} is {kind}, not a regular file; SOF reads its settings from "
        f"a JSON or TOML file: point {ENV_CONFIG} at one (or at {os.devnull} for none)",
        key=ENV_CONFIG,
    )


def is_devnull(path: Path) -> bool:
    """``os.devnull`` stands for "no config file" (``load_host_config`` relies on it)."""
    return str(path) == os.devnull


def read_config_source(path: Path) -> tuple[bytes | None, tuple[int, int, int, int] | None]:
    """The file's bytes (None: there is no file) and the signature of exactly those bytes.

    Anything but a regular file is refused with ``UnusableConfigPath`` before a byte is
    read: the file is opened non-blocking and checked with ``fstat``, so a FIFO never hangs
    the caller.
    """
    if is_devnull(path):
        return None, None
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None, None
    except IsADirectoryError:
        raise _not_a_file(path, stat.S_IFDIR) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}; fix its permissions or point "
            f"{ENV_CONFIG} at another file"
        ) from exc
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _not_a_file(path, st.st_mode)
    with os.fdopen(fd, "rb") as handle:
        try:
            raw = handle.read()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    return raw, stat_signature(st)


def stat_signature(st: os.stat_result) -> tuple[int, int, int, int]:
    """What identifies one version of a file (inode, size and times)."""
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a JSON or TOML config file; ``ConfigError`` names the file on any failure."""
    raw, _ = read_config_source(path)
    return {} if raw is None else parse_config_bytes(raw, path)


def parse_config_bytes(raw: bytes, path: Path) -> dict[str, Any]:
    """Parse a config file's bytes (TOML when ``path`` ends in ``.toml``, else JSON)."""
    try:
        if path.suffix == ".toml":
            data: Any = _load_toml(raw)
        else:
            data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ConfigError(
            f"config file {path} is corrupt ({reason}); fix it or delete it to use defaults"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold an object/table at top level")
    # Infinity or NaN (Python's json reads and SAM's json.dump writes them) is not refused
    # here: a SOF setting holding one is refused by the model, alone, and a key SOF does not
    # use is kept as it is, so a rollback never loses it (``sof config show --json`` shows
    # it as a string, to stay strict JSON).
    return data


def _load_toml(raw: bytes) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    return tomllib.loads(raw.decode("utf-8"))


# --- the environment ------------------------------------------------------------------------

#: ``SOF_*`` variables that are not settings but that SOF itself reads.
#: (``SOF_TRACE_PLUGINS`` is read by ``sof_core.plugins.tracing`` at each registration.)
_OTHER_ENV = frozenset({ENV_CONFIG, ENV_DISABLE_AUTOLOAD, "SOF_TRACE_PLUGINS"})


def env_setting(var: str) -> str | None:
    """The setting a ``SOF_*`` variable sets (an alias or ``SOF_<FIELD>``), or None."""
    alias = ENV_ALIASES.get(var)
    if alias is not None:
        return alias
    key = var[len(ENV_PREFIX):].lower()
    if key in SOFConfig.model_fields and key not in _NOT_FROM_ENV:
        return key
    return None


def env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Config values from ``SOF_<FIELD>`` variables (and the aliases), as raw strings.

    An unknown ``SOF_*`` variable is logged once per process with "did you mean" (it is not
    an error: it may belong to a plugin or another version of SOF).
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for var in environ:
        if var.startswith(ENV_PREFIX) and env_setting(var) is None and var not in _OTHER_ENV:
            _warn_unknown_env(var)
    for key, var in _setting_vars(environ).items():
        values[key] = _coerce_env(var, key, environ[var])
    if _autoload_disabled(environ):
        values["plugins_autoload"] = False
    return values


def env_sources(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Which variable set each key (for ``sof config show``): ``{key: "SOF_..."}``."""
    environ = os.environ if environ is None else environ
    sources = _setting_vars(environ)
    if _autoload_disabled(environ):
        sources["plugins_autoload"] = ENV_DISABLE_AUTOLOAD
    return sources


def _setting_vars(environ: Mapping[str, str]) -> dict[str, str]:
    """``{key: variable}`` for the settings ``environ`` sets. With both a setting's own
    variable and its short alias set (``SOF_SOF_ROLLOUT_PERCENTAGE`` and
    ``SOF_ROLLOUT_PERCENTAGE``), the setting's own wins, as SOF's name wins in a file,
    whatever order the environment lists them in; one warning per process when they
    disagree (a rollback through the alias would otherwise be masked without a word)."""
    chosen: dict[str, str] = {}
    for var in environ:
        if not var.startswith(ENV_PREFIX):
            continue
        key = env_setting(var)
        if key is None:
            continue
        other = chosen.get(key)
        if other is not None and other != var:
            own, alias = (other, var) if var in ENV_ALIASES else (var, other)
            _warn_both_set(own, alias, environ)
            chosen[key] = own
            continue
        chosen[key] = var
    return chosen


def _warn_both_set(own: str, alias: str, environ: Mapping[str, str]) -> None:
    if environ[own].strip() == environ[alias].strip() or not _first_time((own, alias)):
        return
    log.warning("%s=%r and %s=%r are both set and disagree: %s wins (unset one of them)",
                own, environ[own], alias, environ[alias], own)


def _autoload_disabled(environ: Mapping[str, str]) -> bool:
    """``SOF_DISABLE_PLUGIN_AUTOLOAD``: 1/true/yes/on turn autoload off; 0/false/no/off or
    empty leave it as configured; anything else is an error."""
    raw = environ.get(ENV_DISABLE_AUTOLOAD)
    if raw is None:
        return False
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(
        f"{ENV_DISABLE_AUTOLOAD}={raw!r} is not a yes/no value; set it to 1 to stop "
        "autoloading plugins, or to 0 (or unset it) to keep autoloading",
        key="plugins_autoload",
    )


def known_env_vars() -> list[str]:
    """Every ``SOF_*`` variable SOF itself reads, once each (an alias may spell a field's
    own variable: ``SOF_PLUGINS_ONLY``)."""
    names = [f"{ENV_PREFIX}{key.upper()}" for key in SOFConfig.model_fields
             if key not in _NOT_FROM_ENV]
    return list(dict.fromkeys([*names, *ENV_ALIASES, *sorted(_OTHER_ENV)]))


def unknown_env_vars(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``SOF_*`` variables SOF does not read and no installed plugin claims, with a hint."""
    environ = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for var in sorted(environ):
        if var.startswith(ENV_PREFIX) and env_setting(var) is None and var not in _OTHER_ENV:
            hint = _unknown_env_hint(var)
            if hint is not None:
                found[var] = hint
    return found


_env_checked: set[str | tuple[str, str]] = set()
_env_lock = threading.Lock()


def _first_time(what: str | tuple[str, str]) -> bool:
    """Whether this process has not warned about ``what`` yet (and now has)."""
    with _env_lock:
        if what in _env_checked:
            return False
        _env_checked.add(what)
        return True


def _warn_unknown_env(var: str) -> None:
    if not _first_time(var):
        return
    hint = _unknown_env_hint(var)
    if hint is not None:
        log.warning("ignoring environment variable %s: %s", var, hint)


def _unknown_env_hint(var: str) -> str | None:
    """Why ``var`` is ignored and what to set instead; None when a plugin reads it."""
    if _plugin_env(var):
        return None
    name = var[len(ENV_PREFIX):].lower()
    sam = SAM_KEYS.get(name)
    if sam is not None and sam.setting == "executor":
        return f"SAM's {name} is SOF's executor: set {ENV_PREFIX}EXECUTOR=sequential or threads"
    if sam is not None and sam.setting is not None:
        return f"SAM's {name} is SOF's {sam.setting}: set {ENV_PREFIX}{sam.setting.upper()}"
    if sam is not None:
        return f"{name} is one of SAM's settings that SOF does not use"
    if name in _NOT_FROM_ENV:
        return f"{name} cannot be set from the environment; set it in the config file"
    import difflib  # only for a misspelt name

    matches = difflib.get_close_matches(var, known_env_vars(), n=2, cutoff=0.75)
    if matches:
        return "did you mean " + " or ".join(matches) + "?"
    return "no SOF setting or installed plugin reads it"


def _plugin_env(var: str) -> bool:
    """``SOF_<PLUGIN>_...`` for an installed plugin's entry-point name, or a shared prefix."""
    if var.startswith(SHARED_ENV_PREFIXES):
        return True
    try:  # the metadata files only: discovery (importlib.metadata) costs several times more
        from sof_core._installed import installed_plugins

        names = {name.upper().replace("-", "_") for name, _, _ in installed_plugins()}
    except Exception:  # broken metadata must not break reading the configuration
        return False
    rest = var[len(ENV_PREFIX):]
    return any(rest == name or rest.startswith(name + "_") for name in names if name)


def json_depth(text: str) -> int:
    """How deeply ``[`` and ``{`` nest in JSON ``text``, outside strings (never recurses)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def _env_json(var: str, key: str, text: str) -> Any:
    """JSON from a variable; nesting beyond ``MAX_ENV_DEPTH`` is a ``ConfigError``."""
    too_deep = ConfigError(
        f"{var} holds JSON nested more than {MAX_ENV_DEPTH} levels deep; no setting takes "
        "that", key=key,
    )
    if json_depth(text) > MAX_ENV_DEPTH:
        raise too_deep
    try:
        return json.loads(text)
    except RecursionError:
        raise too_deep from None


def _coerce_env(var: str, key: str, raw: str) -> Any:
    annotation = str(SOFConfig.model_fields[key].annotation)
    text = raw.strip()
    if text.lower() in ("none", "null") and "None" in annotation:
        return None  # before a list's commas: "none" is not a list holding "none"
    if "list" in annotation:
        if text.startswith("["):
            try:
                value: Any = _env_json(var, key, text)
            except ValueError as exc:
                if isinstance(exc, ConfigError):
                    raise
                raise ConfigError(f"{var}={raw!r} is not a JSON list: {exc}", key=key) from exc
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
        if key == "plugins_only" and value == []:
            raise ConfigError(
                f"{var} is set but names no plugin; list the plugins to load "
                f"({var}=memory,response), or unset it to load every plugin "
                f"({ENV_DISABLE_AUTOLOAD}=1 loads none)",
                key=key,
            )
        return value
    if annotation.startswith("dict"):
        try:
            value = _env_json(var, key, text)
        except ConfigError:
            raise
        except ValueError as exc:
            value = exc
        if not isinstance(value, dict):
            example = (
                '{"MemoryRetrievalSkill": "sam-skills"}'
                if key == "skill_providers"
                else '{"name": "value"}'
            )
            raise ConfigError(
                f"{var}={_short(raw)} is not a JSON object; write it like {var}='{example}'",
                key=key,
            )
        return value
    return text


def valid_env_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings valid ``SOF_*`` variables set, each validated on its own (a bad one is
    left out: reading for running reports it)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for key, var in _setting_vars(environ).items():
        try:
            config = SOFConfig(**{key: _coerce_env(var, key, environ[var])})
        except (ConfigError, ValidationError):
            continue
        values[key] = getattr(config, key)
    return values


def sam_settings_from(
    data: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """SAM's 31 settings as SAM's code sees them in a config file's ``data`` (None: no
    usable file): for each, a valid ``SOF_*`` variable for the shared setting, else SOF's
    name in the file (it wins over SAM's), else SAM's key, else SAM's default. Values are
    taken as the file holds them (SAM never checked them; ``validate_config`` does)."""
    data = data or {}
    env = valid_env_settings(environ)
    values: dict[str, Any] = {}
    for name, key in SAM_KEYS.items():
        if key.setting is not None and key.setting in env:
            values[name] = key.to_sam(env[key.setting])
        elif key.renamed and key.setting is not None and key.setting in data:
            values[name] = key.to_sam(data[key.setting])
        elif name in data:
            values[name] = data[name]
        else:
            values[name] = key.fresh_default()
    return values


# --- validation and errors ------------------------------------------------------------------


def describe_validation(
    exc: ValidationError,
    sources: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """``(key, message)`` for each problem, each unknown key once, named as the user wrote
    it (``names`` maps a SOF setting to the SAM key it was read from)."""
    names = names or {}
    parts: list[tuple[str, str]] = []
    seen: set[str] = set()
    for error in exc.errors():
        loc = error["loc"]
        top = str(loc[0]) if loc else ""
        dotted = ".".join(str(p) for p in loc) or "<config>"
        where = f" (from {sources[top]})" if sources and top in sources else ""
        if error["type"] == "extra_forbidden":
            if top in seen:
                continue
            seen.add(top)
            parts.append((top, f"unknown config key {top!r}{where}{unknown_key_hint(top)}"))
            continue
        shown = dotted
        if top in names:
            shown = f"{names[top]} (SAM's name for {top})" + dotted[len(top):]
        got = _short(error.get("input"))
        message = validation_message(error)
        parts.append((names.get(top, top), f"{shown}{where}: {message} (got {got})"))
    return parts


def config_error(parts: Iterable[tuple[str, str]]) -> ConfigError:
    """One ``ConfigError`` listing every problem; ``key`` is the first key at fault."""
    parts = list(parts)
    key = parts[0][0] if parts else None
    return ConfigError("invalid configuration: " + "; ".join(m for _, m in parts), key=key)


def config_error_from(
    exc: ValidationError,
    sources: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> ConfigError:
    """Turn pydantic's error into one ``ConfigError`` naming each bad key and its source."""
    return config_error(describe_validation(exc, sources, names))


def validate_merged(
    merged: Mapping[str, Any],
    sources: Mapping[str, str],
    names: Mapping[str, str] | None = None,
    problems: Iterable[tuple[str, str]] = (),
) -> SOFConfig:
    """``SOFConfig`` from merged layers; one ``ConfigError`` lists every problem."""
    problems = list(problems)
    try:
        config = SOFConfig(**merged)
    except ValidationError as exc:
        raise config_error([*problems, *describe_validation(exc, sources, names)]) from None
    if problems:
        raise config_error(problems)
    return config


def build_config(
    file_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> SOFConfig:
    """Merge defaults, file, environment and arguments into one validated ``SOFConfig``.

    Arguments take SOF's setting names or SAM's names for shared settings; anything else
    (an unknown name, a SAM key SOF does not use) is a ``ConfigError``, never ignored.
    """
    path = file_path if file_path is not None else default_config_path()
    label = f"config file {path}"
    file = interpret_file(read_config_file(path), label)
    note_file(path, file)
    arguments, argument_names, argument_problems = interpret_arguments(overrides)
    env = env_overrides(environ)
    env_vars = env_sources(environ)
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    names: dict[str, str] = {}
    for key, value in file.values.items():
        merged[key], sources[key] = value, label
        if key in file.names:
            names[key] = file.names[key]
    for key, value in env.items():
        merged[key], sources[key] = value, f"environment {env_vars.get(key, '')}".strip()
        names.pop(key, None)
    for key, value in arguments.items():
        merged[key], sources[key] = value, "arguments"
        names.pop(key, None)
    names.update(argument_names)
    return validate_merged(merged, sources, names, [*file.problems, *argument_problems])


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
