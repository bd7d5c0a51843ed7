"""Where the embedded memory database lives when nobody says otherwise."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sof_core import ConfigError

log = logging.getLogger("sof.memory")

ENV_PATH = "SOF_MEMORY_PATH"
PATH_SETTING = "plugin_settings.memory.path"
MEMORY_IN_RAM = ":memory:"

_warn_lock = threading.Lock()
_warned_in_ram = False


def user_data_dir() -> Path:
    """The platform's per-user data dir (XDG on Linux), without a third-party dependency.

    A ``NoDataDirError`` (a ``ConfigError``) naming what to set when it needs the home
    directory and there is none (``HOME`` unset and no passwd entry for the uid: ``docker
    run --user 54321``): the database is the user's data, so it is not put in some other
    folder unasked (``resolve_db_path`` keeps it in RAM then).
    """
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        return (Path(local) if local else _home("LOCALAPPDATA") / "AppData" / "Local") / "sof"
    if sys.platform == "darwin":
        return _home() / "Library" / "Application Support" / "sof"
    value = os.environ.get("XDG_DATA_HOME")
    # The XDG spec: a relative value is invalid and ignored (it would put the database
    # wherever the process happens to run).
    if value and os.path.isabs(value):
        return Path(value) / "sof"
    return _home("XDG_DATA_HOME") / ".local" / "share" / "sof"


def resolve_db_path(
    settings: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """``$SOF_MEMORY_PATH``, else ``plugin_settings.memory.path``, else the user data dir.

    The environment wins over the config file, as it does for every SOF setting.
    ``":memory:"`` keeps the database in RAM (tests, throw-away runs). A configured path is
    checked even when the environment wins: one that is not a non-empty string (``7``,
    ``["a"]``, ``""``) is a ``ConfigError`` naming ``plugin_settings.memory.path``, never a
    file name; ``null`` counts as unset. With no home directory the default is
    ``":memory:"`` (one warning per process says what to set), and a path starting with
    ``~`` is a ``ConfigError`` saying what to set.
    """
    environ = os.environ if environ is None else environ
    configured = configured_path(settings or {})
    explicit = environ.get(ENV_PATH) or configured
    if explicit:
        return explicit if explicit == MEMORY_IN_RAM else _absolute(_expand(explicit))
    try:
        return str(user_data_dir() / "memory.db")
    except NoDataDirError as exc:
        _warn_in_ram(exc)
        return MEMORY_IN_RAM


def unplaced(
    settings: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> NoDataDirError | None:
    """Why the default database has no place (no path configured and no home directory),
    or None: ``sof memory add``/``import`` refuse then, as what they add would be lost at
    exit."""
    environ = os.environ if environ is None else environ
    if environ.get(ENV_PATH) or configured_path(settings or {}):
        return None
    try:
        user_data_dir()
    except NoDataDirError as exc:
        return exc
    return None


def _warn_in_ram(problem: NoDataDirError) -> None:
    """Once per process: with no home directory the default database is kept in RAM, so a
    run still works (its memory search finds nothing) and nothing is written to some
    folder the user did not choose; what is added is gone at exit, which this says."""
    global _warned_in_ram
    with _warn_lock:
        if _warned_in_ram:
            return
        _warned_in_ram = True
    log.warning("no place for the memory database (%s): it is kept in RAM, so what is added "
                "is lost at exit; to keep it, %s", _no_home(), problem.fix)


def _absolute(path: Path) -> str:
    """A relative path is the working directory's as it is now: kept absolute, so a later
    change of directory does not move the store under its open connections (left as it
    is while the working directory is gone)."""
    try:
        return os.path.abspath(path)
    except OSError:
        return str(path)


def _expand(path: str) -> Path:
    """``path`` with a leading ``~`` expanded (``Path.expanduser`` raises a bare
    RuntimeError when there is no home directory: a ``ConfigError`` here)."""
    try:
        return Path(path).expanduser()
    except (RuntimeError, KeyError, OSError):
        raise ConfigError(
            f"memory database path {path} starts with ~ but {_no_home()}; give "
            f"{ENV_PATH} or {PATH_SETTING} an absolute path",
            key=ENV_PATH,
        ) from None


class NoDataDirError(ConfigError):
    """No user data dir to keep the database in (no home directory); ``fix`` says what to
    set."""

    def __init__(self, fix: str) -> None:
        self.fix = fix
        super().__init__(f"no place for the memory database: {_no_home()}; {fix}", key=ENV_PATH)


def _home(folder_variable: str | None = None) -> Path:
    """The home directory, or the ``NoDataDirError`` that names every variable that would
    give the database a place (``folder_variable``: the platform's data folder one)."""
    try:
        return Path.home()
    except (RuntimeError, KeyError, OSError):
        pass
    folders = f"{folder_variable} or HOME" if folder_variable else "HOME"
    raise NoDataDirError(f"set {ENV_PATH} (or {PATH_SETTING}) to a database file, or set "
                         f"{folders}")


def _no_home() -> str:
    getuid = getattr(os, "getuid", None)
    uid = "?" if getuid is None else str(getuid())
    return f"HOME is unset and uid {uid} has no home directory in the user database"


def configured_path(settings: Mapping[str, Any]) -> str | None:
    """``plugin_settings.memory.path`` if set, checked to be a usable file name."""
    value = settings.get("path")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ConfigError(
            f"{PATH_SETTING} must be a database file path (a non-empty string without NUL "
            f"characters, or {MEMORY_IN_RAM!r}), got {value!r}",
            key=PATH_SETTING,
        )
    return value
