"""The live configuration: read per query, changed safely at runtime, rolled back in one call.

A host keeps one ``SOFConfigManager`` and asks it for ``config`` (or ``state()``) on every
query. That costs one ``stat`` of the config file and a scan of the ``SOF_*`` variables; the
file is parsed again only when its inode, size or times change, so an operator's
``sof config disable`` in another process takes effect on the host's next query without a
restart. Environment variables and explicit arguments still override the file.

Writes (``update_config``) are safe against crashes and concurrency: under an exclusive lock
file, the manager re-reads the file, applies the change, writes a temporary file in the same
directory, fsyncs it and ``os.replace``s it over the old one. A crash leaves either the old
file or the new one, never half of one, and two processes each setting a different key both
keep their change.

A write checks only what it changes: the rest of the file is written back as it was, known
or not, valid or not. So a rollback works on any file that parses (a rollout of 150, a
typo'd key, SAM's own keys), while reading that file for running still reports what is
wrong with it. A setting is stored under the name the file already uses for it (SAM's
``max_execution_time`` stays ``max_execution_time``), so SAM's code reading the same file
sees the change too.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import shutil
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as clock_time
from glob import escape as glob_escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from sof_core._paths import config_file_problem, expand_user
from sof_core.config.model import SAM_KEYS, SAM_NAMES, SOFConfig, _short
from sof_core.config.sources import (
    UnusableConfigPath,
    _not_a_file,
    argument_problem,
    config_error,
    default_config_path,
    describe_validation,
    env_overrides,
    env_sources,
    interpret_arguments,
    interpret_file,
    is_devnull,
    note_file,
    parse_config_bytes,
    read_config_source,
    sam_settings_from,
    sort_keys,
    stat_signature,
    valid_env_settings,
    validate_merged,
)
from sof_core.errors import ConfigError, validation_message

if TYPE_CHECKING:
    from pydantic import TypeAdapter

log = logging.getLogger("sof.config")

#: Seconds to wait for another writer's lock before giving up with a ``ConfigError``.
LOCK_TIMEOUT = 10.0
#: An ``O_EXCL`` lock file older than this is assumed abandoned (platforms without fcntl).
STALE_LOCK_AGE = 60.0

_Signature = tuple[int, int, int, int] | None


@dataclass(frozen=True)
class ConfigState:
    """The configuration as of one query: a config, or the error that prevented one.

    ``fallback_to_legacy`` is known even when the file is broken: it then comes from the
    defaults, the environment and the arguments (the layers that could still be read).
    """

    config: SOFConfig | None
    error: ConfigError | None
    sources: Mapping[str, str] = field(default_factory=dict)
    fallback_to_legacy: bool = True
    key: Any = None
    #: SOF setting -> the SAM key in the file its value was read from.
    names: Mapping[str, str] = field(default_factory=dict)
    #: SAM's settings SOF does not use, as the file holds them.
    sam_unused: Mapping[str, Any] = field(default_factory=dict)
    #: The file's parsed data (``{}`` when there is no file; None when it cannot be parsed).
    file_data: Mapping[str, Any] | None = None
    #: Warnings about the file that do not make it unusable: a setting given under both
    #: names with different values (logged once per process; ``sof config show``, which
    #: mutes the log, prints them itself).
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Change:
    """One setting to write: under SOF's name, SAM's name, or both (see ``apply_changes``)."""

    given: str
    #: The SOF setting (None: one of SAM's keys that SOF does not use).
    setting: str | None
    sof_value: Any
    sam_value: Any


class SOFConfigManager:
    """Reads, explains and changes the configuration stored in one config file.

    ``path`` (or SAM's keyword ``config_path``) names the file; without either it is
    ``$SOF_CONFIG`` or the user config file. Keyword ``overrides`` are settings that win over
    the file and the environment; each is checked here, so a misspelt one is a
    ``ConfigError`` now rather than a setting that silently does nothing.
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        config_path: Path | str | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> None:
        if path is not None and config_path is not None and Path(path) != Path(config_path):
            raise ConfigError(
                f"two config files given ({path} and config_path={config_path}); give one",
                key="config_path",
            )
        chosen = path if path is not None else config_path
        self.path = _given_path(chosen) if chosen is not None else default_config_path()
        #: Why there is no config file to write (no home directory to find it in), or None.
        self._unlocated = config_file_problem() if chosen is None else None
        self._environ = environ
        values, names, problems = interpret_arguments(overrides)
        try:
            SOFConfig(**values)
        except ValidationError as exc:
            sources = dict.fromkeys(values, "SOFConfigManager argument")
            raise config_error([*problems, *describe_validation(exc, sources, names)]) from None
        if problems:
            raise config_error(problems)
        self._overrides = values
        self._override_names = names
        self._lock = threading.RLock()
        self._state: ConfigState | None = None
        self._logged_error: str | None = None
        #: Where the last repairing write or reset kept the previous file (None: never).
        self.last_backup: Path | None = None

    @property
    def config_path(self) -> Path:
        """SAM's name for ``path``."""
        return self.path

    @property
    def unlocated(self) -> str | None:
        """Why there is no config file to store settings in, and what to set, in one line:
        the user config folder needs a home directory and there is none (``path`` is then
        ``os.devnull``, read as defaults). None when ``path`` is a located file."""
        return self._unlocated

    # --- reading -------------------------------------------------------------------------

    @property
    def config(self) -> SOFConfig:
        """The effective configuration now; ``ConfigError`` if it cannot be built."""
        state = self.state()
        if state.error is not None:
            raise ConfigError(str(state.error), key=state.error.key)
        assert state.config is not None
        return state.config

    def state(self) -> ConfigState:
        """The current ``ConfigState``; re-reads the file only when it changed. Never raises."""
        key = (self._signature(), self._env_key())
        state = self._state
        if state is not None and state.key == key:
            return state
        with self._lock:
            state = self._state
            if state is not None and state.key == key:
                return state
            new = self._build(key[1])
            error = None if new.error is None else str(new.error)
            if error is not None and error != self._logged_error:
                log.warning("SOF configuration is unusable: %s", error)
            self._logged_error = error
            self._state = new
            return new

    def reload(self) -> ConfigState:
        """Forget the cached state and read everything again."""
        with self._lock:
            self._state = None
        return self.state()

    def explain(self) -> list[dict[str, Any]]:
        """Every key with its effective value and where it came from (``sof config show``)."""
        state = self.state()
        if state.error is not None:
            raise ConfigError(str(state.error), key=state.error.key)
        assert state.config is not None
        values = state.config.model_dump(mode="json")
        rows = []
        for key in SOFConfig.model_fields:
            source = state.sources.get(key, "default")
            if key in state.names:
                source = f"{source} (as {state.names[key]})"
            rows.append({"key": key, "value": values[key], "source": source})
        return rows

    def sam_unused(self) -> dict[str, Any]:
        """SAM's settings in the file that SOF does not use (kept there untouched)."""
        return dict(self.state().sam_unused)

    def _environment(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _env_key(self) -> tuple[tuple[str, str], ...]:
        env = self._environment()
        return tuple(sorted((k, v) for k, v in env.items() if k.startswith("SOF_")))

    def _signature(self) -> _Signature | tuple[str, int]:
        if is_devnull(self.path):
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return ("unreadable", exc.errno or 0)
        return stat_signature(st)

    def _read_file(self) -> tuple[dict[str, Any], Any]:
        """The file's data (``{}`` when there is none) and the signature of exactly the bytes
        that were parsed."""
        raw, signature = read_config_source(self.path)
        if raw is None:
            return {}, None
        return parse_config_bytes(raw, self.path), signature

    def _build(self, env_key: Any) -> ConfigState:
        try:
            data, signature = self._read_file()
        except ConfigError as exc:
            return ConfigState(None, exc, {}, self._fallback_flag(), (self._signature(), env_key))
        key = (signature, env_key)
        file = interpret_file(data, f"config file {self.path}")
        note_file(self.path, file)
        try:
            config, sources, names = self._assemble(data)
        except ConfigError as exc:
            return ConfigState(None, exc, {}, self._fallback_flag(), key,
                               sam_unused=file.sam_unused, file_data=data,
                               notes=tuple(file.notes))
        return ConfigState(config, None, sources, config.fallback_to_legacy, key, names=names,
                           sam_unused=file.sam_unused, file_data=data, notes=tuple(file.notes))

    def _assemble(
        self, data: Mapping[str, Any]
    ) -> tuple[SOFConfig, dict[str, str], dict[str, str]]:
        """The file's data, the environment and the arguments as one validated config."""
        environ = self._environment()
        label = f"config file {self.path}"
        file = interpret_file(data, label)
        env = env_overrides(environ)
        env_vars = env_sources(environ)
        sources = dict.fromkeys(file.values, label)
        names = dict(file.names)
        for key in env:
            sources[key] = f"environment {env_vars.get(key, '')}".strip()
            names.pop(key, None)
        for key in self._overrides:
            sources[key] = "argument"
            names.pop(key, None)
        names.update(self._override_names)
        merged = {**file.values, **env, **self._overrides}
        return validate_merged(merged, sources, names, file.problems), sources, names

    def _fallback_flag(self) -> bool:
        """``fallback_to_legacy`` from the layers that still work when the file does not."""
        return self._without_file().fallback_to_legacy

    def _without_file(self) -> SOFConfig:
        """Defaults, environment and arguments: the configuration when the file is unusable."""
        try:
            return SOFConfig(**{**env_overrides(self._environment()), **self._overrides})
        except (ConfigError, ValidationError):
            pass
        try:
            return SOFConfig(**{**valid_env_settings(self._environment()), **self._overrides})
        except ValidationError:
            return SOFConfig()

    def _lenient(self) -> SOFConfig:
        """The configuration with every bad key left out (what a write reports when the file
        still has problems it did not touch); ``state()`` still reports them."""
        state = self.state()
        if state.config is not None:
            return state.config
        file = interpret_file(state.file_data or {})
        try:
            env = env_overrides(self._environment())
        except ConfigError:
            env = valid_env_settings(self._environment())
        merged = {**file.values, **env, **self._overrides}
        for _ in range(len(merged) + 1):
            try:
                return SOFConfig(**merged)
            except ValidationError as exc:
                bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]} & merged.keys()
                if not bad:
                    break
                for key in bad:
                    del merged[key]
        return self._without_file()

    # --- writing -------------------------------------------------------------------------

    def update_config(self, **changes: Any) -> SOFConfig:
        """Validate ``changes``, persist them atomically, and return the effective config.

        Keys are SOF's setting names, SAM's names for shared settings (``max_execution_time``)
        or SAM's other keys (stored for SAM's code; SOF does not use them). An unknown key or
        a bad value raises ``ConfigError`` naming it (with "did you mean"), before anything
        is written. Only the changed keys are checked: the rest of the file is kept as it
        was, so ``update_config(sof_rollout_percentage=0)`` works whatever else the file
        holds. A file that does not parse is not overwritten (``ConfigError`` says how to fix
        it); ``disable_sof_framework()`` is the exception, because a rollback must work.
        """
        return self._update(changes, repair=False)

    def disable_sof_framework(self) -> SOFConfig:
        """Roll back: every new query takes the legacy path. Works on any file that parses,
        and on one that does not (kept next to the new one as ``<name>.corrupt-<time>``)."""
        return self._update({"use_sof_framework": False}, repair=True)

    def enable_sof_framework(self, rollout_percentage: float | None = None) -> SOFConfig:
        """Turn SOF on, optionally setting the share of users routed to it."""
        changes: dict[str, Any] = {"use_sof_framework": True}
        if rollout_percentage is not None:
            changes["sof_rollout_percentage"] = rollout_percentage
        return self._update(changes, repair=False)

    def set_rollout_percentage(self, percentage: float) -> SOFConfig:
        """Route ``percentage`` % of users (by a stable hash of their id) to SOF."""
        return self._update({"sof_rollout_percentage": percentage}, repair=False)

    def _update(self, changes: Mapping[str, Any], *, repair: bool) -> SOFConfig:
        if not changes:
            return self.config
        prepared = prepare_changes(changes)
        self._write(lambda data, exists: apply_changes(data, prepared), repair=repair)
        self._warn_if_overridden(prepared)
        return self._after_write(changes)

    def _write(
        self,
        edit: Callable[[dict[str, Any], bool], dict[str, Any]],
        *,
        repair: bool,
        keep_copy: str | None = None,
    ) -> None:
        """Under the lock: read the file, ``edit(data, exists)``, write the result atomically.

        ``repair``: a file that does not parse is set aside and edited as empty.
        ``keep_copy``: the old file is first copied to ``<name>.<keep_copy>-<time>``.
        """
        self._check_writable()
        # Through a symlink, the file it names is what every reader sees: it is replaced
        # (beside itself, under its own lock) and the link stays a link.
        target = Path(os.path.realpath(self.path))
        backup: Path | None = None
        unusable: ConfigError | None = None
        try:
            with self._lock, _file_lock(target):
                try:
                    data, _ = self._read_file()
                    exists = os.path.lexists(target)
                except UnusableConfigPath:
                    raise
                except ConfigError as exc:
                    if not repair:
                        raise ConfigError(
                            f"{exc}; not updating it. Fix or delete the file, or run "
                            "`sof config disable`, which keeps a copy and writes a fresh one"
                        ) from None
                    data, exists, unusable = {}, False, exc
                    # A copy, not a move: the broken file stays at its path until the new
                    # one replaces it, so no reader ever finds no file there.
                    backup = self._set_aside(target, "corrupt")
                if keep_copy is not None and exists:
                    backup = self._set_aside(target, keep_copy)
                new = edit(data, exists)
                try:
                    text = dump_config(new, self.path)
                except RecursionError:
                    raise ConfigError(f"config file {self.path}: a value is nested too deeply "
                                      "to write back") from None
                if not text.isascii():  # a lone surrogate already in the file (JSON's \ud800)
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        raise ConfigError(
                            f"config file {self.path}: a value holds a lone surrogate (text "
                            "that is not valid Unicode), which the file cannot store; not "
                            "updating it") from None
                _remove_dead_writers_files(target)
                write_atomic(target, text)
                self._state = None
        except BaseException as exc:
            if backup is not None:  # the file is unchanged: a copy of it is only clutter
                with suppress(OSError):
                    os.unlink(backup)
            if isinstance(exc, OSError):
                raise _write_error(self.path, exc) from exc
            raise
        if backup is not None:
            self.last_backup = backup
        if unusable is not None:
            log.warning("config file %s was unusable (%s); kept a copy as %s", self.path,
                        unusable, backup)

    def _check_writable(self) -> None:
        """Refuse ``os.devnull`` and anything that is not a regular file, before locking."""
        if is_devnull(self.path) and self._unlocated is not None:
            raise ConfigError(f"cannot store a setting: {self._unlocated}", key="SOF_CONFIG")
        if is_devnull(self.path):
            raise ConfigError(
                f"config file {self.path} stands for \"no config file\" and cannot store a "
                "setting; point SOF_CONFIG at a JSON or TOML file",
                key="SOF_CONFIG",
            )
        try:
            st = os.stat(self.path)
        except OSError:
            return
        if not stat.S_ISREG(st.st_mode):
            raise _not_a_file(self.path, st.st_mode)

    def _after_write(self, changes: Mapping[str, Any]) -> SOFConfig:
        """The effective config after a write; when the file still has other problems the
        write succeeded anyway: they are logged and the config without them is returned."""
        state = self.state()
        if state.config is not None:
            return state.config
        log.warning("saved %s to %s, but the configuration is still unusable: %s",
                    ", ".join(changes), self.path, state.error)
        return self._lenient()

    def _warn_if_overridden(self, changes: list[_Change]) -> None:
        state = self.state()
        for change in changes:
            source = state.sources.get(change.setting or "", "")
            if source.startswith(("environment", "argument")):
                log.warning(
                    "%s was saved to %s, but %s overrides it, so the effective value is "
                    "unchanged; unset it to let the file decide", change.given, self.path,
                    source
                )

    def overridden(self, key: str) -> str | None:
        """The environment variable or argument that overrides the file for ``key``, if any."""
        sam = SAM_KEYS.get(key)
        setting = sam.setting if sam is not None and sam.setting else key
        source = self.state().sources.get(setting, "")
        return source if source.startswith(("environment", "argument")) else None

    def _set_aside(self, path: Path, label: str) -> Path | None:
        """Keep a copy of ``path`` as ``<name>.<label>-<unix time>`` (``-1``, ``-2``, ...
        added when that name is taken); None when there was nothing to keep or it failed.

        A hard link when the file system allows one: it needs no space (a repair on a full
        disk still keeps the old file) and ``write_atomic`` never changes the old file in
        place, only replaces it. Else a copy."""
        backup: Path | None = None
        try:
            backup = _claim_backup_name(path.with_name(f"{path.name}.{label}-{int(time.time())}"))
            try:
                _link_over(path, backup)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError):
                    raise
                shutil.copy2(path, backup)
        except OSError as exc:
            if backup is not None:  # the name claimed for it, still empty
                with suppress(OSError):
                    os.unlink(backup)
            if not isinstance(exc, FileNotFoundError):
                log.warning("could not keep a copy of config file %s", self.path)
            return None
        return backup

    # --- SAM's manager API (``sam.orchestration.config.SOFConfigManager``) ----------------

    def load_config(self) -> SOFConfig:
        """SAM's name for the effective configuration. Never raises: an unusable file is
        logged (by ``state()``) and left out, so defaults, environment and arguments apply
        and SOF stays off unless they turn it on (the router does the same)."""
        state = self.state()
        if state.config is not None:
            return state.config
        return self._without_file()

    def save_config(self, config: SOFConfig | None = None) -> SOFConfig:
        """Store every setting of ``config`` that differs from the effective configuration
        (so environment overrides are not copied into the file). Without ``config`` there is
        nothing to store."""
        current = self.load_config()
        if config is None:
            return current
        wanted = config.model_dump()
        now = current.model_dump()
        changes = {key: value for key, value in wanted.items() if now.get(key) != value}
        return self._update(changes, repair=False) if changes else current

    def is_sof_enabled(self) -> bool:
        """``use_sof_framework`` as it applies now (False while the file is unusable, unless
        the environment or an argument turns it on)."""
        return self.load_config().use_sof_framework

    def enable_sof(self) -> SOFConfig:
        """SAM's name for ``enable_sof_framework()``."""
        return self.enable_sof_framework()

    def disable_sof(self) -> SOFConfig:
        """SAM's name for ``disable_sof_framework()``."""
        return self.disable_sof_framework()

    def get_skill_config(self, skill_name: str) -> dict[str, Any]:
        """SAM's per-skill settings (the same for every skill, as in SAM)."""
        config = self.load_config()
        return {
            "max_execution_time": config.skill_timeout,
            "enable_sandboxing": self.sam_settings()["enable_skill_sandboxing"],
            "enable_metrics": config.enable_execution_metrics,
            "log_level": config.log_level,
        }

    def get_migration_config(self) -> dict[str, Any]:
        """SAM's migration settings, plus SOF's ``sof_rollout_percentage``."""
        config = self.load_config()
        sam = self.sam_settings()
        return {
            "use_sof_framework": config.use_sof_framework,
            "fallback_to_legacy": config.fallback_to_legacy,
            "legacy_timeout": sam["legacy_timeout"],
            "enable_execution_tracing": sam["enable_execution_tracing"],
            "sof_rollout_percentage": config.sof_rollout_percentage,
        }

    def validate_config(self, config: SOFConfig | None = None) -> list[str]:
        """Every problem as one line naming its key (empty: none). Without ``config``, the
        file, environment and arguments are checked as reading for running would."""
        if config is not None:
            return _cross_checks(config)
        problems: list[str] = []
        try:
            data, _ = self._read_file()
        except ConfigError as exc:
            return [str(exc)]
        file = interpret_file(data, f"config file {self.path}")
        problems += file.notes
        try:
            config, _, _ = self._assemble(data)
        except ConfigError:
            problems += self._problem_lines(data)
            config = self._lenient()
        return problems + _cross_checks(config)

    def _problem_lines(self, data: Mapping[str, Any]) -> list[str]:
        environ = self._environment()
        label = f"config file {self.path}"
        file = interpret_file(data, label)
        lines = [message for _, message in file.problems]
        try:
            env = env_overrides(environ)
        except ConfigError as exc:
            return [*lines, str(exc)]
        merged = {**file.values, **env, **self._overrides}
        sources = dict.fromkeys(file.values, label)
        sources.update({k: f"environment {v}" for k, v in env_sources(environ).items()})
        sources.update(dict.fromkeys(self._overrides, "argument"))
        try:
            SOFConfig(**merged)
        except ValidationError as exc:
            lines += [m for _, m in describe_validation(exc, sources, file.names)]
        return lines

    def reset_to_defaults(self) -> SOFConfig:
        """Replace the file with an empty one (every setting at SOF's default). The old file
        is kept as ``<name>.before-reset-<time>`` (``last_backup``)."""
        self._write(lambda data, exists: {}, repair=True, keep_copy="before-reset")
        return self.load_config()

    # --- SAM's view of the same file (used by ``sof_sam.config``) ------------------------

    def sam_settings(self) -> dict[str, Any]:
        """SAM's 31 settings as SAM's code sees them in this file (see ``SAM_KEYS``)."""
        return sam_settings_from(self.state().file_data, self._environment())

    def save_sam_settings(
        self,
        values: Mapping[str, Any],
        *,
        replace: bool = False,
        also: Mapping[str, Any] | None = None,
    ) -> None:
        """Store SAM's settings: each value that differs from what the file means now, under
        the name the file uses for it; every other key stays as it was. With no file, all of
        ``values`` are written (SAM's file). ``replace`` writes exactly ``values`` (the old
        file is kept as ``<name>.before-reset-<time>``). ``also``: SOF settings to write in
        the same atomic write (``sof_sam``'s ``update_config(sof_rollout_percentage=0)``).

        A file that does not parse is kept as ``<name>.corrupt-<time>`` and replaced (SAM
        overwrote it). A bad value raises ``ConfigError`` naming the key; nothing is written.
        """
        unknown = [key for key in values if key not in SAM_KEYS]
        if unknown:
            raise ConfigError(f"not SAM settings: {', '.join(unknown)}", key=unknown[0])
        environ = self._environment()
        state = self.state()
        if replace or state.file_data is None or not os.path.lexists(self.path):
            prepare_changes(values, source="save_config")  # checked before the lock
        else:
            current = sam_settings_from(state.file_data, environ)
            prepare_changes({k: v for k, v in values.items() if not _same(v, current[k])},
                            source="save_config")
        extra = prepare_changes(also, source="update_config") if also else []

        def edit(data: dict[str, Any], exists: bool) -> dict[str, Any]:
            if replace or not exists:
                new = apply_changes({}, prepare_changes(values, source="save_config"))
            else:
                current = sam_settings_from(data, environ)
                changed = {k: v for k, v in values.items() if not _same(v, current[k])}
                new = apply_changes(data, prepare_changes(changed, source="save_config"))
            new = apply_changes(new, extra)
            # SAM's dataclass stores what it is given: a whole number stays one in its file
            # (``plan_cache_ttl`` 3600, not the 3600.0 of SOF's float setting).
            for key, value in values.items():
                if type(value) is int and type(new.get(key)) is float and new[key] == value:
                    new[key] = value
            return new

        self._write(edit, repair=True, keep_copy="before-reset" if replace else None)
        if extra:
            self._warn_if_overridden(extra)


