"""``sof_sam.config``: SAM's configuration API over sof_core's file handling, and rollback of a
SAM-written file by every path, with every key kept."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sof_sam.config as sam_config
from sof_sam.config import SOFConfig, SOFConfigManager

import sof_core.config as core
from sof_core import ConfigError

#: SAM's file as SAM writes it (shared/SAM_API.md, "Configuration"): 31 keys, SAM's defaults.
SAM_FILE: dict[str, Any] = {
    "use_sof_framework": False, "sof_version": "2.0.0", "max_execution_time": 60.0,
    "skill_timeout": 30.0, "enable_parallel_execution": False, "enable_plan_validation": True,
    "max_plan_length": 10, "allow_circular_dependencies": False, "enable_fallback_plans": True,
    "max_retry_attempts": 2, "continue_on_skill_failure": False,
    "enable_skill_sandboxing": True, "require_vetting_for_external": True,
    "max_intermediate_data_size": 10485760, "enable_plan_caching": True,
    "plan_cache_ttl": 3600, "enable_execution_metrics": True, "integrate_with_tpv": True,
    "integrate_with_memory": True, "integrate_with_vetting": True, "log_level": "INFO",
    "enable_execution_tracing": True, "save_execution_logs": True, "fallback_to_legacy": True,
    "legacy_timeout": 30.0, "enable_self_reflect": True,
    "self_reflect_confidence_threshold": 0.7,
    "self_reflect_profiles": ["researcher", "legal", "academic"],
    "self_reflect_query_keywords": ["what is", "who was", "when did", "define", "explain",
                                    "describe"],
    "enable_memoir_auto_correction": True, "self_reflect_max_revisions": 1,
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory with no SOF_* variables: SAM's default path applies."""
    for var in [v for v in os.environ if v.startswith("SOF_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    sam_config.reset_sof_config_managers()
    core.reset_sof_config_managers()
    yield tmp_path
    sam_config.reset_sof_config_managers()
    core.reset_sof_config_managers()


@pytest.fixture
def sam_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SAM's file at SAM's path, also named by SOF_CONFIG (so sof_core uses it too)."""
    path = workdir / "config" / "sof_config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(SAM_FILE, indent=2))
    monkeypatch.setenv("SOF_CONFIG", str(path))
    return path


def as_data(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def assert_only_changed(before: dict[str, Any], after: dict[str, Any], **changed: Any) -> None:
    for key, value in changed.items():
        assert as_data(after[key]) == as_data(value), key
    assert as_data({k: v for k, v in after.items() if k not in changed}) == \
        as_data({k: v for k, v in before.items() if k not in changed})


# --- SAM's SOFConfig --------------------------------------------------------------------------


def test_sofconfig_has_sams_31_fields_in_sams_order_with_sams_defaults() -> None:
    assert dataclasses.asdict(SOFConfig()) == SAM_FILE
    assert [f.name for f in dataclasses.fields(SOFConfig)] == list(SAM_FILE)
    assert dataclasses.asdict(SOFConfig()) == core.sam_defaults()
    a, b = SOFConfig(), SOFConfig()
    a.self_reflect_profiles.append("x")
    assert b.self_reflect_profiles == ["researcher", "legal", "academic"]


# --- SAM's manager ----------------------------------------------------------------------------


def test_default_path_is_sams_relative_path_unless_sof_config_is_set(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SOFConfigManager().config_path == Path("config/sof_config.json")
    assert SOFConfigManager("elsewhere.json").config_path == Path("elsewhere.json")
    monkeypatch.setenv("SOF_CONFIG", str(workdir / "shared.json"))
    assert SOFConfigManager().config_path == workdir / "shared.json"
    assert core.get_sof_config_manager().path == workdir / "shared.json"


def test_a_missing_file_gets_sams_defaults_written(workdir: Path) -> None:
    manager = SOFConfigManager()
    config = manager.load_config()
    assert config == SOFConfig()
    path = workdir / "config" / "sof_config.json"
    assert json.loads(path.read_text()) == SAM_FILE
    assert manager.load_config() is config  # cached


def test_an_unreadable_file_gives_defaults_and_is_left_alone(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = workdir / "config" / "sof_config.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with caplog.at_level(logging.ERROR, logger="sof_sam.config"):
        config = SOFConfigManager().load_config()
    assert config == SOFConfig()
    assert "corrupt" in caplog.text
    assert path.read_text() == "{not json"


def test_the_cache_follows_changes_made_by_another_process(sam_file: Path) -> None:
    manager = sam_config.get_sof_config_manager()
    manager.enable_sof()
    assert manager.is_sof_enabled() is True
    done = subprocess.run([sys.executable, "-m", "sof_core.cli", "config", "disable"],
                          env={**os.environ}, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert manager.is_sof_enabled() is False
    assert sam_config.is_sof_enabled() is False


def test_update_config_warns_about_unknown_keys_and_ignores_them(
    sam_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manager = SOFConfigManager()
    with caplog.at_level(logging.WARNING, logger="sof_sam.config"):
        config = manager.update_config(max_plan_lenght=3, log_level="DEBUG")
    assert "'max_plan_lenght'" in caplog.text and "did you mean 'max_plan_length'" in caplog.text
    assert config.log_level == "DEBUG"
    data = json.loads(sam_file.read_text())
    assert_only_changed(SAM_FILE, data, log_level="DEBUG")


def test_update_config_takes_sofs_names_too(sam_file: Path) -> None:
    manager = SOFConfigManager()
    config = manager.update_config(sof_rollout_percentage=25, total_timeout=90)
    assert config.max_execution_time == 90.0  # SOF's name, seen through SAM's
    data = json.loads(sam_file.read_text())
    assert_only_changed(SAM_FILE, {k: v for k, v in data.items() if k != "sof_rollout_percentage"},
                        max_execution_time=90.0)
    assert data["sof_rollout_percentage"] == 25.0
    assert core.SOFConfigManager(sam_file).config.sof_rollout_percentage == 25


def test_a_bad_value_raises_and_nothing_is_written(sam_file: Path) -> None:
    manager = SOFConfigManager()
    with pytest.raises(ConfigError, match="max_execution_time"):
        manager.update_config(max_execution_time="soon")
    assert json.loads(sam_file.read_text()) == SAM_FILE
    assert manager.load_config().max_execution_time == 60.0


def test_save_config_writes_only_what_changed(sam_file: Path) -> None:
    data = {**SAM_FILE, "plugin_settings": {"memory": {"path": "m.db"}}, "custom": [1, 2]}
    sam_file.write_text(json.dumps(data))
    manager = SOFConfigManager()
    config = manager.load_config()
    config.max_retry_attempts = 0
    config.enable_parallel_execution = True
    manager.save_config()
    after = json.loads(sam_file.read_text())
    assert_only_changed(data, after, max_retry_attempts=0, enable_parallel_execution=True)
    sof = core.SOFConfigManager(sam_file).state()
    assert sof.error is not None and "custom" in str(sof.error)  # SOF still reports the typo


def test_a_key_sam_does_not_know_is_logged_once_and_the_rest_is_read(
    sam_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sam_file.write_text(json.dumps({**SAM_FILE, "use_sof_framework": True,
                                    "max_plan_lenght": 3}))
    manager = SOFConfigManager()
    with caplog.at_level(logging.WARNING, logger="sof_sam.config"):
        config = manager.load_config()
        manager.update_config(log_level="DEBUG")
        manager.load_config()
    assert config.use_sof_framework is True  # SAM would have fallen back to its defaults
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "sof_sam.config" and "max_plan_lenght" in r.getMessage()]
    assert len(warnings) == 1 and "did you mean 'max_plan_length'" in warnings[0]
    assert json.loads(sam_file.read_text())["max_plan_lenght"] == 3


def test_environment_overrides_reach_sams_view(
    sam_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOF_USE_SOF_FRAMEWORK", "true")
    monkeypatch.setenv("SOF_EXECUTOR", "threads")
    config = SOFConfigManager().load_config()
    assert config.use_sof_framework is True and config.enable_parallel_execution is True
    assert json.loads(sam_file.read_text()) == SAM_FILE  # nothing copied into the file


def test_validate_config_reports_sams_checks_and_sofs(sam_file: Path) -> None:
    data = {**SAM_FILE, "skill_timeout": 90.0, "max_plan_length": "ten", "log_level": "LOUD",
            "sof_rollout_percentage": 150}
    sam_file.write_text(json.dumps(data))
    issues = SOFConfigManager().validate_config()
    assert "skill_timeout cannot exceed max_execution_time" in issues
    assert "max_plan_length must be a number (got 'ten')" in issues
    assert any(i.startswith("log_level must be one of") for i in issues)
    assert any("sof_rollout_percentage" in i and "150" in i for i in issues)
    assert SOFConfigManager().validate_config(SOFConfig()) == []


def test_reset_migration_and_skill_config(sam_file: Path) -> None:
    manager = SOFConfigManager()
    manager.update_config(use_sof_framework=True, legacy_timeout=5.0)
    assert manager.get_migration_config() == {
        "use_sof_framework": True, "fallback_to_legacy": True, "legacy_timeout": 5.0,
        "enable_execution_tracing": True,
    }
    assert manager.get_skill_config("X") == {"max_execution_time": 30.0,
                                             "enable_sandboxing": True, "enable_metrics": True,
                                             "log_level": "INFO"}
    sam_file.write_text(json.dumps({**SAM_FILE, "custom": 1}))
    assert manager.reset_to_defaults() == SOFConfig()
    assert json.loads(sam_file.read_text()) == SAM_FILE
    assert list(sam_file.parent.glob("sof_config.json.before-reset-*"))


def test_module_functions(sam_file: Path) -> None:
    assert sam_config.get_sof_config() == SOFConfig()
    sam_config.enable_sof_framework()
    assert sam_config.is_sof_enabled() is True
    assert sam_config.get_sof_config().use_sof_framework is True
    assert sam_config.get_sof_config_manager() is sam_config.get_sof_config_manager()
    other = sam_config.get_sof_config_manager("other.json")
    assert other.config_path == Path("other.json")
    assert other is not sam_config.get_sof_config_manager()
    assert sam_config.disable_sof_framework() is None
    assert sam_config.is_sof_enabled() is False


# --- rollback of a SAM-written file, by every path -------------------------------------------

#: SAM's 31 keys plus SOF keys and a typo, some with values SOF refuses: rollback must still
#: work and keep every key.
MESSY_FILE: dict[str, Any] = {
    **SAM_FILE,
    "use_sof_framework": True,
    "sof_rollout_percentage": 150,
    "sof_rolout_percentage": 0,
    "default_plan": "MemoryRetrievalSkill",
    "plugin_settings": {"memory": {"path": "m.db"}},
    "executor": "threads",
}


def _subprocess(argv: list[str]) -> Callable[[], None]:
    def run() -> None:
        done = subprocess.run(argv, env={**os.environ}, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr

    return run


def _python(code: str) -> Callable[[], None]:
    return _subprocess([sys.executable, "-c", textwrap.dedent(code)])


ROLLBACKS: dict[str, tuple[Callable[[], Any], dict[str, Any]]] = {
    "sof_core.config.disable_sof_framework": (
        lambda: core.disable_sof_framework(), {"use_sof_framework": False}),
    "sof_sam.config.disable_sof_framework": (
        lambda: sam_config.disable_sof_framework(), {"use_sof_framework": False}),
    "sof_core update_config(sof_rollout_percentage=0)": (
        lambda: core.get_sof_config_manager().update_config(sof_rollout_percentage=0),
        {"sof_rollout_percentage": 0.0}),
    "sof_sam update_config(sof_rollout_percentage=0)": (
        lambda: sam_config.get_sof_config_manager().update_config(sof_rollout_percentage=0),
        {"sof_rollout_percentage": 0.0}),
    "SAM's manager disable_sof()": (
        lambda: SOFConfigManager().disable_sof(), {"use_sof_framework": False}),
    "sof_core manager disable_sof()": (
        lambda: core.SOFConfigManager(config_path="config/sof_config.json").disable_sof(),
        {"use_sof_framework": False}),
    "`sof config disable` in a subprocess": (
        _subprocess([sys.executable, "-m", "sof_core.cli", "config", "disable"]),
        {"use_sof_framework": False}),
    "the seed's snippet with sof_sam in a subprocess": (
        _python("""
            from sof_sam.config import disable_sof_framework
            disable_sof_framework()
            print("SOF framework disabled")
            """),
        {"use_sof_framework": False}),
}


@pytest.mark.parametrize("content", ["SAM's own file", "a messy file"])
@pytest.mark.parametrize("path_name", list(ROLLBACKS))
def test_every_rollback_path_keeps_every_key(
    sam_file: Path, path_name: str, content: str
) -> None:
    before = SAM_FILE if content == "SAM's own file" else MESSY_FILE
    before = {**before, "use_sof_framework": True}
    sam_file.write_text(json.dumps(before, indent=2))
    rollback, changed = ROLLBACKS[path_name]
    rollback()
    after = json.loads(sam_file.read_text())
    assert_only_changed(before, after, **changed)
    if "use_sof_framework" in changed:
        assert SOFConfigManager().is_sof_enabled() is False
    assert not list(sam_file.parent.glob("*.corrupt-*"))


def test_the_guides_shell_rollback_on_sams_relative_path(tmp_path: Path) -> None:
    """docs/migration-from-sam.md: `SOF_CONFIG=config/sof_config.json sof config disable`, run
    in SAM's working directory, rolls back SAM's file and writes nothing else."""
    (tmp_path / "config").mkdir()
    sam_path = tmp_path / "config" / "sof_config.json"
    before = {**SAM_FILE, "use_sof_framework": True, "table_to_code_expert_enabled": True}
    sam_path.write_text(json.dumps(before, indent=2))
    env = {**os.environ, "SOF_CONFIG": "config/sof_config.json", "HOME": str(tmp_path / "home"),
           "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    done = subprocess.run([sys.executable, "-m", "sof_core.cli", "config", "disable"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    after = json.loads(sam_path.read_text())
    assert after == {**before, "use_sof_framework": False}
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()


# --- SAM's number types -----------------------------------------------------------------------


def test_sams_file_holds_sams_numbers_as_sam_writes_them(workdir: Path) -> None:
    """SAM's dataclass writes ``plan_cache_ttl`` as the int 3600 and its float settings as
    floats; SOF's reading the same file as floats must not turn SAM's ints into 3600.0."""
    config = SOFConfigManager().load_config()
    assert type(config.plan_cache_ttl) is int and config.plan_cache_ttl == 3600
    text = (workdir / "config" / "sof_config.json").read_text()
    assert '"plan_cache_ttl": 3600,' in text and '"max_plan_length": 10,' in text
    assert '"max_execution_time": 60.0,' in text and '"skill_timeout": 30.0,' in text
    assert core.get_sof_config_manager("config/sof_config.json").config.plan_cache_ttl == 3600.0


def test_update_config_keeps_the_number_given_as_sams_dataclass_does(sam_file: Path) -> None:
    manager = SOFConfigManager()
    config = manager.update_config(skill_timeout=5, plan_cache_ttl=120)
    assert type(config.skill_timeout) is int and config.skill_timeout == 5
    assert type(config.plan_cache_ttl) is int and config.plan_cache_ttl == 120
    assert manager.get_skill_config("S")["max_execution_time"] == 5
    assert type(manager.get_skill_config("S")["max_execution_time"]) is int
    text = sam_file.read_text()
    assert '"skill_timeout": 5,' in text and '"plan_cache_ttl": 120,' in text
    manager.update_config(skill_timeout=7.5)
    assert manager.load_config().skill_timeout == 7.5 and '"skill_timeout": 7.5,' in \
        sam_file.read_text()


def test_reset_and_save_write_sams_ints_as_ints(sam_file: Path) -> None:
    manager = SOFConfigManager()
    manager.reset_to_defaults()
    assert '"plan_cache_ttl": 3600,' in sam_file.read_text()
    config = manager.load_config()
    config.skill_timeout = 12
    manager.save_config(config)
    assert '"skill_timeout": 12,' in sam_file.read_text()
    assert type(SOFConfigManager().load_config().skill_timeout) is int


def test_a_wrong_type_is_still_refused_when_stored(sam_file: Path) -> None:
    before = sam_file.read_text()
    with pytest.raises(ConfigError, match="skill_timeout"):
        SOFConfigManager().update_config(skill_timeout=[5])
    assert sam_file.read_text() == before
