"""Claims of docs/configuration.md and docs/migration-and-rollback.md that did not hold:
the router's constructor forms, backups that never overwrite one another, the both-names
warning of ``sof config show``, ``isolation_limits: null`` and ``SOF_PLUGIN_SETTINGS``.
Real config files in tmp_path and real ``sof`` processes; only the clock is pinned."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sof_core.config.sources as sources
from sof_core import UIF, QueryRouter
from sof_core.config import SOFConfig, load_config
from sof_core.config.manager import SOFConfigManager, reset_sof_config_managers
from sof_core.errors import ConfigError
from sof_core.testing import make_engine

DOCS = Path(__file__).resolve().parents[1] / "docs"

#: Any instant: both writes of a test fall in this one second.
FROZEN = 1_800_000_000.25


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No outer SOF_* variable, a private (not created) config file, fresh warnings."""
    for var in [v for v in os.environ if v.startswith("SOF_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "config.json"
    monkeypatch.setenv("SOF_CONFIG", str(path))
    monkeypatch.setattr(sources, "_env_checked", set())
    monkeypatch.setattr(sources, "_noted", set())
    reset_sof_config_managers()
    yield path
    reset_sof_config_managers()


def _legacy_a(query: str, **context: Any) -> str:
    return "A"


def _legacy_b(query: str, **context: Any) -> str:
    return "B"


# --- migration-and-rollback.md: the router's forms ---------------------------------------------


@pytest.mark.parametrize("form", ["positional", "keyword"])
def test_two_legacy_callables_are_a_type_error_saying_what_to_pass(
    tmp_path: Path, form: str
) -> None:
    # "Passing no callable, or two, is a TypeError saying what to pass." The first
    # function used to become router.engine, and every SOF-routed query fell back.
    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    with pytest.raises(TypeError, match=r"QueryRouter\(engine, legacy_pipeline\)") as caught:
        if form == "positional":
            QueryRouter(_legacy_a, _legacy_b, manager)
        else:
            QueryRouter(_legacy_a, legacy_pipeline=_legacy_b, manager=manager)
    assert "_legacy_a" in str(caught.value)


def test_an_engine_and_one_legacy_callable_still_make_a_router(tmp_path: Path) -> None:
    # "QueryRouter(engine, legacy_pipeline) is the full form" (also with the keyword).
    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    engine = make_engine([])
    for router in (QueryRouter(engine, _legacy_a, manager),
                   QueryRouter(engine, legacy_pipeline=_legacy_a, manager=manager)):
        assert (router.engine, router.legacy) == (engine, _legacy_a)
        assert router.route("q", user_id="u").response == "A"


# --- configuration.md: backups never overwrite one another ---------------------------------------


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> float:
    """Every write of the test falls in one second (backup names carry the unix time)."""
    monkeypatch.setattr(time, "time", lambda: FROZEN)
    return FROZEN


def test_two_resets_in_one_second_keep_both_old_files(
    tmp_path: Path, frozen_clock: float
) -> None:
    # reset_to_defaults(): "the old file is kept as <name>.before-reset-<unix time>
    # (last_backup)", and "-<n>" is added when a file of that name is there already.
    path = tmp_path / "c.json"
    original = {"planner": "goal", "sof_rollout_percentage": 30}
    path.write_text(json.dumps(original))
    manager = SOFConfigManager(path, environ={})
    manager.reset_to_defaults()
    first = manager.last_backup
    manager.reset_to_defaults()
    second = manager.last_backup
    assert first is not None and second is not None
    assert first.name == f"c.json.before-reset-{int(frozen_clock)}"
    assert second.name == f"c.json.before-reset-{int(frozen_clock)}-1"
    assert json.loads(first.read_text()) == original
    assert json.loads(second.read_text()) == {}


def test_each_corrupt_file_a_rollback_repairs_is_kept(tmp_path: Path, frozen_clock: float) -> None:
    # disable_sof_framework() "keeps the broken file as <name>.corrupt-<time>": each one,
    # whatever copies of earlier broken files are already there.
    path = tmp_path / "c.json"
    stamp = int(frozen_clock)
    (tmp_path / f"c.json.corrupt-{stamp}-1").write_text("an operator's own copy")
    for text in ('{"first": ', '{"second": '):
        path.write_text(text)
        SOFConfigManager(path, environ={}).disable_sof_framework()
    kept = {p.name: p.read_text() for p in tmp_path.glob("c.json.corrupt-*")}
    assert kept == {f"c.json.corrupt-{stamp}": '{"first": ',
                    f"c.json.corrupt-{stamp}-1": "an operator's own copy",
                    f"c.json.corrupt-{stamp}-2": '{"second": '}
    assert json.loads(path.read_text()) == {"use_sof_framework": False}


def test_sams_reset_in_the_same_second_keeps_both_old_files(
    tmp_path: Path, frozen_clock: float
) -> None:
    # sof_sam.config's reset_to_defaults() (save_sam_settings(..., replace=True)) "keeps
    # the old file as <name>.before-reset-<unix time> (with -1, -2, ... added when that
    # name is taken, as for SOF's manager)".
    from sof_core.config.model import sam_defaults

    path = tmp_path / "sof_config.json"
    path.write_text('{"max_execution_time": 5}')
    manager = SOFConfigManager(path, environ={})
    for _ in range(2):
        manager.save_sam_settings(sam_defaults(), replace=True)
    stamp = int(frozen_clock)
    kept = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("*.before-reset-*")}
    assert kept == {f"sof_config.json.before-reset-{stamp}": {"max_execution_time": 5},
                    f"sof_config.json.before-reset-{stamp}-1": sam_defaults()}



# --- configuration.md: a file with both names of one setting -------------------------------------

BOTH = {"max_execution_time": 60, "total_timeout": 100}
BOTH_WARNING = ("sets both max_execution_time = 60 (SAM's name) and total_timeout = 100; "
                "SOF uses total_timeout")


def _sof(*argv: str, config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    env.update(SOF_CONFIG=str(config), HOME=str(cwd), XDG_CONFIG_HOME=str(cwd / "xdg"))
    return subprocess.run([sys.executable, "-m", "sof_core.cli", *argv], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("argv", [("config", "show"), ("config", "show", "--json")])
def test_sof_config_show_warns_once_when_the_two_names_disagree(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    # "When the two disagree, one warning per process names both values."
    path = tmp_path / "both.json"
    path.write_text(json.dumps(BOTH))
    done = _sof(*argv, config=path, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(BOTH_WARNING) == 1, done.stderr
    if "--json" in argv:
        rows = {row["key"]: row for row in json.loads(done.stdout)["settings"]}
        assert rows["total_timeout"]["value"] == 100


def test_sof_config_show_says_nothing_when_the_two_names_agree(tmp_path: Path) -> None:
    path = tmp_path / "same.json"
    path.write_text(json.dumps({"max_execution_time": 100, "total_timeout": 100}))
    done = _sof("config", "show", config=path, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_explain_warns_once_when_the_two_names_disagree(
    clean_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clean_env.write_text(json.dumps(BOTH))
    caplog.set_level(logging.WARNING, logger="sof.config")
    for _ in range(2):
        manager = SOFConfigManager(clean_env)
        assert {r["key"]: r["value"] for r in manager.explain()}["total_timeout"] == 100
    assert [r.getMessage().count(BOTH_WARNING) for r in caplog.records] == [1]
    assert manager.state().notes == (f"config file {clean_env} {BOTH_WARNING}",)


# --- configuration.md: isolation_limits = null ---------------------------------------------------

NO_LIMITS = {"cpu_seconds": None, "memory_mb": None, "open_files": None, "output_mb": None}


def test_isolation_limits_null_in_code_means_every_limit_off() -> None:
    # isolation_limits: "null (the whole setting) means no limits at all", as null means
    # "no limit" for skill_timeout.
    assert SOFConfig(isolation_limits=None).isolation_limits == NO_LIMITS
    # "A limit set to null is off; keys left out keep their defaults."
    assert SOFConfig(isolation_limits={"memory_mb": None}).isolation_limits == {
        "cpu_seconds": 60.0, "memory_mb": None, "open_files": 256.0, "output_mb": 256.0}
    assert load_config(file_path=Path(os.devnull), isolation_limits=None).isolation_limits == (
        NO_LIMITS)


def test_isolation_limits_null_in_the_file_means_every_limit_off(clean_env: Path) -> None:
    clean_env.write_text('{"isolation_limits": null}')
    manager = SOFConfigManager(clean_env)
    assert manager.config.isolation_limits == NO_LIMITS
    row = next(r for r in manager.explain() if r["key"] == "isolation_limits")
    assert (row["value"], row["source"]) == (NO_LIMITS, f"config file {clean_env}")


@pytest.mark.parametrize("text", ["null", "none", " NULL "])
def test_isolation_limits_null_from_the_environment_means_every_limit_off(
    clean_env: Path, text: str
) -> None:
    # "none/null set an optional value to None."
    environ = {"SOF_ISOLATION_LIMITS": text}
    assert load_config(file_path=clean_env, environ=environ).isolation_limits == NO_LIMITS


def test_a_skill_runs_isolated_without_limits_when_they_are_null() -> None:
    # End to end: the compiled step has no limit, and the isolated call runs and answers.
    import process_isolation_skills as skills  # tests/ is on sys.path (conftest.py)

    engine = make_engine([skills.Where], isolation_limits=None)
    settings = engine.compile(["Where"]).steps["Where"].isolation_settings
    assert settings is not None
    assert (settings.cpu_seconds, settings.memory_mb, settings.open_files,
            settings.output_mb) == (None, None, None, None)
    report = engine.execute_plan(["Where"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["pid"] != os.getpid()


def test_a_limit_of_the_wrong_kind_is_still_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"(?i)isolation_limits"):
        SOFConfig(isolation_limits="none")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"(?i)isolation_limits"):
        load_config(file_path=Path(os.devnull), environ={"SOF_ISOLATION_LIMITS": "[]"})


# --- configuration.md: SOF_PLUGIN_SETTINGS -------------------------------------------------------


def _sources_item(number: int) -> str:
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    section = page.split("## Sources, lowest to highest", 1)[1].split("\n## ", 1)[0]
    item = section.split(f"\n{number}. ", 1)[1].split(f"\n{number + 1}. ", 1)[0]
    return " ".join(item.split())


def test_the_page_says_plugin_settings_is_the_one_setting_without_a_variable() -> None:
    item = _sources_item(3)
    assert "except `plugin_settings`" in item
    assert "`SOF_PLUGIN_SETTINGS` is ignored" in item
    assert "plugin_settings cannot be set from the environment; set it in the config file" in item
    assert "`SOF_<PLUGIN>_<SETTING>`" in item and "`SOF_MEMORY_PATH`" in item


def test_sof_plugin_settings_is_ignored_with_one_warning_and_the_file_decides(
    clean_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clean_env.write_text(json.dumps({"plugin_settings": {"memory": {"path": "/srv/m.sqlite"}}}))
    environ = {"SOF_PLUGIN_SETTINGS": '{"memory": {"path": "/tmp/x.sqlite"}}'}
    caplog.set_level(logging.WARNING, logger="sof.config")
    for _ in range(2):
        config = load_config(file_path=clean_env, environ=environ)
        assert config.plugin_settings == {"memory": {"path": "/srv/m.sqlite"}}
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring environment variable SOF_PLUGIN_SETTINGS: plugin_settings cannot be set "
        "from the environment; set it in the config file"]
