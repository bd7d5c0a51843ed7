"""A damaged database: every operation fails with a MemoryBackendError that names the file and
says what to do (exit 2 from the CLI); and a plain read never writes to the file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sof_memory.sqlite_backend as sqlite_backend
from sof_memory import MemoryBackendError, MemoryDocument, SQLiteMemoryBackend
from sof_memory.importer import sample_corpus

from sof_core.testing import make_engine


def sof(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sof_core.cli", *argv],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )


def sample_db(path: Path) -> Path:
    store = SQLiteMemoryBackend(path)
    store.add_many(sample_corpus().documents)
    store.close()  # the last connection checkpoints the WAL into the file
    assert not Path(f"{path}-wal").exists()
    return path


def damage(source: Path, target: Path) -> Path:
    """``source`` copied to ``target`` with every 7th byte from offset 4096 set to 0xAB:
    the header (page 1) is intact, every other page is garbage."""
    data = bytearray(source.read_bytes())
    for offset in range(4096, len(data), 7):
        data[offset] = 0xAB
    target.write_bytes(bytes(data))
    return target


def break_the_index(path: Path) -> Path:
    """``path`` with its full-text index unusable ("vtable constructor failed"), its
    documents intact."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE documents_fts_config")
    conn.commit()
    conn.close()
    return path


@pytest.fixture(params=["pages", "index"])
def damaged(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    good = sample_db(tmp_path / "good.db")
    if request.param == "index":
        return break_the_index(good)
    return damage(good, tmp_path / "copy.db")


def assert_names_the_file_and_the_remedies(message: str, path: Path) -> None:
    assert repr(str(path)) in message, message
    assert "damaged" in message
    assert "backup" in message
    assert "sof memory import" in message
    assert ".recover" in message


OPERATIONS: dict[str, Callable[[SQLiteMemoryBackend], Any]] = {
    "search": lambda store: store.search("redesigned"),
    "stats": lambda store: store.stats(),
    "add": lambda store: store.add("hello"),
    "add_many": lambda store: store.add_many([MemoryDocument("hello"), MemoryDocument("bye")]),
    "delete": lambda store: store.delete(["x"]),
    "clear": lambda store: store.clear(),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_operation_on_a_damaged_database_names_the_file(
    damaged: Path, operation: str
) -> None:
    store = SQLiteMemoryBackend(damaged)
    try:
        with pytest.raises(MemoryBackendError) as info:
            OPERATIONS[operation](store)
        assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
        assert_names_the_file_and_the_remedies(str(info.value), damaged)
        # The connection went back to the pool in a usable state: no transaction left open.
        assert all(not conn.in_transaction for conn in store._idle)
        with pytest.raises(MemoryBackendError):  # and the next call says the same
            OPERATIONS[operation](store)
    finally:
        store.close()


def test_a_malformed_schema_page_fails_at_open_naming_the_file(tmp_path: Path) -> None:
    path = sample_db(tmp_path / "m.db")
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xab" * (4096 - 100)  # page 1 after the header: sqlite_master
    path.write_bytes(bytes(data))
    store = SQLiteMemoryBackend(path)
    with pytest.raises(MemoryBackendError) as info:
        store.search("x")
    assert_names_the_file_and_the_remedies(str(info.value), path)
    store.close()


def test_a_locked_database_says_it_is_locked_not_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sample_db(tmp_path / "locked.db")
    monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT_S", 0.1)
    store = SQLiteMemoryBackend(path)
    store.stats()  # opened and set up before the lock is taken
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing
    try:
        with pytest.raises(MemoryBackendError) as info:
            store.add("blocked")
        message = str(info.value)
        assert repr(str(path)) in message
        assert "locked" in message
        assert "damaged" not in message
        holder.execute("ROLLBACK")
        store.add("now it works")  # no transaction was left open by the failure
        assert store.stats()["documents"] == len(sample_corpus().documents) + 1
    finally:
        holder.close()
        store.close()


def test_a_failing_search_from_many_threads_gives_every_connection_back(damaged: Path) -> None:
    store = SQLiteMemoryBackend(damaged, max_connections=2)
    errors: list[BaseException] = []

    def search() -> None:
        try:
            store.search("redesigned")
        except BaseException as exc:  # collected and checked below
            errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 8 and all(isinstance(e, MemoryBackendError) for e in errors)
    assert store.open_connections <= 2
    store.close()


def test_the_skill_reports_the_damaged_file(damaged: Path) -> None:
    from sof_memory import MemoryRetrievalSkill

    store = SQLiteMemoryBackend(damaged)
    engine = make_engine([MemoryRetrievalSkill(backend=store)])
    report = engine.run_query("redesigned", ["MemoryRetrievalSkill"])
    store.close()
    assert report.status == "failure"
    message = " ".join(report.errors)
    assert "MemoryBackendError" in message
    assert "search failed" not in message  # not re-wrapped: the backend's message as it is
    assert_names_the_file_and_the_remedies(message, damaged)


# --- the real `sof` command --------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("memory", "search", "redesigned"),
        ("memory", "stats"),
        ("memory", "add", "hello"),
        ("memory", "import", "--sample"),
    ],
)
def test_sof_memory_on_a_damaged_database_exits_2_naming_the_file(
    sof_env: dict[str, str], tmp_path: Path, argv: tuple[str, ...]
) -> None:
    made = sof(sof_env, "memory", "import", "--sample")
    assert made.returncode == 0, made.stderr
    copy = damage(Path(sof_env["SOF_MEMORY_PATH"]), tmp_path / "copy.db")
    sof_env["SOF_MEMORY_PATH"] = str(copy)
    result = sof(sof_env, *argv)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sof: error: memory backend 'sqlite': ")
    assert "SOF_LOG_LEVEL" not in lines[0]  # not the "unexpected error" path
    assert_names_the_file_and_the_remedies(lines[0], copy)


