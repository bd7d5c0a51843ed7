"""``sof memory import`` over paths it cannot read, and paths that are not files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sof_memory.importer import UnreadablePath, expand_paths


def _deny(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Reading ``denied`` (a folder) raises PermissionError, as for a user without access
    (the tests may run as root, for whom chmod takes nothing away)."""
    real = os.scandir

    def scandir(path: Any = ".") -> Iterator[os.DirEntry[str]]:
        if Path(os.fsdecode(path)) == denied:
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_an_unreadable_folder_met_while_searching_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ok.md").write_text("# A\nreadable\n")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "b.md").write_text("hidden")
    _deny(monkeypatch, tmp_path / "locked")
    files, issues = expand_paths([tmp_path])
    assert files == [tmp_path / "ok.md"]
    assert [(Path(i.path).name, i.skipped_file) for i in issues] == [("locked", True)]
    assert "permission denied" in str(issues[0])


def test_a_given_folder_that_cannot_be_read_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sof_core.cli import main

    monkeypatch.setenv("SOF_MEMORY_PATH", str(tmp_path / "memory.db"))
    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "none.json"))
    locked = tmp_path / "locked"
    locked.mkdir()
    _deny(monkeypatch, locked)
    with pytest.raises(UnreadablePath):
        expand_paths([locked])
    assert main(["memory", "import", str(locked)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read folder" in err[0] and "PermissionError" not in err[0]


def test_a_device_is_not_a_regular_file(tmp_path: Path) -> None:
    devnull = Path(os.devnull)
    files, issues = expand_paths([devnull, tmp_path / "missing.md"])
    assert files == []
    assert "not a regular file (a character device)" in str(issues[0])
    assert "no such file or directory" in str(issues[1])


# --- kernel filesystems ----------------------------------------------------------------------

_SPY = """
import json, os, sys
import sof_memory.importer as importer
walked = []
real_walk = os.walk
def walk(top, *args, **kwargs):
    for entry in real_walk(top, *args, **kwargs):
        walked.append(entry[0])
        yield entry
importer.os.walk = walk
files, issues = importer.expand_paths([sys.argv[1]])
print(json.dumps({"files": [str(f) for f in files], "walked": walked}))
"""


def test_kernel_filesystems_mounted_below_a_folder_are_not_searched(tmp_path: Path) -> None:
    """``sof memory import /`` walked all of /proc (a folder per process and thread, ~20 s):
    a kernel filesystem mounted below the folder is left out, the rest searched as before.
    A real proc mount, in a mount namespace of the test's own (root only)."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs unshare and mount")
    docs = tmp_path / "docs"
    (docs / "proc").mkdir(parents=True)
    (docs / "notes").mkdir()
    (docs / "notes" / "a.md").write_text("# A\n\nkept\n", encoding="utf-8")
    spy = tmp_path / "spy.py"
    spy.write_text(_SPY, encoding="utf-8")
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         f'mount -t proc proc "{docs}/proc" && exec "{sys.executable}" "{spy}" "{docs}"'],
        capture_output=True, text=True, timeout=60,
    )
    if done.returncode != 0 and "mount" in done.stderr + done.stdout and not done.stdout:
        pytest.skip(f"cannot make a mount namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["files"] == [str(docs / "notes" / "a.md")]
    assert str(docs / "notes") in seen["walked"]
    assert not [top for top in seen["walked"] if top.startswith(str(docs / "proc"))]


def test_the_mount_table_is_read_with_its_escapes(tmp_path: Path) -> None:
    from sof_memory.importer import kernel_mounts

    table = tmp_path / "mountinfo"
    table.write_text(
        "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
        "23 1 0:22 / /sys rw - sysfs sysfs rw\n"
        "24 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "25 1 0:40 / /srv/my\\040data rw - tmpfs tmpfs rw\n"
        "26 1 0:41 / /srv/odd\\040proc rw shared:5 - proc proc rw\n"
        "not a mount line\n",
        encoding="utf-8",
    )
    assert kernel_mounts(str(table)) == {"/proc", "/sys", "/srv/odd proc"}
    assert kernel_mounts(str(tmp_path / "missing")) == frozenset()
