"""Where SOF keeps the user's files: the config file and the cache folder.

A module of its own, below every layer and free of pydantic, so the CLI can find them before
it imports anything heavy (``sof --help`` reads its cache of plugin commands this way).
Plain platform rules, not ``platformdirs``: two paths do not justify a dependency in the core.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

#: The environment variable naming the config file.
ENV_CONFIG = "SOF_CONFIG"
#: SAM's config file, relative to the working directory SAM runs in.
SAM_CONFIG = Path("config") / "sof_config.json"
#: What a helper returns for a file or folder it cannot locate, because there is no home
#: directory to find it in (``HOME`` unset and no passwd entry for the uid: ``docker run
#: --user 54321``, OpenShift's random uids). The null device: SOF reads it as "no file"
#: (``SOF_CONFIG=/dev/null`` means defaults), and nothing can be created below it, so a
#: cache kept there is simply not kept. Callers need no special case to keep working.
UNLOCATED = Path(os.devnull)


def config_file() -> Path:
    """``$SOF_CONFIG``; else SAM's ``config/sof_config.json`` when the working directory
    holds one (a SAM deployment: the file SAM itself reads, so a rollback by ``sof config
    disable`` or ``disable_sof_framework()`` reaches SAM); else ``config.json`` in the
    platform's user config folder, or ``config.toml`` there when it exists and
    ``config.json`` does not. ``UNLOCATED`` when that folder (or the ``~`` in
    ``$SOF_CONFIG``) needs a home directory and there is none (see
    ``config_file_problem``)."""
    explicit = os.environ.get(ENV_CONFIG)
    if explicit:
        return expand_user(explicit) or UNLOCATED
    if SAM_CONFIG.is_file():
        return SAM_CONFIG.absolute()  # where it is now, whatever the process's later cwd
    base = _config_base()
    if base is None:
        return UNLOCATED
    json_file = base / "sof" / "config.json"
    if not json_file.exists():
        toml_file = json_file.with_suffix(".toml")
        if toml_file.exists():
            return toml_file
    return json_file


def config_file_problem() -> str | None:
    """Why ``config_file()`` is ``UNLOCATED`` and what to set, in one line; None when it
    located the file (or ``SOF_CONFIG`` itself names the null device)."""
    if config_file() != UNLOCATED or os.environ.get(ENV_CONFIG, "") == os.devnull:
        return None
    explicit = os.environ.get(ENV_CONFIG)
    if explicit:
        return (f"{ENV_CONFIG}={explicit} starts with ~ but {_no_home()}; give "
                f"{ENV_CONFIG} an absolute path")
    folder = {"win32": "APPDATA", "darwin": "HOME"}.get(sys.platform, "XDG_CONFIG_HOME")
    also = "" if folder == "HOME" else f" or {folder}"
    return (f"there is no user config file: {_no_home()}; set {ENV_CONFIG} to a JSON or "
            f"TOML file, or set HOME{also}")


def cache_dir() -> Path:
    """SOF's per-user cache folder (``$XDG_CACHE_HOME/sof``, ``~/.cache/sof`` on Linux);
    below ``UNLOCATED`` when there is no home directory to find it in, so every cache is
    off (nothing can be read or written there)."""
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        if local:
            return Path(local) / "sof" / "Cache"
        home = home_dir()
        return UNLOCATED / "sof" if home is None else home / "AppData" / "Local" / "sof" / "Cache"
    if sys.platform == "darwin":
        home = home_dir()
        return UNLOCATED / "sof" if home is None else home / "Library" / "Caches" / "sof"
    base = _xdg("XDG_CACHE_HOME", ".cache")
    return (UNLOCATED if base is None else base) / "sof"


def home_dir() -> Path | None:
    """The user's home directory, or None when there is none to find (``HOME`` unset and
    no passwd entry for the uid): ``Path.home()`` raises then, and SOF must still start."""
    try:
        return Path.home()
    except (RuntimeError, KeyError, OSError):
        return None


def expand_user(path: str | Path) -> Path | None:
    """``path`` with a leading ``~`` expanded; None when it has one and there is no home
    directory to expand it to (``Path.expanduser`` raises then; ``os.path.expanduser``
    would leave a relative ``~`` folder in whatever directory the process runs in)."""
    try:
        return Path(path).expanduser()
    except (RuntimeError, KeyError, OSError):
        return None


def _config_base() -> Path | None:
    """The platform's user config folder (without ``sof``), None when it needs a home
    directory and there is none."""
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        if appdata:
            return Path(appdata)
        home = home_dir()
        return None if home is None else home / "AppData" / "Roaming"
    if sys.platform == "darwin":
        home = home_dir()
        return None if home is None else home / "Library" / "Application Support"
    return _xdg("XDG_CONFIG_HOME", ".config")


def _xdg(variable: str, default: str) -> Path | None:
    """An XDG base directory: ``$variable`` when it is an absolute path, else
    ``~/default`` (None when there is no home directory). The XDG spec says a relative
    value is invalid and to be ignored (it would put the user's files wherever the process
    happens to run)."""
    value = os.environ.get(variable)
    if value and os.path.isabs(value):
        return Path(value)
    home = home_dir()
    return None if home is None else home / default


def _no_home() -> str:
    """Why there is no home directory, for a one-line message."""
    return f"HOME is unset and uid {_uid()} has no home directory in the user database"


def _uid() -> str:
    getuid = getattr(os, "getuid", None)
    return "?" if getuid is None else str(getuid())


def read_cache_file(path: Path, limit: int) -> bytes | None:
    """The bytes of a file SOF keeps in its cache folder (or peeks at before loading the
    configuration), or None: missing, unreadable, not a regular file, or longer than
    ``limit`` bytes. The folder is the user's to change, so what is found there is not
    trusted even to be a file: it is opened without blocking (a
    FIFO put in an entry's place would hang the process on ``open``/``read``) and read
    only up to the limit (a link to ``/dev/zero`` must not fill memory)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 16, limit + 1 - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while being read
                return None
    except OSError:
        return None
    finally:
        os.close(fd)