# --- changes -------------------------------------------------------------------------------

_SAM_TYPES: dict[str, TypeAdapter[Any]] = {}


def _sam_adapter(name: str) -> TypeAdapter[Any]:
    adapter = _SAM_TYPES.get(name)
    if adapter is None:
        from pydantic import TypeAdapter  # at a SAM key's first write: not at start-up

        adapter = _SAM_TYPES[name] = TypeAdapter(SAM_KEYS[name].type)
    return adapter


def prepare_changes(changes: Mapping[str, Any], source: str = "update_config") -> list[_Change]:
    """Check ``changes`` on their own (not the rest of the file) and normalise them.

    One ``ConfigError`` names every unknown key (with "did you mean") and bad value.
    """
    keys = sort_keys(changes)
    sof, names = keys.values, keys.names
    problems: list[tuple[str, str]] = []
    unused: dict[str, Any] = {}
    for other in keys.others:
        key, value = other.key, other.value
        if other.kind == "unused":  # kept in the file for SAM: checked as SAM would
            try:
                adapter = _sam_adapter(key)
                unused[key] = adapter.dump_python(adapter.validate_python(value), mode="json")
            except ValidationError as exc:
                message = validation_message(exc.errors()[0])
                problems.append((key, f"{key} (from {source}): {message} (got {_short(value)})"))
            except (ValueError, RecursionError):  # nested past what pydantic writes out
                problems.append((key, f"{key} (from {source}): {_TOO_DEEP}"))
        elif other.kind == "both":
            problems.append((key, argument_problem(other)))
        else:
            problems.append((key, f"{key} (from {source}): {other.error}"))
    try:
        validated = SOFConfig(**sof)
    except ValidationError as exc:
        sources = dict.fromkeys(sof, source)
        raise config_error([*problems, *describe_validation(exc, sources, names)]) from None
    dumped = _dumped(validated, sof, names, source, problems)
    if problems:
        raise config_error(problems)
    prepared = []
    for setting, value in dumped.items():
        sam_name = SAM_NAMES.get(setting)
        sam_value = SAM_KEYS[sam_name].to_sam(value) if sam_name else value
        prepared.append(_Change(names.get(setting, setting), setting, value, sam_value))
    prepared += [_Change(key, None, value, value) for key, value in unused.items()]
    unstorable = [(change.given, f"{change.given} (from {source}): {why}")
                  for change in prepared
                  if (why := _unstorable(change.sof_value) or _unstorable(change.sam_value))]
    if unstorable:  # checked before the file is touched: a write must not half-fail
        raise config_error(unstorable)
    order = {key: index for index, key in enumerate(changes)}
    prepared.sort(key=lambda change: order.get(change.given, len(order)))
    return prepared


