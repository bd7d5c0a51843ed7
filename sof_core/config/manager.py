"""The live configuration: read per query, changed safely at runtime, rolled back in one call.

A host keeps one ``SOFConfigManager`` and asks it for ``config`` (or ``state()``) on every
query. That costs one ``stat`` of the config file and a scan of the ``SOF_*`` variables; the
file is parsed again only when its inode, size or times change, so an operator's
``sof config disable`` in another process takes effect on the host's next query without a
restart. Environment variables and explicit arguments still override the file.

Writes (``update_config``) are safe against crashes and concurrency: under an exclusive lock
file, the manager re-reads the file, applies the change, validates the result, writes a
temporary file in the same directory, fsyncs it and ``os.replace``s it over the old one. A
crash leaves either the old file or the new one, never half of one, and two processes each
setting a different key both keep their change.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sof_core.config.model import (
    SOFConfig,
    config_error_from,
    default_config_path,
    env_overrides,
    env_sources,
    parse_config_bytes,
)
from sof_core.errors import ConfigError

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

    @property
    def ok(self) -> bool:
        return self.error is None


class SOFConfigManager:
    """Reads, explains and changes the configuration stored in one config file."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else default_config_path()
        self._environ = environ
        self._overrides = dict(overrides)
        self._lock = threading.RLock()
        self._state: ConfigState | None = None
        #: Where ``disable_sof_framework`` last moved a corrupt config file (None: never).
        self.last_backup: Path | None = None

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
            if new.error is not None and (state is None or str(state.error) != str(new.error)):
                log.warning("SOF configuration is unusable: %s", new.error)
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
        return [
            {"key": key, "value": values[key], "source": state.sources.get(key, "default")}
            for key in SOFConfig.model_fields
        ]

    def _environment(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _env_key(self) -> tuple[tuple[str, str], ...]:
        env = self._environment()
        return tuple(sorted((k, v) for k, v in env.items() if k.startswith("SOF_")))

    def _signature(self) -> _Signature | tuple[str, int]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return ("unreadable", exc.errno or 0)
        return _stat_signature(st)

    def _read_file(self) -> tuple[dict[str, Any], Any]:
        """The file's data and the signature of exactly the bytes that were parsed."""
        try:
            with open(self.path, "rb") as handle:
                signature = _stat_signature(os.fstat(handle.fileno()))
                raw = handle.read()
        except FileNotFoundError:
            return {}, None
        except OSError as exc:
            raise ConfigError(
                f"cannot read config file {self.path}: {exc.strerror}; fix its permissions "
                "or point SOF_CONFIG at another file"
            ) from exc
        return parse_config_bytes(raw, self.path), signature

    def _build(self, env_key: Any) -> ConfigState:
        environ = self._environment()
        file_label = f"config file {self.path}"
        try:
            data, signature = self._read_file()
        except ConfigError as exc:
            return ConfigState(None, exc, {}, self._fallback_flag(), (self._signature(), env_key))
        key = (signature, env_key)
        try:
            env = env_overrides(environ)
            sources = {k: file_label for k in data}
            sources.update({k: f"environment {v}" for k, v in env_sources(environ).items()})
            sources.update({k: "argument" for k in self._overrides})
            merged = {**data, **env, **self._overrides}
            try:
                config = SOFConfig(**merged)
            except ValidationError as exc:
                raise config_error_from(exc, sources) from None
        except ConfigError as exc:
            return ConfigState(None, exc, {}, self._fallback_flag(), key)
        return ConfigState(config, None, sources, config.fallback_to_legacy, key)

    def _fallback_flag(self) -> bool:
        """``fallback_to_legacy`` from the layers that still work when the file does not."""
        try:
            layers = {**env_overrides(self._environment()), **self._overrides}
            return SOFConfig(**layers).fallback_to_legacy
        except (ConfigError, ValidationError):
            pass
        try:
            return SOFConfig(**self._overrides).fallback_to_legacy
        except ValidationError:
            return SOFConfig().fallback_to_legacy

    # --- writing -------------------------------------------------------------------------

    def update_config(self, **changes: Any) -> SOFConfig:
        """Validate ``changes``, persist them atomically, and return the effective config.

        Unknown keys and bad values raise ``ConfigError`` naming the key, before anything is
        written. A corrupt config file is not overwritten (``ConfigError`` says how to fix
        it); ``disable_sof_framework()`` is the exception, because a rollback must work.
        """
        return self._update(changes, repair=False)

    def disable_sof_framework(self) -> SOFConfig:
        """Roll back: every new query takes the legacy path. Works even on a corrupt file
        (which is kept next to the new one as ``<name>.corrupt-<time>``)."""
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

    def _update(self, changes: dict[str, Any], *, repair: bool) -> SOFConfig:
        if not changes:
            return self.config
        self._check_changes(changes)
        with self._lock, _file_lock(self.path):
            try:
                data, _ = self._read_file()
            except ConfigError as exc:
                if not repair:
                    raise ConfigError(
                        f"{exc}; not updating it. Fix or delete the file, or run "
                        "`sof config disable`, which keeps a copy and writes a fresh one"
                    ) from None
                data = {}
                backup = self.last_backup = self._set_aside_corrupt_file()
                log.warning("config file %s was unusable (%s); moved it to %s", self.path, exc,
                            backup)
            sources = {k: f"config file {self.path}" for k in data}
            sources.update({k: "update_config" for k in changes})
            try:
                validated = SOFConfig(**{**data, **changes})
            except ValidationError as exc:
                raise config_error_from(exc, sources) from None
            normalised = validated.model_dump(mode="json", include=set(changes))
            new_data = {**data, **normalised}
            write_atomic(self.path, dump_config(new_data, self.path))
            self._state = None
        self._warn_if_overridden(changes)
        return self.config

    def _check_changes(self, changes: Mapping[str, Any]) -> None:
        """Reject unknown keys and bad values on their own, before touching the file."""
        fields = SOFConfig.model_fields
        for key in changes:
            if key not in fields:
                known = ", ".join(sorted(fields))
                raise ConfigError(f"unknown config key {key!r}; known keys: {known}", key=key)
        try:
            SOFConfig(**changes)
        except ValidationError as exc:
            raise config_error_from(exc, dict.fromkeys(changes, "update_config")) from None

    def _warn_if_overridden(self, changes: Mapping[str, Any]) -> None:
        state = self.state()
        for key in changes:
            source = state.sources.get(key, "")
            if source.startswith(("environment", "argument")):
                log.warning(
                    "%s was saved to %s, but %s overrides it, so the effective value is "
                    "unchanged; unset it to let the file decide", key, self.path, source
                )

    def overridden(self, key: str) -> str | None:
        """The environment variable or argument that overrides the file for ``key``, if any."""
        source = self.state().sources.get(key, "")
        return source if source.startswith(("environment", "argument")) else None

    def _set_aside_corrupt_file(self) -> Path | None:
        backup = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        try:
            os.replace(self.path, backup)
        except FileNotFoundError:
            return None
        except OSError:
            log.warning("could not move corrupt config file %s aside", self.path)
            return None
        return backup


# --- process-wide managers ----------------------------------------------------------------

_managers: dict[Path, SOFConfigManager] = {}
_managers_lock = threading.Lock()


def get_sof_config_manager(path: Path | str | None = None) -> SOFConfigManager:
    """The process-wide manager for ``path`` (default: ``$SOF_CONFIG`` or the user config)."""
    resolved = Path(path).expanduser() if path is not None else default_config_path()
    with _managers_lock:
        manager = _managers.get(resolved)
        if manager is None:
            manager = _managers[resolved] = SOFConfigManager(resolved)
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


# --- files ----------------------------------------------------------------------------------


def _stat_signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so readers see the old file or the new, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        except FileNotFoundError:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


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
    """Config file text for ``data``: TOML when ``path`` ends in ``.toml``, else JSON."""
    if path.suffix == ".toml":
        return dump_toml(data)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def dump_toml(data: Mapping[str, Any]) -> str:
    """A small TOML writer for config values (the core has no TOML-writing dependency).

    Comments in a hand-written TOML file are not kept when SOF rewrites it.
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
    return json.dumps(key)


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
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(key, v) for v in value) + "]"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(k, v)}" for k, v in value.items())
        return "{" + inner + "}"
    raise ConfigError(f"{key!r}: cannot store {type(value).__name__} in TOML", key=key)


__all__ = [
    "ConfigState",
    "SOFConfigManager",
    "disable_sof_framework",
    "dump_config",
    "enable_sof_framework",
    "get_sof_config_manager",
    "reset_sof_config_managers",
    "write_atomic",
]
