"""Fixtures for the memory plugin's tests: real SQLite files in tmp_path, a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sof_memory import MemoryDocument, SQLiteMemoryBackend

from sof_core.plugins import reset_plugin_manager


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No developer settings leak in: no memory path, no config file, no plugin filters;
    and no process-wide plugin manager configured by another test's environment (the
    commands reuse the one the ``sof`` command loaded, as each ``sof`` process does)."""
    for var in ("SOF_MEMORY_PATH", "SOF_PLUGINS_ONLY", "SOF_PLUGINS_DISABLE",
                "SOF_DISABLE_PLUGIN_AUTOLOAD", "SOF_STRICT_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "no-config.json"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


@pytest.fixture
def backend(db_path: Path) -> Iterator[SQLiteMemoryBackend]:
    store = SQLiteMemoryBackend(db_path)
    yield store
    store.close()


@pytest.fixture
def filled(backend: SQLiteMemoryBackend) -> SQLiteMemoryBackend:
    """A small store whose ranking for 'sqlite memory' is known by construction."""
    backend.add_many(
        [
            MemoryDocument("SQLite memory store: the memory lives in SQLite.", source="a",
                           metadata={"tags": ["db"], "profile": "researcher"}),
            MemoryDocument("The memory of the team is long.", source="b",
                           metadata={"tags": ["team"]}),
            MemoryDocument("Gardening tips for spring.", source="c", metadata={"tags": "garden"}),
            MemoryDocument("SQLite is a small database.", source="b",
                           metadata={"profile": "business", "lang": "en"}),
        ]
    )
    return backend


@pytest.fixture
def sof_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a `sof` subprocess: config, memory and XDG folders in tmp_path
    (a test module may define its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOF_", "XDG_"))}
    env["SOF_CONFIG"] = str(tmp_path / "config.json")
    env["SOF_MEMORY_PATH"] = str(tmp_path / "memory.db")
    for name in ("DATA", "CONFIG", "CACHE", "STATE"):
        env[f"XDG_{name}_HOME"] = str(tmp_path / f"xdg-{name.lower()}")
    return env
