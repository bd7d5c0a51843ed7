"""The default store follows the variables that place it, set afresh in a running process.

A test suite that gives each test its own ``SOF_MEMORY_PATH`` (``monkeypatch.setenv``) and
makes ``CoordinatorEngine()`` in each got the first test's database in every later one: the
process-wide plugin manager's backend had resolved its path once. Now a changed
``SOF_MEMORY_PATH`` / ``XDG_DATA_HOME`` moves the store, as a changed
``plugin_settings.memory.path`` does; a path given to the backend itself stays.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sof_memory import SQLiteMemoryBackend

from sof_core import CoordinatorEngine


def test_a_changed_sof_memory_path_moves_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteMemoryBackend()
    monkeypatch.setenv("SOF_MEMORY_PATH", str(tmp_path / "a.db"))
    store.add("The code word is banana.")
    monkeypatch.setenv("SOF_MEMORY_PATH", str(tmp_path / "b.db"))
    assert store.search("code word") == []
    assert store.path == str(tmp_path / "b.db")
    store.add("The code word is cherry.")
    monkeypatch.setenv("SOF_MEMORY_PATH", str(tmp_path / "a.db"))
    assert [h.text for h in store.search("code word")] == ["The code word is banana."]
    store.close()


def test_a_changed_data_dir_moves_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteMemoryBackend()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "one"))
    store.add("kept in one")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "two"))
    assert store.search("kept") == []
    assert (tmp_path / "one" / "sof" / "memory.db").exists()
    store.close()


def test_a_path_given_to_the_backend_ignores_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteMemoryBackend(tmp_path / "own.db")
    store.add("mine")
    monkeypatch.setenv("SOF_MEMORY_PATH", str(tmp_path / "other.db"))
    assert [h.text for h in store.search("mine")] == ["mine"]
    store.close()


def test_engines_made_one_after_another_use_each_tests_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No reset of the process-wide plugin manager between them, as in a user's suite."""
    answers = []
    for word in ("banana", "cherry"):
        monkeypatch.setenv("SOF_MEMORY_PATH", str(tmp_path / f"{word}.db"))
        engine = CoordinatorEngine()
        backend = engine.registry.component("memory_backends", "sqlite").obj
        backend.add(f"The launch code word is {word}.")
        report = engine.run_query("What is the launch code word?")
        answers.append(report.final_response)
    assert "banana" in answers[0] and "cherry" not in answers[0]
    assert "cherry" in answers[1] and "banana" not in answers[1]


def test_a_relative_path_is_the_working_directorys_of_the_moment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests that each chdir into their own tmp_path with SOF_MEMORY_PATH=memory.db (or a
    relative plugin_settings.memory.path) each get their own file."""
    store = SQLiteMemoryBackend()
    monkeypatch.setenv("SOF_MEMORY_PATH", "memory.db")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    monkeypatch.chdir(tmp_path / "one")
    store.add("kept in one")
    assert store.path == str(tmp_path / "one" / "memory.db")
    monkeypatch.chdir(tmp_path / "two")
    assert store.path == str(tmp_path / "two" / "memory.db")  # before any call, too
    assert store.search("kept") == []
    assert (tmp_path / "two" / "memory.db").exists()
    store.close()


def test_the_path_shown_is_the_one_the_variables_give_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteMemoryBackend()
    monkeypatch.setenv("SOF_MEMORY_PATH", str(tmp_path / "a.db"))
    store.add("x")
    monkeypatch.setenv("SOF_MEMORY_PATH", str(tmp_path / "b.db"))
    assert store.path == str(tmp_path / "b.db")
    store.close()


def test_an_in_ram_store_is_shared_by_the_engines_sharing_the_installed_plugins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As docs/plugins/memory.md says: ":memory:" is one store per backend, and engines
    made with the host's settings share the installed plugins' backend."""
    monkeypatch.setenv("SOF_MEMORY_PATH", ":memory:")
    first = CoordinatorEngine().registry.component("memory_backends", "sqlite").obj
    first.add("The tapir code word is guava.")
    second = CoordinatorEngine().registry.component("memory_backends", "sqlite").obj
    assert [h.text for h in second.search("tapir")] == ["The tapir code word is guava."]


def test_a_chdir_keeps_an_in_ram_store_and_an_absolute_ones_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a change that names another database moves the store: ":memory:" keeps its
    documents and an absolute path its open connections across a chdir."""
    monkeypatch.setenv("SOF_MEMORY_PATH", ":memory:")
    ram = SQLiteMemoryBackend()
    ram.add("The code word is banana.")
    monkeypatch.setenv("SOF_MEMORY_PATH", str(tmp_path / "abs.db"))
    disk = SQLiteMemoryBackend()
    disk.add("kept")
    opened = disk.open_connections
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert [h.text for h in disk.search("kept")] == ["kept"]
    assert disk.open_connections == opened
    monkeypatch.setenv("SOF_MEMORY_PATH", ":memory:")
    assert [h.text for h in ram.search("code word")] == ["The code word is banana."]
    ram.close()
    disk.close()
