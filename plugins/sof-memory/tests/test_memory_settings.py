"""``plugin_settings.memory``: every key is type-checked (a ConfigError naming the key and the
value, never a guess), and ``sof memory search`` reads the settings the skill reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sof_memory.plugin as memory_plugin
from sof_memory import MemoryRetrievalSkill, SQLiteMemoryBackend
from sof_memory.importer import sample_corpus
from sof_memory.paths import resolve_db_path
from sof_memory.selection import backend_name
from sof_memory.settings import MAX_LIMIT

from sof_core.errors import ConfigError
from sof_core.testing import make_engine

BAD_PATHS: list[Any] = [7, ["a"], {"x": 1}, True, 2.5, "", "   ", "a\x00b"]
BAD_LIMITS: list[Any] = [0, -1, MAX_LIMIT + 1, 10**20, "abc", "5", 2.5, True, False, None, [5]]
QUERY = "SAM memory"


def sof(env: dict[str, str], *argv: str, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sof_core.cli", *argv],
        env=env, capture_output=True, text=True, timeout=60, check=False, cwd=cwd,
    )


def configure(env: dict[str, str], **memory: Any) -> None:
    Path(env["SOF_CONFIG"]).write_text(json.dumps({"plugin_settings": {"memory": memory}}))


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines, result.stderr
    return lines[-1]


# --- path --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", BAD_PATHS, ids=repr)
def test_a_path_that_is_not_a_nonempty_string_is_a_config_error(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_db_path({"path": value}, {})
    assert info.value.key == "plugin_settings.memory.path"
    assert "plugin_settings.memory.path must be" in str(info.value)
    assert f"got {value!r}" in str(info.value)
    # Checked even when the environment says where the database is: the config is wrong.
    with pytest.raises(ConfigError):
        resolve_db_path({"path": value}, {"SOF_MEMORY_PATH": "/tmp/x.db"})


def test_a_null_path_means_the_default() -> None:
    assert resolve_db_path({"path": None}, {}) == resolve_db_path({}, {})


@pytest.mark.parametrize("value", [7, ["a"], {"x": 1}], ids=repr)
def test_the_store_creates_no_file_for_a_bad_path(
    value: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    store = SQLiteMemoryBackend()
    store.configure({"path": value})
    for call in (lambda: store.add("hello"), lambda: store.search("hello"), store.stats):
        with pytest.raises(ConfigError, match=r"plugin_settings\.memory\.path"):
            call()
    assert list(cwd.iterdir()) == []
    assert not (tmp_path / "xdg-data").exists()


def test_reconfiguring_to_a_bad_path_raises_at_the_next_call_not_in_configure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where a file named 7 would appear
    store = SQLiteMemoryBackend()
    store.configure({"path": str(tmp_path / "one.db")})
    store.add("first")
    store.configure({"path": 7})  # from sof_configure: a hook must not fail on it
    with pytest.raises(ConfigError, match=r"got 7"):
        store.search("first")
    store.close()
    assert not (tmp_path / "7").exists()


@pytest.mark.parametrize("value", [7, ["a"], {"x": 1}], ids=repr)
@pytest.mark.parametrize("command", [("stats",), ("add", "hello"), ("search", "hello"),
                                     ("import", "--sample")])
def test_sof_memory_refuses_a_bad_path_setting_and_creates_no_file(
    sof_env: dict[str, str], tmp_path: Path, value: Any, command: tuple[str, ...]
) -> None:
    del sof_env["SOF_MEMORY_PATH"]
    configure(sof_env, path=value)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    line = error_line(sof(sof_env, "memory", *command, cwd=cwd))
    assert "plugin_settings.memory.path must be" in line
    assert f"got {value!r}" in line
    assert list(cwd.iterdir()) == []
    assert not (tmp_path / "xdg-data" / "sof" / "memory.db").exists()


def test_sof_run_fails_the_skill_on_a_bad_path_setting(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = make_engine(plugins=[("memory", memory_plugin)],
                         plugin_settings={"memory": {"path": ["a"]}})
    report = engine.run_query(QUERY, ["MemoryRetrievalSkill"])
    assert report.status == "failure"
    message = " ".join(report.errors)
    assert "plugin_settings.memory.path must be" in message and "['a']" in message
    assert not (tmp_path / "['a']").exists()


# --- limit, backend, max_connections ------------------------------------------------------


@pytest.mark.parametrize("value", BAD_LIMITS, ids=repr)
def test_a_bad_limit_setting_is_a_config_error_naming_it(value: Any) -> None:
    skill = MemoryRetrievalSkill()
    skill.configure({"limit": value}, None)
    with pytest.raises(ConfigError) as info:
        _ = skill.limit
    assert info.value.key == "plugin_settings.memory.limit"
    assert f"got {value!r}" in str(info.value)


def test_true_is_not_a_limit_of_one_in_the_constructor_either() -> None:
    with pytest.raises(ConfigError, match=r"got True"):
        _ = MemoryRetrievalSkill(limit=True).limit  # type: ignore[arg-type]
    assert MemoryRetrievalSkill(limit=MAX_LIMIT).limit == MAX_LIMIT


@pytest.mark.parametrize("value", [7, True, ["sqlite"], "", None], ids=repr)
def test_a_backend_setting_that_is_not_a_name_is_a_config_error_naming_it(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        backend_name({"backend": value})
    assert info.value.key == "plugin_settings.memory.backend"
    assert f"got {value!r}" in str(info.value)
    assert "installed" not in str(info.value)  # not "installed memory backends: none"


def test_a_true_max_connections_is_not_one(tmp_path: Path) -> None:
    store = SQLiteMemoryBackend(tmp_path / "m.db")
    store.configure({"max_connections": True})
    with pytest.raises(ConfigError, match=r"max_connections must be .* got True"):
        store.search("x")


def test_the_store_takes_any_int_limit_without_overflowing(tmp_path: Path) -> None:
    store = SQLiteMemoryBackend(tmp_path / "m.db")
    store.add_many(sample_corpus().documents)
    assert len(store.search("SAM", limit=10**20)) == len(store.search("SAM", limit=MAX_LIMIT))
    store.close()


# --- `sof memory search` reads the skill's settings -----------------------------------------


@pytest.fixture
def sample_env(sof_env: dict[str, str]) -> dict[str, str]:
    made = sof(sof_env, "memory", "import", "--sample")
    assert made.returncode == 0, made.stderr
    return sof_env


def hits(env: dict[str, str], *extra: str) -> list[dict[str, Any]]:
    result = sof(env, "memory", "search", QUERY, "--json", *extra)
    assert result.returncode == 0, result.stderr
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def test_search_uses_the_configured_limit_like_the_skill(sample_env: dict[str, str]) -> None:
    assert len(hits(sample_env)) == 5  # the default
    configure(sample_env, limit=2)
    found = hits(sample_env)
    run = sof(sample_env, "run", QUERY, "--plan", "MemoryRetrievalSkill", "--json")
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)["uif"]["intermediate_data"]["memory_results"]
    assert [h["id"] for h in found] == [r["id"] for r in results]
    assert len(found) == 2
    assert len(hits(sample_env, "--limit", "4")) == 4  # --limit wins


@pytest.mark.parametrize("value", ["abc", 0, True, MAX_LIMIT + 1], ids=repr)
def test_search_refuses_a_bad_limit_setting_like_the_skill(
    sample_env: dict[str, str], value: Any
) -> None:
    configure(sample_env, limit=value)
    for extra in ((), ("--limit", "3")):
        line = error_line(sof(sample_env, "memory", "search", QUERY, *extra))
        assert line.startswith("sof: error: plugin_settings.memory.limit must be an integer")
        assert f"got {value!r}" in line
    run = sof(sample_env, "run", QUERY, "--plan", "MemoryRetrievalSkill", "--json")
    errors = " ".join(json.loads(run.stdout)["errors"])
    assert "plugin_settings.memory.limit must be an integer" in errors


@pytest.mark.parametrize("value", ["100000000000000000000", str(MAX_LIMIT + 1), "0", "-3",
                                   "1e3", "x", "9" * 5000])
def test_an_out_of_range_limit_option_is_a_usage_error_naming_it(
    sample_env: dict[str, str], value: str
) -> None:
    line = error_line(sof(sample_env, "memory", "search", "SAM", "--limit", value))
    assert line.startswith(
        f"sof memory search: error: argument --limit: expected an integer from 1 to {MAX_LIMIT}"
    )
    assert len(line) < 200


def test_the_largest_limit_option_works(sample_env: dict[str, str]) -> None:
    assert 5 < len(hits(sample_env, "--limit", str(MAX_LIMIT))) <= len(sample_corpus().documents)
