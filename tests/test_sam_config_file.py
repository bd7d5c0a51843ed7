"""SAM's config file in sof_core.config: shared keys map onto SOF's settings, SAM's other keys
are kept and listed once, rollback works on any parseable file and keeps every key, errors
about unknown keys are short, and no keyword argument is swallowed as a setting."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sof_core.cli import main
from sof_core.config import (
    SAM_KEYS,
    SOFConfig,
    build_config,
    disable_sof_framework,
    get_sof_config,
    get_sof_config_manager,
    is_sof_enabled,
    load_config,
)
from sof_core.config.manager import SOFConfigManager, reset_sof_config_managers
from sof_core.errors import ConfigError

#: SAM's file as SAM writes it (shared/SAM_API.md, "Configuration"): 31 keys, SAM's defaults.
SAM_FILE: dict[str, Any] = {
    "use_sof_framework": False,
    "sof_version": "2.0.0",
    "max_execution_time": 60.0,
    "skill_timeout": 30.0,
    "enable_parallel_execution": False,
    "enable_plan_validation": True,
    "max_plan_length": 10,
    "allow_circular_dependencies": False,
    "enable_fallback_plans": True,
    "max_retry_attempts": 2,
    "continue_on_skill_failure": False,
    "enable_skill_sandboxing": True,
    "require_vetting_for_external": True,
    "max_intermediate_data_size": 10485760,
    "enable_plan_caching": True,
    "plan_cache_ttl": 3600,
    "enable_execution_metrics": True,
    "integrate_with_tpv": True,
    "integrate_with_memory": True,
    "integrate_with_vetting": True,
    "log_level": "INFO",
    "enable_execution_tracing": True,
    "save_execution_logs": True,
    "fallback_to_legacy": True,
    "legacy_timeout": 30.0,
    "enable_self_reflect": True,
    "self_reflect_confidence_threshold": 0.7,
    "self_reflect_profiles": ["researcher", "legal", "academic"],
    "self_reflect_query_keywords": ["what is", "who was", "when did", "define", "explain",
                                    "describe"],
    "enable_memoir_auto_correction": True,
    "self_reflect_max_revisions": 1,
}
SAM_UNUSED = [
    "sof_version", "allow_circular_dependencies", "enable_skill_sandboxing",
    "max_intermediate_data_size", "integrate_with_tpv", "integrate_with_memory",
    "integrate_with_vetting", "enable_execution_tracing", "save_execution_logs",
    "legacy_timeout", "enable_self_reflect", "self_reflect_confidence_threshold",
    "self_reflect_profiles", "self_reflect_query_keywords", "enable_memoir_auto_correction",
    "self_reflect_max_revisions",
]


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """SAM's file at SAM's path, named by SOF_CONFIG; no other SOF_* variable."""
    for var in [v for v in os.environ if v.startswith("SOF_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "config" / "sof_config.json"
    path.parent.mkdir()
    monkeypatch.setenv("SOF_CONFIG", str(path))
    reset_sof_config_managers()
    yield path
    reset_sof_config_managers()


def write(path: Path, data: dict[str, Any]) -> str:
    text = json.dumps(data, indent=2)
    path.write_text(text)
    return text


def as_data(value: Any) -> str:
    """JSON data compared strictly (``1`` is not ``1.0`` is not ``true``), order aside."""
    return json.dumps(value, sort_keys=True)


def assert_only_changed(before: dict[str, Any], after: dict[str, Any], **changed: Any) -> None:
    """Every key of ``before`` is in ``after`` with the same value, except ``changed``."""
    for key, value in changed.items():
        assert as_data(after[key]) == as_data(value), key
    rest_before = {k: v for k, v in before.items() if k not in changed}
    rest_after = {k: v for k, v in after.items() if k not in changed}
    assert as_data(rest_after) == as_data(rest_before)


def sof_cli(*argv: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    env["SOF_CONFIG"] = str(path)
    return subprocess.run([sys.executable, "-m", "sof_core.cli", *argv], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


# --- the mapping ------------------------------------------------------------------------------


def test_the_table_holds_sams_31_keys_with_sams_defaults() -> None:
    assert list(SAM_KEYS) == list(SAM_FILE)
    assert {name: key.fresh_default() for name, key in SAM_KEYS.items()} == SAM_FILE
    assert sorted(k for k, key in SAM_KEYS.items() if key.setting is None) == sorted(SAM_UNUSED)


def test_sams_file_is_a_valid_config_and_its_shared_keys_map_onto_sofs(
    config_path: Path,
) -> None:
    write(config_path, SAM_FILE)
    config = SOFConfigManager(config_path).config
    assert config.total_timeout == 60.0  # max_execution_time
    assert config.enable_plan_cache is True  # enable_plan_caching
    assert config.skill_retries == 2  # max_retry_attempts
    assert config.require_vetting is True  # require_vetting_for_external
    assert config.executor == "sequential"  # enable_parallel_execution: false
    assert config.log_level == "INFO"
    assert config.plan_cache_ttl == 3600
    assert config.enable_fallback_plans is True
    assert (config.skill_timeout, config.max_plan_length) == (30.0, 10)
    assert config.use_sof_framework is False and config.fallback_to_legacy is True
    assert config.enable_plan_validation is True and config.enable_execution_metrics is True
    assert config.continue_on_skill_failure is False
    # SAM's names read the shared settings back, for SAM's callers of get_sof_config()
    assert (config.max_execution_time, config.max_retry_attempts) == (60.0, 2)
    assert config.enable_parallel_execution is False
    assert config.enable_plan_caching is True and config.require_vetting_for_external is True


@pytest.mark.parametrize(("parallel", "executor"), [(False, "sequential"), (True, "threads")])
def test_enable_parallel_execution_chooses_the_executor(
    config_path: Path, parallel: bool, executor: str
) -> None:
    write(config_path, {**SAM_FILE, "enable_parallel_execution": parallel})
    assert build_config().executor == executor


def test_a_sam_file_runs_a_plan_in_order_one_skill_at_a_time(
    config_path: Path, make_skill: Any
) -> None:
    from sof_core import UIF, CoordinatorEngine

    write(config_path, SAM_FILE)
    engine = CoordinatorEngine(config=build_config(plugins_autoload=False))
    engine.register_skill(make_skill("A", outputs=["a"]))
    engine.register_skill(make_skill("B", outputs=["b"]))
    report = engine.execute_plan(["A", "B"], UIF(input_query="q"))
    assert report.executor == "sequential"
    assert report.status == "success"


def test_log_level_critical_is_accepted(config_path: Path) -> None:
    write(config_path, {**SAM_FILE, "log_level": "CRITICAL"})
    assert build_config().log_level == "CRITICAL"
    assert SOFConfig(log_level="critical").log_level == "CRITICAL"


def test_sam_settings_sof_does_not_use_are_listed_once(
    config_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(config_path, SAM_FILE)
    with caplog.at_level(logging.INFO, logger="sof.config"):
        build_config()
        build_config()
        assert SOFConfigManager(config_path).config.total_timeout == 60.0
    lines = [r.getMessage() for r in caplog.records if "SAM settings SOF does not use" in
             r.getMessage()]
    assert len(lines) == 1
    assert all(key in lines[0] for key in SAM_UNUSED)
    assert "max_execution_time" not in lines[0]
    assert SOFConfigManager(config_path).sam_unused() == {k: SAM_FILE[k] for k in SAM_UNUSED}


def test_config_show_lists_them_in_a_section_of_their_own(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(config_path, SAM_FILE)
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    table, _, section = out.partition("SAM settings SOF does not use")
    assert section and all(key in section for key in SAM_UNUSED)
    assert "integrate_with_tpv" not in table
    assert f"config file {config_path} (as max_execution_time)" in table
    assert main(["config", "show", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sam_settings_not_used"] == {k: SAM_FILE[k] for k in SAM_UNUSED}
    rows = {row["key"]: row for row in data["settings"]}
    assert rows["total_timeout"]["value"] == 60.0


def test_when_a_file_holds_both_names_sofs_wins_and_a_difference_is_logged_once(
    config_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(config_path, {**SAM_FILE, "total_timeout": 90.0, "executor": "threads"})
    with caplog.at_level(logging.WARNING, logger="sof.config"):
        config = build_config()
        build_config()
    assert config.total_timeout == 90.0 and config.executor == "threads"
    notes = [r.getMessage() for r in caplog.records if "SOF uses" in r.getMessage()]
    assert len(notes) == 2, notes
    assert any("max_execution_time = 60.0" in n and "total_timeout = 90.0" in n for n in notes)
    assert any("enable_parallel_execution = False" in n and "executor" in n for n in notes)


def test_both_names_that_agree_are_not_reported(
    config_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(config_path, {**SAM_FILE, "enable_parallel_execution": True, "executor": "dask"})
    with caplog.at_level(logging.WARNING, logger="sof.config"):
        assert build_config().executor == "dask"
    assert "SOF uses" not in caplog.text


def test_a_bad_value_under_sams_name_is_reported_with_that_name(config_path: Path) -> None:
    write(config_path, {**SAM_FILE, "max_execution_time": -1, "enable_parallel_execution": 7})
    with pytest.raises(ConfigError) as info:
        build_config()
    message = str(info.value)
    assert "max_execution_time (SAM's name for total_timeout)" in message
    assert "enable_parallel_execution" in message and "true or false" in message


# --- writes go under the name the file uses ---------------------------------------------------


def test_a_setting_is_written_under_the_name_the_file_uses(config_path: Path) -> None:
    write(config_path, SAM_FILE)
    manager = SOFConfigManager(config_path)
    manager.update_config(total_timeout=90, skill_retries=0)
    data = json.loads(config_path.read_text())
    assert_only_changed(SAM_FILE, data, max_execution_time=90.0, max_retry_attempts=0)
    assert "total_timeout" not in data and "skill_retries" not in data
    assert manager.config.total_timeout == 90.0


def test_an_executor_sams_flag_cannot_say_is_written_under_both_names(
    config_path: Path,
) -> None:
    write(config_path, SAM_FILE)
    SOFConfigManager(config_path).update_config(executor="dask")
    data = json.loads(config_path.read_text())
    assert (data["enable_parallel_execution"], data["executor"]) == (True, "dask")
    SOFConfigManager(config_path).update_config(executor="sequential")
    data = json.loads(config_path.read_text())
    assert (data["enable_parallel_execution"], data["executor"]) == (False, "sequential")
    assert SOFConfigManager(config_path).config.executor == "sequential"


def test_sams_names_and_sams_other_keys_can_be_updated(config_path: Path) -> None:
    config_path.write_text("{}")
    manager = SOFConfigManager(config_path)
    manager.update_config(max_execution_time=45, integrate_with_tpv="false")
    assert json.loads(config_path.read_text()) == {"max_execution_time": 45.0,
                                                   "integrate_with_tpv": False}
    assert manager.config.total_timeout == 45.0
    with pytest.raises(ConfigError, match="integrate_with_tpv"):
        manager.update_config(integrate_with_tpv="maybe")
    with pytest.raises(ConfigError, match="give only one"):
        manager.update_config(max_execution_time=1, total_timeout=2)


# --- rollback on any parseable file --------------------------------------------------------------

BAD_FILES = {
    "rollout of 150": {**SAM_FILE, "use_sof_framework": True, "sof_rollout_percentage": 150},
    "typo'd key": {**SAM_FILE, "use_sof_framework": True, "sof_rolout_percentage": 0},
    "default_plan as a string": {**SAM_FILE, "use_sof_framework": True,
                                 "default_plan": "MemoryRetrievalSkill"},
    "all of them": {**SAM_FILE, "use_sof_framework": True, "sof_rollout_percentage": 150,
                    "sof_rolout_percentage": 0, "default_plan": "MemoryRetrievalSkill",
                    "plugin_settings": {"memory": {"path": "m.db", "deep": [[1, {"x": None}]]}},
                    "no_such_thing": {"kept": ["as", "is"]}},
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_disable_sof_framework_works_on_any_parseable_file(config_path: Path, name: str) -> None:
    before = BAD_FILES[name]
    write(config_path, before)
    config = disable_sof_framework()
    assert config.use_sof_framework is False
    assert_only_changed(before, json.loads(config_path.read_text()), use_sof_framework=False)
    state = get_sof_config_manager().state()
    assert state.error is not None  # reading for running still reports the bad values
    assert not list(config_path.parent.glob("*.corrupt-*"))


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_rollout_zero_works_on_any_parseable_file(config_path: Path, name: str) -> None:
    before = BAD_FILES[name]
    write(config_path, before)
    config = get_sof_config_manager().update_config(sof_rollout_percentage=0)
    assert config.sof_rollout_percentage == 0
    assert_only_changed(before, json.loads(config_path.read_text()), sof_rollout_percentage=0.0)


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_sof_config_disable_works_on_any_parseable_file(config_path: Path, name: str) -> None:
    before = BAD_FILES[name]
    write(config_path, before)
    done = sof_cli("config", "disable", path=config_path)
    assert done.returncode == 0, done.stderr
    assert "use_sof_framework = false" in done.stdout
    assert "Traceback" not in done.stderr
    assert "rolled back, but" in done.stderr  # the other problems are still reported
    assert_only_changed(before, json.loads(config_path.read_text()), use_sof_framework=False)


def test_reading_a_bad_file_for_running_still_reports_each_problem(config_path: Path) -> None:
    write(config_path, BAD_FILES["all of them"])
    with pytest.raises(ConfigError) as info:
        build_config()
    message = str(info.value)
    assert "sof_rollout_percentage" in message and "150" in message
    assert "default_plan" in message
    assert "'sof_rolout_percentage'" in message and "did you mean 'sof_rollout_percentage'" \
        in message
    assert "'no_such_thing'" in message
    done = sof_cli("config", "show", path=config_path)
    assert done.returncode == 2 and "150" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_toml_file_keeps_every_value_through_a_rollback(tmp_path: Path) -> None:
    path = tmp_path / "sof.toml"
    path.write_text(textwrap.dedent('''\
        use_sof_framework = true
        max_execution_time = 60.0
        note = "emoji \U0001F600, DEL \\u007F, quote \\" and tab \\t"
        when = 2024-05-01T12:30:00Z
        day = 2024-05-01
        at = 07:45:00
        "odd key" = 1
        [plugin_settings.memory]
        path = "m.db"
        [[servers]]
        name = "a"
        [[servers]]
        name = "b"
        '''))
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")

    before = tomllib.loads(path.read_text())
    SOFConfigManager(path, environ={}).disable_sof_framework()
    after = tomllib.loads(path.read_text())
    assert after == {**before, "use_sof_framework": False}


# --- errors name each unknown key once, briefly ------------------------------------------------


def test_an_unknown_key_error_is_short_and_suggests_the_near_miss(config_path: Path) -> None:
    write(config_path, {**SAM_FILE, "sof_rolout_percentage": 0, "planer": "goal",
                        "zzz_unrelated": 1})
    with pytest.raises(ConfigError) as info:
        build_config()
    message = str(info.value)
    assert len(message) < 800, len(message)
    assert message.count("'sof_rolout_percentage'") == 1
    assert "did you mean 'sof_rollout_percentage'" in message
    assert "did you mean 'planner'" in message
    assert "'zzz_unrelated'" in message
    assert "plugin_import_budget_ms" not in message  # never the list of every known key


def test_update_config_with_an_unknown_key_raises_with_did_you_mean(config_path: Path) -> None:
    write(config_path, SAM_FILE)
    with pytest.raises(ConfigError) as info:
        SOFConfigManager(config_path).update_config(sof_rolout_percentage=0)
    assert info.value.key == "sof_rolout_percentage"
    assert "did you mean 'sof_rollout_percentage'" in str(info.value)
    assert len(str(info.value)) < 300
    assert json.loads(config_path.read_text()) == SAM_FILE


# --- no keyword argument is swallowed as a setting ----------------------------------------------


def test_load_config_keywords_are_settings_or_errors(config_path: Path) -> None:
    assert load_config(max_execution_time=5).total_timeout == 5
    assert load_config(skill_retries=1).skill_retries == 1
    with pytest.raises(ConfigError, match="did you mean 'skill_retries'"):
        load_config(skill_retrys=1)
    with pytest.raises(ConfigError, match="SAM's settings that SOF does not use"):
        load_config(integrate_with_tpv=False)


def test_manager_keywords_are_checked_when_the_manager_is_made(config_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'skill_retries'"):
        SOFConfigManager(config_path, skill_retrys=2)
    with pytest.raises(ConfigError, match="sof_rollout_percentage"):
        SOFConfigManager(config_path, sof_rollout_percentage=150)
    assert SOFConfigManager(config_path, max_execution_time=7).config.total_timeout == 7


def test_sams_config_path_keyword_names_the_file(config_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"use_sof_framework": true}')
    manager = SOFConfigManager(config_path=other)
    assert manager.path == other == manager.config_path
    assert manager.config.use_sof_framework is True
    assert get_sof_config_manager(config_path=other) is get_sof_config_manager(other)
    with pytest.raises(ConfigError, match="give one"):
        SOFConfigManager(config_path, config_path=other)


# --- SAM's manager names on sof_core's manager -----------------------------------------------------


def test_sams_manager_methods_work_on_sof_cores_manager(config_path: Path) -> None:
    write(config_path, SAM_FILE)
    manager = SOFConfigManager(config_path=config_path)
    assert manager.load_config().total_timeout == 60.0
    assert manager.is_sof_enabled() is False
    manager.enable_sof()
    assert manager.is_sof_enabled() is True and is_sof_enabled() is True
    assert get_sof_config().use_sof_framework is True
    manager.disable_sof()
    assert manager.is_sof_enabled() is False
    assert manager.get_skill_config("AnySkill") == {
        "max_execution_time": 30.0, "enable_sandboxing": True, "enable_metrics": True,
        "log_level": "INFO",
    }
    assert manager.get_migration_config() == {
        "use_sof_framework": False, "fallback_to_legacy": True, "legacy_timeout": 30.0,
        "enable_execution_tracing": True, "sof_rollout_percentage": 0,
    }
    assert manager.validate_config() == []
    config = manager.load_config().model_copy(update={"skill_timeout": 99.0})
    assert manager.validate_config(config) == [
        "skill_timeout (99s) exceeds total_timeout (60s, SAM's max_execution_time): no skill "
        "can use all of it"
    ]
    manager.save_config(config)
    assert json.loads(config_path.read_text())["skill_timeout"] == 99.0
    data = json.loads(config_path.read_text())
    assert_only_changed(SAM_FILE, data, skill_timeout=99.0)


def test_load_config_never_raises_on_a_broken_file(
    config_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(config_path, {"use_sof_framework": True, "sof_rollout_percentage": 150})
    manager = SOFConfigManager(config_path)
    with caplog.at_level(logging.WARNING, logger="sof.config"):
        config = manager.load_config()
    assert config.use_sof_framework is False  # the file is left out, as the router does
    assert "150" in caplog.text
    assert manager.is_sof_enabled() is False
    problems = manager.validate_config()
    assert len(problems) == 1 and "sof_rollout_percentage" in problems[0]


def test_reset_to_defaults_keeps_a_copy(config_path: Path) -> None:
    text = write(config_path, {**SAM_FILE, "use_sof_framework": True})
    manager = SOFConfigManager(config_path)
    config = manager.reset_to_defaults()
    assert config == SOFConfig()
    assert json.loads(config_path.read_text()) == {}
    assert manager.last_backup is not None and manager.last_backup.read_text() == text


def test_a_rewrite_keeps_the_files_key_order(config_path: Path) -> None:
    write(config_path, SAM_FILE)
    SOFConfigManager(config_path).update_config(sof_rollout_percentage=5, skill_timeout=9)
    assert list(json.loads(config_path.read_text())) == [*SAM_FILE, "sof_rollout_percentage"]


def test_a_write_to_a_file_with_other_problems_returns_the_config_without_them(
    config_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(config_path, BAD_FILES["all of them"])
    with caplog.at_level(logging.WARNING, logger="sof.config"):
        config = SOFConfigManager(config_path).update_config(planner="goal")
    assert config.planner == "goal" and config.sof_rollout_percentage == 0
    assert config.total_timeout == 60.0  # the good keys still apply
    assert "still unusable" in caplog.text


def test_the_documented_shell_rollback_on_sams_relative_path(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    write(tmp_path / "config" / "sof_config.json", {**SAM_FILE, "use_sof_framework": True})
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    env["SOF_CONFIG"] = "config/sof_config.json"
    done = subprocess.run([sys.executable, "-m", "sof_core.cli", "config", "disable"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "use_sof_framework = false  (saved to config/sof_config.json)\n"
    data = json.loads((tmp_path / "config" / "sof_config.json").read_text())
    assert_only_changed(SAM_FILE, data)


def _in_a_sam_deployment(tmp_path: Path, **keys: Any) -> tuple[Path, dict[str, str]]:
    """A SAM working directory (its config file, no ``SOF_CONFIG``) and an environment whose
    user config folder is empty."""
    (tmp_path / "sam" / "config").mkdir(parents=True)
    write(tmp_path / "sam" / "config" / "sof_config.json", {**SAM_FILE, **keys})
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env["HOME"] = str(tmp_path / "home")
    return tmp_path / "sam", env


@pytest.mark.parametrize("how", ["cli", "python"])
def test_rollback_in_a_sam_working_directory_reaches_sams_file_without_sof_config(
    tmp_path: Path, how: str
) -> None:
    # Before: with SOF_CONFIG unset, `sof config disable` and disable_sof_framework() wrote
    # ~/.config/sof/config.json, and SAM, reading its own file, stayed on SOF.
    sam, env = _in_a_sam_deployment(tmp_path, use_sof_framework=True,
                                    sof_rollout_percentage=100)
    command = ([sys.executable, "-m", "sof_core", "config", "disable"] if how == "cli" else
               [sys.executable, "-c", "from sof_core.config import disable_sof_framework; "
                "disable_sof_framework()"])
    done = subprocess.run(command, cwd=sam, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    data = json.loads((sam / "config" / "sof_config.json").read_text())
    assert data["use_sof_framework"] is False
    assert_only_changed({**SAM_FILE, "use_sof_framework": True,
                         "sof_rollout_percentage": 100}, data, use_sof_framework=False)
    assert not (tmp_path / "xdg" / "sof").exists()  # nothing written beside it
    path = subprocess.run([sys.executable, "-m", "sof_core", "config", "path"], cwd=sam,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert path.stdout.strip() == str(sam / "config" / "sof_config.json")


def test_an_engine_made_in_a_sam_working_directory_reads_sams_file(tmp_path: Path) -> None:
    sam, env = _in_a_sam_deployment(tmp_path, strict_declarations=False, skill_timeout=7)
    code = ("from sof_core import CoordinatorEngine; c = CoordinatorEngine().config; "
            "print(c.strict_declarations, c.skill_timeout, c.total_timeout)")
    done = subprocess.run([sys.executable, "-c", code], cwd=sam, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "7.0", "60.0"]  # SAM's max_execution_time: 60


def _toml_data() -> Any:
    from hypothesis import strategies as st

    keys = st.text(min_size=1, max_size=8)
    scalars = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1),
                        st.floats(allow_nan=False), st.text(max_size=12))
    values = st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=3),
                                st.dictionaries(keys, inner, max_size=3)),
        max_leaves=8,
    )
    return st.dictionaries(keys, values, max_size=5)


def test_any_toml_data_survives_a_rewrite() -> None:
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    from hypothesis import given, settings

    from sof_core.config.manager import dump_toml

    @settings(max_examples=300, deadline=None)
    @given(_toml_data())
    def check(data: dict[str, Any]) -> None:
        assert tomllib.loads(dump_toml(data)) == data

    check()
