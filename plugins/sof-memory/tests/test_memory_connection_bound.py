"""The SQLite store's connections are bounded, however many threads use it.

It used to keep one connection per thread for good: about two file descriptors for every
thread that ever searched (~1,000 with 512 runner threads). Now calls borrow from a pool.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sof_memory import MemoryDocument, SQLiteMemoryBackend
from sof_memory.errors import MemoryBackendError

from sof_core import ConfigError


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def run_in_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work`` in ``count`` threads released at the same moment; return their errors."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(index)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


@pytest.fixture
def store(tmp_path: Path) -> SQLiteMemoryBackend:
    backend = SQLiteMemoryBackend(tmp_path / "bound.db")
    backend.add_many(
        [MemoryDocument(f"sqlite memory note {i}", source=f"s{i % 3}") for i in range(20)]
    )
    return backend


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_200_threads_searching_at_once_leave_a_bounded_number_of_descriptors_open(
    store: SQLiteMemoryBackend,
) -> None:
    store.configure({"max_connections": 8})
    expected = [h.id for h in store.search("sqlite memory", limit=5)]
    before = open_fds()
    results: dict[int, list[str]] = {}

    def search(index: int) -> None:
        results[index] = [h.id for h in store.search("sqlite memory", limit=5)]

    assert run_in_threads(200, search) == []
    assert len(results) == 200 and all(ids == expected for ids in results.values())
    # Each SQLite connection in WAL mode holds the database, -wal and -shm files; one
    # connection per thread, kept for good, grew this by about 400.
    assert open_fds() - before <= 3 * 8
    assert store.open_connections <= 8
    store.close()
    assert store.open_connections == 0


def test_reads_still_run_concurrently_and_writes_still_land(
    store: SQLiteMemoryBackend,
) -> None:
    def work(index: int) -> None:
        if index % 10 == 0:
            store.add(f"sqlite memory written by thread {index}")
        else:
            assert store.search("sqlite memory", limit=3)

    assert run_in_threads(100, work) == []
    assert store.stats()["documents"] == 30
    assert store.open_connections <= store.max_connections


def test_a_read_in_progress_does_not_block_another_threads_read(
    store: SQLiteMemoryBackend,
) -> None:
    found: list[int] = []
    with store._reading() as held:  # a search in progress on this thread
        held.execute("SELECT count(*) FROM documents").fetchone()
        other = threading.Thread(target=lambda: found.append(len(store.search("sqlite"))))
        other.start()
        other.join(10)
        assert found == [5]  # done while this read still holds its connection
    assert store.open_connections == 2


def test_the_bound_is_configurable_and_one_connection_serves_every_thread(
    tmp_path: Path,
) -> None:
    backend = SQLiteMemoryBackend(tmp_path / "one.db")
    backend.configure({"max_connections": 1})
    backend.add("sqlite memory")
    assert run_in_threads(50, lambda i: backend.search("sqlite")[0]) == []
    assert backend.open_connections == 1
    backend.close()


@pytest.mark.parametrize("value", [0, -1, "8", 2.5, True])
def test_a_bad_max_connections_setting_is_a_config_error_naming_it(
    tmp_path: Path, value: object
) -> None:
    backend = SQLiteMemoryBackend(tmp_path / "bad.db")
    backend.configure({"max_connections": value})
    with pytest.raises(ConfigError, match=r"plugin_settings\.memory\.max_connections must be"):
        backend.search("x")


def test_closing_while_a_call_holds_a_connection_closes_it_when_the_call_ends(
    store: SQLiteMemoryBackend,
) -> None:
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store._reading() as conn:  # a search in progress
            entered.set()
            release.wait(10)
            conn.execute("SELECT 1")

    worker = threading.Thread(target=hold)
    worker.start()
    assert entered.wait(10)
    store.close()
    assert store.open_connections == 1  # the borrowed one, still in use
    release.set()
    worker.join(10)
    assert store.open_connections == 0
    assert store.search("sqlite memory")  # and the store reopens on the next call


def test_a_pool_exhausted_past_the_busy_timeout_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sof_memory.sqlite_backend as module

    monkeypatch.setattr(module, "BUSY_TIMEOUT_S", 0.2)
    backend = SQLiteMemoryBackend(tmp_path / "busy.db", max_connections=1)
    backend.add("sqlite memory")
    with backend._reading():
        errors = run_in_threads(1, lambda i: backend.search("sqlite"))
    assert len(errors) == 1 and isinstance(errors[0], MemoryBackendError)
    assert "all 1 connections stayed busy" in str(errors[0])
    assert "plugin_settings.memory.max_connections" in str(errors[0])
    backend.close()
