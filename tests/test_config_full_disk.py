"""A config write that fails for want of space leaves the config file where it was.

The rollback (``sof config disable``, ``disable_sof_framework()``) repairs a file that does
not parse by keeping a copy and writing a fresh one. On a full disk the fresh one cannot be
written; the broken file must then still be at the config path (SAM's
``config/sof_config.json`` gone would make the next process read another config), and the
error must say the disk is full, not blame the folder's permissions.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sof_core.config import manager as manager_module
from sof_core.config.manager import SOFConfigManager
from sof_core.errors import ConfigError


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for var in [v for v in os.environ if v.startswith("SOF_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "config.json"
    monkeypatch.setenv("SOF_CONFIG", str(path))
    yield path


def _disk_full(path: Path, text: str) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_rollback_on_a_full_disk_keeps_the_broken_file_in_place(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path.write_text("{broken")
    monkeypatch.setattr(manager_module, "write_atomic", _disk_full)
    manager = SOFConfigManager(config_path)
    with pytest.raises(ConfigError) as caught:
        manager.disable_sof_framework()
    assert config_path.read_text() == "{broken"
    message = str(caught.value)
    assert "disk is full" in message and "permissions" not in message
    # Nothing was kept aside, so nothing is left beside the file but its lock.
    assert manager.last_backup is None
    assert not list(config_path.parent.glob("config.json.corrupt-*"))


def test_readers_always_find_a_file_during_a_repair(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broken file stays at its path until the new one replaces it: a reader never
    sees no file there (and so never falls back to another config)."""
    config_path.write_text("{broken")
    inode = config_path.stat().st_ino
    seen: list[bool] = []
    real = manager_module.write_atomic

    def watching(path: Path, text: str) -> None:
        seen.append(config_path.read_text() == "{broken")
        real(path, text)

    monkeypatch.setattr(manager_module, "write_atomic", watching)
    manager = SOFConfigManager(config_path)
    manager.disable_sof_framework()
    assert seen == [True]
    assert json.loads(config_path.read_text()) == {"use_sof_framework": False}
    assert manager.last_backup is not None
    assert manager.last_backup.read_text() == "{broken"
    assert manager.last_backup.stat().st_ino == inode  # a hard link: it needs no space


def test_repair_backups_still_get_unique_names(config_path: Path) -> None:
    backups = []
    for _ in range(3):
        config_path.write_text("{broken")
        manager = SOFConfigManager(config_path)
        manager.disable_sof_framework()
        assert manager.last_backup is not None
        backups.append(manager.last_backup)
    assert len(set(backups)) == 3
    assert all(b.read_text() == "{broken" for b in backups)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_sof_config_disable_over_the_file_size_limit(config_path: Path) -> None:
    """The real command with the file size limit at one byte (as a full disk): exit 2, one
    line saying the disk is full, and the broken file still at the config path."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, 1))

    config_path.write_text("{\n")
    done = subprocess.run([sys.executable, "-m", "sof_core.cli", "config", "disable"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env=dict(os.environ), preexec_fn=limit)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "disk is full" in errors[0], done.stderr
    assert config_path.read_text() == "{\n"
    assert not list(config_path.parent.glob("config.json.corrupt-*"))
