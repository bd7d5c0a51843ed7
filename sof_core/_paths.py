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


def config_file() -> Path:
    """``$SOF_CONFIG``; else SAM's ``config/sof_config.json`` when the working directory
    holds one (a SAM deployment: the file SAM itself reads, so a rollback by ``sof config
    disable`` or ``disable_sof_framework()`` reaches SAM); else ``config.json`` in the
    platform's user config folder, or ``config.toml`` there when it exists and
    ``config.json`` does not."""
    explicit = os.environ.get(ENV_CONFIG)
    if explicit:
        return Path(explicit).expanduser()
    if SAM_CONFIG.is_file():
        return SAM_CONFIG.absolute()  # where it is now, whatever the process's later cwd
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = _xdg("XDG_CONFIG_HOME", ".config")
    json_file = base / "sof" / "config.json"
    if not json_file.exists():
        toml_file = json_file.with_suffix(".toml")
        if toml_file.exists():
            return toml_file
    return json_file


def cache_dir() -> Path:
    """SOF's per-user cache folder (``$XDG_CACHE_HOME/sof``, ``~/.cache/sof`` on Linux)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "sof" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "sof"
    return _xdg("XDG_CACHE_HOME", ".cache") / "sof"


def _xdg(variable: str, default: str) -> Path:
    """An XDG base directory: ``$variable`` when it is an absolute path, else
    ``~/default``. The XDG spec says a relative value is invalid and to be ignored (it
    would put the user's files wherever the process happens to run)."""
    value = os.environ.get(variable)
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / default


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
