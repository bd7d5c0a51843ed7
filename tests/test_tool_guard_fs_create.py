"""Without the "filesystem" permission a tool creates no file by any road Python offers:
``os.mkfifo`` and ``os.mknod`` (no audit event of their own in CPython) and ``sqlite3``
(a database file, or one made by ATTACH from a ':memory:' connection) are refused like
``open(..., "w")``, as docs/security.md says ("write, create, remove or change files")."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from sof_core import UIF, BaseToolModule, ToolPermissionError, run_sandboxed
from sof_core.testing import make_engine

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="isolation needs POSIX")


def make_fifo(folder: str) -> str:
    os.mkfifo(os.path.join(folder, "fifo"))
    return "created"


def make_node(folder: str) -> str:
    os.mknod(os.path.join(folder, "node"))
    return "created"


def make_node_through_posix(folder: str) -> str:
    import posix

    posix.mknod(os.path.join(folder, "posix-node"))
    return "created"


def make_database(folder: str) -> str:
    import sqlite3

    connection = sqlite3.connect(os.path.join(folder, "new.db"))
    connection.execute("create table t(x)")
    connection.commit()
    connection.close()
    return "created"


def attach_database(folder: str) -> str:
    import sqlite3

    connection = sqlite3.connect(":memory:")
    connection.execute(f"attach database '{os.path.join(folder, 'attached.db')}' as other")
    connection.execute("create table other.t(x)")
    connection.close()
    return "created"


CREATORS = [
    (make_fifo, "fifo", "os.mkfifo"),
    (make_node, "node", "os.mknod"),
    (make_node_through_posix, "posix-node", "os.mknod"),
    (make_database, "new.db", "sqlite3.connect"),
    (attach_database, "attached.db", "sqlite3.connect"),
]


class FileMakerTool(BaseToolModule):
    skill_name = "FileMakerTool"
    skill_description = "Creates a file the way intermediate_data['how'] says"
    required_inputs = ["input_query", "how", "folder"]
    output_keys = ["made"]
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        how = {f.__name__: f for f, _, _ in CREATORS}[uif.intermediate_data["how"]]
        uif.intermediate_data["made"] = how(uif.intermediate_data["folder"])
        return uif


class AllowedFileMakerTool(FileMakerTool):
    skill_name = "AllowedFileMakerTool"
    permissions = {"filesystem"}


def _engine() -> Any:
    from sof_core import hookimpl

    class Plugin:
        @hookimpl
        def sof_register_tools(self) -> list[type]:
            return [FileMakerTool, AllowedFileMakerTool]

    return make_engine([], plugins=[("file-maker", Plugin())])


@pytest.mark.parametrize(("how", "created", "event"), CREATORS,
                         ids=[c[0].__name__ for c in CREATORS])
def test_a_tool_without_filesystem_creates_no_file(
        tmp_path: Path, how: Any, created: str, event: str) -> None:
    report = _engine().execute_plan(["FileMakerTool"], UIF(
        input_query="q", intermediate_data={"how": how.__name__, "folder": str(tmp_path)}))
    failed = next(r for r in report.results if r.skill == "FileMakerTool")
    assert failed.error_type == "ToolPermissionError", failed.error
    assert "no 'filesystem' permission" in failed.error
    assert event in failed.error
    assert not (tmp_path / created).exists()


@pytest.mark.parametrize(("how", "created", "event"), CREATORS,
                         ids=[c[0].__name__ for c in CREATORS])
def test_run_sandboxed_without_filesystem_creates_no_file(
        tmp_path: Path, how: Any, created: str, event: str) -> None:
    with pytest.raises(ToolPermissionError, match=event.replace(".", r"\.")):
        run_sandboxed(how, (str(tmp_path),), {}, name=how.__name__, timeout=20,
                      permissions=())
    assert not (tmp_path / created).exists()


def test_with_the_permission_they_work(tmp_path: Path) -> None:
    engine = _engine()
    for how in (make_fifo, make_database, attach_database):
        report = engine.execute_plan(["AllowedFileMakerTool"], UIF(
            input_query="q", intermediate_data={"how": how.__name__, "folder": str(tmp_path)}))
        assert report.uif.intermediate_data["made"] == "created", report.results
    assert (tmp_path / "fifo").exists() and (tmp_path / "new.db").exists()
    assert (tmp_path / "attached.db").exists()


def test_reading_needs_no_permission_still(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("readable")
    assert run_sandboxed(Path.read_text, (source,), {}, name="reader", timeout=20,
                         permissions=()) == "readable"