_TOO_DEEP = "the value is nested too deeply to store in a config file; flatten it"


def _dumped(validated: SOFConfig, settings: Mapping[str, Any], names: Mapping[str, str],
            source: str, problems: list[tuple[str, str]]) -> dict[str, Any]:
    """The validated ``settings`` as JSON-ready values. A value nested past what pydantic
    writes out (a ``ValueError``, "Maximum serialization depth exceeded") is a problem
    naming its key in ``problems``, not a bare error out of ``update_config``."""
    try:
        return validated.model_dump(mode="json", include=set(settings))
    except (ValueError, RecursionError):
        pass
    dumped: dict[str, Any] = {}
    for setting in settings:
        try:
            dumped.update(validated.model_dump(mode="json", include={setting}))
        except (ValueError, RecursionError):
            given = names.get(setting, setting)
            problems.append((given, f"{given} (from {source}): {_TOO_DEEP}"))
    return dumped


def _unstorable(value: Any) -> str | None:
    """Why ``value`` cannot be written to a config file (JSON or TOML, both UTF-8) and read
    back, or None. A lone surrogate cannot be encoded (a TOML file's write failed with a
    bare ``UnicodeEncodeError``; JSON escaped it, so the same call behaved differently by
    file type); an int too long for Python to write as text is a ``ValueError``."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return ("the value holds a lone surrogate (text that is not valid Unicode), which "
                "a config file cannot store; decode the bytes it came from properly")
    except RecursionError:
        return _TOO_DEEP
    except ValueError:
        return ("the value holds a number too long to write as text "
                f"(more than {sys.get_int_max_str_digits()} digits); store it as a string")
    return None


def apply_changes(data: Mapping[str, Any], changes: list[_Change]) -> dict[str, Any]:
    """``data`` with ``changes`` applied; every other key and value stays as it was.

    A setting goes under the name the file already uses: SAM's name, SOF's, or both when the
    file holds both. A new setting goes under the name it was given. When SAM's name cannot
    say the value (``executor = "dask"`` is more than ``enable_parallel_execution = true``),
    SOF's name is written as well, and SOF's name wins when both are read.
    """
    new = dict(data)
    for change in changes:
        if change.setting is None:
            new[change.given] = change.sof_value
            continue
        sam_name = SAM_NAMES.get(change.setting)
        if sam_name is None:
            new[change.setting] = change.sof_value
            continue
        has_sof, has_sam = change.setting in data, sam_name in data
        if not has_sof and not has_sam:
            if change.given == sam_name:
                new[sam_name] = change.sam_value
            else:
                new[change.setting] = change.sof_value
            continue
        if has_sam:
            new[sam_name] = change.sam_value
        if has_sof or SAM_KEYS[sam_name].to_sof(change.sam_value) != change.sof_value:
            new[change.setting] = change.sof_value
    return new


def _same(a: Any, b: Any) -> bool:
    """Equal as config data (``True`` is not ``1`` there)."""
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


def _cross_checks(config: SOFConfig) -> list[str]:
    """What no single value shows (SAM's ``validate_config`` checks the same)."""
    problems = []
    skill, total = config.skill_timeout, config.total_timeout
    if skill is not None and total is not None and skill > total:
        problems.append(f"skill_timeout ({skill:g}s) exceeds total_timeout ({total:g}s, SAM's "
                        "max_execution_time): no skill can use all of it")
    return problems


# --- process-wide managers ----------------------------------------------------------------

_managers: dict[Path, SOFConfigManager] = {}
_managers_lock = threading.Lock()


def get_sof_config_manager(
    path: Path | str | None = None, *, config_path: Path | str | None = None
) -> SOFConfigManager:
    """The process-wide manager for ``path`` (SAM's keyword: ``config_path``); default:
    ``$SOF_CONFIG`` or the user config file."""
    if path is not None and config_path is not None and Path(path) != Path(config_path):
        raise ConfigError(f"two config files given ({path} and config_path={config_path})",
                          key="config_path")
    chosen = path if path is not None else config_path
    resolved = _given_path(chosen) if chosen is not None else default_config_path()
    with _managers_lock:
        manager = _managers.get(resolved)
        if manager is None:
            # Without a path it locates the file itself, and so knows when it cannot.
            manager = SOFConfigManager(resolved) if chosen is not None else SOFConfigManager()
            _managers[resolved] = manager
        return manager


def reset_sof_config_managers() -> None:
    """Forget the process-wide managers (tests, or a host that changed ``SOF_CONFIG``)."""
    with _managers_lock:
        _managers.clear()


def disable_sof_framework() -> SOFConfig:
    """The seed's rollback: every new query goes to the legacy pipeline."""
    return get_sof_config_manager().disable_sof_framework()


def enable_sof_framework(rollout_percentage: float | None = None) -> SOFConfig:
    """Turn SOF on again (optionally with a new rollout percentage)."""
    return get_sof_config_manager().enable_sof_framework(rollout_percentage)


def get_sof_config() -> SOFConfig:
    """SAM's name: the effective configuration of the process-wide manager (never raises)."""
    return get_sof_config_manager().load_config()


def is_sof_enabled() -> bool:
    """SAM's name: whether ``use_sof_framework`` is on now."""
    return get_sof_config_manager().is_sof_enabled()


# --- files ----------------------------------------------------------------------------------


def _given_path(path: Path | str) -> Path:
    """A config path given in code, ``~`` expanded; a ``ConfigError`` when it starts with
    ``~`` and there is no home directory (``Path.expanduser`` raises a bare RuntimeError)."""
    expanded = expand_user(path)
    if expanded is None:
        raise ConfigError(f"config file {path} starts with ~ but there is no home directory "
                          "to expand it to (HOME is unset); give an absolute path")
    return expanded


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so readers see the old file or the new, never a mix."""
    import tempfile  # only when writing: reading the config (every run) does not need it

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            old = os.stat(path)
        except FileNotFoundError:
            os.chmod(tmp, 0o644)
        else:
            os.chmod(tmp, old.st_mode & 0o7777)
            if hasattr(os, "chown") and (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
                # An operator's `sudo sof config disable` must not leave the service's own
                # file owned by root (and unwritable by the service); only root may do this.
                with suppress(PermissionError):
                    os.chown(tmp, old.st_uid, old.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _write_error(path: Path, exc: OSError) -> ConfigError:
    """The one-line error for a write that failed: a full disk (or quota, or the process's
    file size limit) says so, since no permission change would help."""
    if exc.errno in _NO_SPACE:
        return ConfigError(
            f"cannot write config file {path}: the disk is full ({exc.strerror or exc}); "
            "the file is unchanged: free some space and retry, or point SOF_CONFIG at a file "
            "on another disk"
        )
    return ConfigError(
        f"cannot write config file {path}: {exc.strerror or exc}; fix the "
        "permissions of its folder or point SOF_CONFIG at another file"
    )


#: ``errno`` values meaning "no room for the file": no space, over quota, over the file
#: size limit (``RLIMIT_FSIZE``, which Python turns into ``EFBIG`` rather than a signal).
_NO_SPACE = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG)
    if code is not None
)


def _link_over(path: Path, name: Path) -> None:
    """Make ``name`` (a file just claimed, empty) a hard link to ``path``: linked beside it
    under a temporary name, then renamed over it, so ``name`` is never missing."""
    temporary = name.with_name(f".{name.name}.link")
    with suppress(FileNotFoundError):
        os.unlink(temporary)
    os.link(path, temporary)
    try:
        os.replace(temporary, name)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise


def _claim_backup_name(base: Path) -> Path:
    """``base``, or ``base-1``, ``base-2``, ... : the first name no file has, created empty
    (``O_EXCL``) so that no backup ever replaces another one, however many are made in one
    second (the time in the name is in whole seconds)."""
    candidate, number = base, 0
    while True:
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            number += 1
            candidate = base.with_name(f"{base.name}-{number}")
            continue
        return candidate


def _remove_dead_writers_files(path: Path) -> None:
    """Temporary files a killed writer left beside ``path``. Called under the file's lock,
    which every writer holds from before it makes its temporary file until after the rename,
    so any such file there now belongs to no live writer."""
    ours = len(path.name) + 2 + 8 + 4  # ".{name}." + mkstemp's 8 characters + ".tmp"
    for leftover in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        if len(leftover.name) == ours:  # not a longer-named file's temporary file
            with suppress(OSError):
                leftover.unlink()


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX only; Windows has no directory handles)."""
    if sys.platform == "win32":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def _file_lock(path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """An exclusive lock shared by every process writing ``path`` (``<path>.lock``)."""
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    if sys.platform != "win32":
        import fcntl

        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise _lock_timeout(path, lock_path) from None
                    time.sleep(0.002)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        return
    while True:  # pragma: no cover - Windows: an O_EXCL lock file, removed on release
        try:
            fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                if time.time() - os.stat(lock_path).st_mtime > STALE_LOCK_AGE:
                    os.unlink(lock_path)
                    continue
            except FileNotFoundError:
                continue
            if time.monotonic() > deadline:
                raise _lock_timeout(path, lock_path) from None
            time.sleep(0.005)
    try:  # pragma: no cover
        os.close(fd)
        yield
    finally:  # pragma: no cover
        with suppress(FileNotFoundError):
            os.unlink(lock_path)


def _lock_timeout(path: Path, lock_path: Path) -> ConfigError:
    return ConfigError(
        f"config file {path} is locked by another writer (lock file {lock_path}) for more "
        f"than {LOCK_TIMEOUT:g}s; retry, or remove the lock file if no writer is running"
    )


# --- serialising --------------------------------------------------------------------------


def dump_config(data: Mapping[str, Any], path: Path) -> str:
    """Config file text for ``data``: TOML when ``path`` ends in ``.toml``, else JSON.

    Keys keep their order (a key added by a write goes last), so a rewritten file differs
    from the old one only where a value changed.
    """
    if path.suffix == ".toml":
        return dump_toml(data)
    return json.dumps(data, indent=2) + "\n"


def dump_toml(data: Mapping[str, Any]) -> str:
    """A small TOML writer for config values (the core has no TOML-writing dependency).

    Whatever ``tomllib`` parsed comes back as the same data (tables, arrays of tables as
    inline tables, dates and times, any string). Comments in a hand-written TOML file are
    not kept when SOF rewrites it.
    """
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append((_toml_key(key), value))
        elif value is not None:
            lines.append(f"{_toml_key(key)} = {_toml_value(key, value)}")
        else:
            raise ConfigError(
                f"{key!r} is null, which TOML cannot store; use a JSON config file "
                "(SOF_CONFIG=....json) to set it to null", key=key
            )
    while tables:
        name, table = tables.pop(0)
        lines.append("")
        lines.append(f"[{name}]")
        for key, value in table.items():
            if isinstance(value, Mapping):
                tables.append((f"{name}.{_toml_key(key)}", value))
            else:
                lines.append(f"{_toml_key(key)} = {_toml_value(key, value)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_key(key: str) -> str:
    if key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key):
        return key
    return _toml_string(key)


def _toml_string(text: str) -> str:
    """A TOML basic string: control characters (DEL included) escaped, the rest literal."""
    out = ['"']
    for char in text:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _toml_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (datetime, date, clock_time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(key, v) for v in value) + "]"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(k, v)}" for k, v in value.items())
        return "{" + inner + "}"
    raise ConfigError(f"{key!r}: cannot store {type(value).__name__} in TOML", key=key)


__all__ = [
    "ConfigState",
    "SOFConfigManager",
    "apply_changes",
    "disable_sof_framework",
    "dump_config",
    "enable_sof_framework",
    "get_sof_config",
    "get_sof_config_manager",
    "is_sof_enabled",
    "prepare_changes",
    "reset_sof_config_managers",
    "write_atomic",
]