def test_sof_memory_stats_on_a_broken_full_text_index_exits_2(sof_env: dict[str, str]) -> None:
    made = sof(sof_env, "memory", "import", "--sample")
    assert made.returncode == 0, made.stderr
    break_the_index(Path(sof_env["SOF_MEMORY_PATH"]))
    result = sof(sof_env, "memory", "stats")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("sof: error: memory backend 'sqlite': ")
    assert "damaged" in result.stderr


def test_sof_run_on_a_damaged_database_names_the_file(
    sof_env: dict[str, str], tmp_path: Path
) -> None:
    sof_env["SOF_MEMORY_PATH"] = str(
        damage(sample_db(tmp_path / "good.db"), tmp_path / "copy.db")
    )
    result = sof(sof_env, "run", "redesigned", "--plan", "MemoryRetrievalSkill", "--json")
    assert result.returncode != 0
    report = json.loads(result.stdout)
    message = " ".join(str(e) for e in report["errors"])
    assert "MemoryBackendError" in message
    assert_names_the_file_and_the_remedies(message, tmp_path / "copy.db")


# --- reading does not write ----------------------------------------------------------------


def test_a_search_leaves_the_database_file_as_it_was(sof_env: dict[str, str]) -> None:
    made = sof(sof_env, "memory", "import", "--sample")
    assert made.returncode == 0, made.stderr
    path = Path(sof_env["SOF_MEMORY_PATH"])
    before = path.read_bytes()
    for argv in (("memory", "search", "redesigned"), ("memory", "stats")):
        result = sof(sof_env, *argv)
        assert result.returncode == 0, result.stderr
        assert path.read_bytes() == before, f"{argv} changed the file"


def test_opening_sets_the_schema_version_only_when_it_must_change(tmp_path: Path) -> None:
    path = sample_db(tmp_path / "v.db")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_backend.SCHEMA_VERSION
    before = path.read_bytes()
    store = SQLiteMemoryBackend(path)
    assert store.search("redesigned")
    store.close()
    assert path.read_bytes() == before
    # A database a later version set up is not turned back to this version's number.
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={sqlite_backend.SCHEMA_VERSION + 1}")
    conn.close()
    store = SQLiteMemoryBackend(path)
    assert store.search("redesigned")
    store.close()
    with sqlite3.connect(path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert version == sqlite_backend.SCHEMA_VERSION + 1

