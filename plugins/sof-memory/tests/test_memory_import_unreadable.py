"""``sof memory import`` over paths it cannot read, and paths that are not files."""

from __future__ import annotations

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
