"""The live configuration: sources, validation, atomic locked writes, live reload, rollback."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from sof_core.config import SOFConfig, get_sof_config_manager
from sof_core.config.manager import SOFConfigManager, dump_toml, reset_sof_config_managers
from sof_core.errors import ConfigError


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private config file, with every SOF_* variable of the outer environment removed."""
    for var in list(os.environ):
        if var.startswith("SOF_"):
            monkeypatch.delenv(var)
    path = tmp_path / "config.json"
    monkeypatch.setenv("SOF_CONFIG", str(path))
    reset_sof_config_managers()
    yield path
    reset_sof_config_managers()


def _env(path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    env["SOF_CONFIG"] = str(path)
    return env


def _python(code: str, path: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=_env(path), capture_output=True, text=True, timeout=timeout, check=False,
    )


# --- the seed's flags and sources ------------------------------------------------------------


def test_seed_flags_have_the_seed_defaults(config_path: Path) -> None:
    config = SOFConfigManager(config_path).config
    assert config.use_sof_framework is False
    assert config.fallback_to_legacy is True
    assert config.enable_plan_validation is True
    assert config.enable_execution_metrics is True
    assert config.sof_rollout_percentage == 0


def test_sources_rank_defaults_file_environment_arguments(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path.write_text(json.dumps(
        {"sof_rollout_percentage": 10, "planner": "goal", "skill_retries": 1, "max_workers": 4}
    ))
    monkeypatch.setenv("SOF_ROLLOUT_PERCENTAGE", "20")
    monkeypatch.setenv("SOF_SKILL_RETRIES", "2")
    manager = SOFConfigManager(config_path, skill_retries=3)
    config = manager.config
    assert (config.max_workers, config.planner) == (4, "goal")  # file over defaults
    assert config.sof_rollout_percentage == 20  # environment over file
    assert config.skill_retries == 3  # arguments over everything
    sources = {row["key"]: row["source"] for row in manager.explain()}
    assert sources["max_workers"] == f"config file {config_path}"
    assert sources["sof_rollout_percentage"] == "environment SOF_ROLLOUT_PERCENTAGE"
    assert sources["skill_retries"] == "argument"
    assert sources["executor"] == "default"


def test_toml_config_files_are_read_and_written(tmp_path: Path) -> None:
    path = tmp_path / "sof.toml"
    path.write_text('use_sof_framework = true\n[plugin_settings.memory]\npath = "m.db"\n')
    manager = SOFConfigManager(path, environ={})
    manager.update_config(sof_rollout_percentage=12.5, plugins_disable=["web"])
    fresh = SOFConfigManager(path, environ={}).config
    assert fresh.use_sof_framework is True
    assert fresh.sof_rollout_percentage == 12.5
    assert fresh.plugins_disable == ["web"]
    assert fresh.settings_for("memory") == {"path": "m.db"}


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG_CONFIG_HOME is Linux's")
def test_config_toml_in_the_user_config_dir_is_read_when_there_is_no_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in list(os.environ):
        if var.startswith("SOF_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    folder = tmp_path / "sof"
    folder.mkdir()
    (folder / "config.toml").write_text("use_sof_framework = true\nsof_rollout_percentage = 35\n")
    reset_sof_config_managers()
    try:
        manager = get_sof_config_manager()
        assert manager.path == folder / "config.toml"
        assert manager.config.sof_rollout_percentage == 35  # before: ignored, 0
        manager.update_config(sof_rollout_percentage=40)  # written back as TOML
        assert "sof_rollout_percentage = 40" in (folder / "config.toml").read_text()
        (folder / "config.json").write_text('{"sof_rollout_percentage": 5}')
        reset_sof_config_managers()
        assert get_sof_config_manager().config.sof_rollout_percentage == 5  # JSON first
    finally:
        reset_sof_config_managers()


def test_toml_cannot_store_null_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        dump_toml({"skill_timeout": None})
    assert info.value.key == "skill_timeout"
    assert "JSON" in str(info.value)


# --- validation ---------------------------------------------------------------------------


def test_unknown_key_is_an_error_naming_it_and_nothing_is_written(config_path: Path) -> None:
    manager = SOFConfigManager(config_path)
    with pytest.raises(ConfigError) as info:
        manager.update_config(sof_rolout_percentage=5)
    assert info.value.key == "sof_rolout_percentage"
    assert "sof_rolout_percentage" in str(info.value)
    assert not config_path.exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [("sof_rollout_percentage", 101), ("sof_rollout_percentage", -1),
     ("use_sof_framework", "maybe"), ("max_workers", 0), ("log_level", "LOUD"),
     ("sof_rollout_percentage", True), ("skill_timeout", False), ("max_workers", True)],
)
def test_bad_value_is_an_error_naming_the_key(config_path: Path, key: str, value: object) -> None:
    config_path.write_text('{"planner": "goal"}')
    manager = SOFConfigManager(config_path)
    with pytest.raises(ConfigError) as info:
        manager.update_config(**{key: value})
    assert info.value.key == key
    assert key in str(info.value)
    assert json.loads(config_path.read_text()) == {"planner": "goal"}  # untouched


def test_true_in_a_file_is_not_read_as_a_rollout_of_one_percent(config_path: Path) -> None:
    config_path.write_text('{"sof_rollout_percentage": true}')
    state = SOFConfigManager(config_path).state()
    assert state.config is None
    assert "sof_rollout_percentage" in str(state.error)
    assert "must be a number, not true" in str(state.error)


def test_a_write_through_a_symlink_changes_the_file_it_names(
    config_path: Path, tmp_path: Path
) -> None:
    real = tmp_path / "real" / "sof.json"
    real.parent.mkdir()
    real.write_text('{"use_sof_framework": true, "sof_rollout_percentage": 100, "x_team": 1}')
    link = tmp_path / "link.json"
    link.symlink_to(Path("real") / "sof.json")
    SOFConfigManager(link).disable_sof_framework()
    assert link.is_symlink()  # the link stays a link...
    assert json.loads(real.read_text()) == {  # ...and the host reading the real path sees it
        "use_sof_framework": False, "sof_rollout_percentage": 100, "x_team": 1}
    assert SOFConfigManager(real).load_config().use_sof_framework is False
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".link")] == []


def test_update_keeps_other_keys_and_normalises_the_new_value(config_path: Path) -> None:
    config_path.write_text('{"planner": "goal", "plugin_settings": {"memory": {"path": "x"}}}')
    SOFConfigManager(config_path).update_config(sof_rollout_percentage="25")
    assert json.loads(config_path.read_text()) == {
        "planner": "goal",
        "plugin_settings": {"memory": {"path": "x"}},
        "sof_rollout_percentage": 25.0,
    }


# --- live reload ----------------------------------------------------------------------------


def test_changes_from_another_process_apply_on_the_next_read(config_path: Path) -> None:
    manager = SOFConfigManager(config_path)
    assert manager.config.use_sof_framework is False
    done = _python(
        """
        from sof_core.config import enable_sof_framework
        enable_sof_framework(40)
        """,
        config_path,
    )
    assert done.returncode == 0, done.stderr
    assert manager.config.use_sof_framework is True
    assert manager.config.sof_rollout_percentage == 40


def test_the_state_is_cached_until_the_file_changes(config_path: Path) -> None:
    manager = SOFConfigManager(config_path)
    first = manager.state()
    assert manager.state() is first
    manager.update_config(planner="goal")
    assert manager.state() is not first
    assert manager.config.planner == "goal"


def test_environment_still_overrides_a_reloaded_file(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOF_USE_SOF_FRAMEWORK", "true")
    manager = SOFConfigManager(config_path)
    manager.update_config(use_sof_framework=False)
    assert json.loads(config_path.read_text())["use_sof_framework"] is False
    assert manager.config.use_sof_framework is True
    assert manager.overridden("use_sof_framework") == "environment SOF_USE_SOF_FRAMEWORK"


# --- broken files ---------------------------------------------------------------------------


def test_corrupt_file_gives_a_config_error_and_a_state_that_never_raises(
    config_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config_path.write_text('{"use_sof_framework": tru')
    manager = SOFConfigManager(config_path)
    with caplog.at_level(logging.WARNING, logger="sof.config"):
        state = manager.state()
    assert state.config is None
    assert str(config_path) in str(state.error)
    assert "corrupt" in str(state.error)
    assert state.fallback_to_legacy is True  # from the defaults: the file cannot be read
    assert "unusable" in caplog.text
    with pytest.raises(ConfigError, match="corrupt"):
        _ = manager.config


def test_fallback_flag_of_a_broken_file_comes_from_environment(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path.write_text("[1, 2]")
    monkeypatch.setenv("SOF_FALLBACK_TO_LEGACY", "false")
    state = SOFConfigManager(config_path).state()
    assert state.error is not None and state.fallback_to_legacy is False


def test_update_refuses_to_overwrite_a_corrupt_file(config_path: Path) -> None:
    config_path.write_text("{oops")
    with pytest.raises(ConfigError, match="sof config disable"):
        SOFConfigManager(config_path).update_config(planner="goal")
    assert config_path.read_text() == "{oops"


def test_rollback_works_on_a_corrupt_file_and_keeps_a_copy(config_path: Path) -> None:
    config_path.write_text("{oops")
    manager = SOFConfigManager(config_path)
    config = manager.disable_sof_framework()
    assert config.use_sof_framework is False
    assert json.loads(config_path.read_text()) == {"use_sof_framework": False}
    assert manager.last_backup is not None and manager.last_backup.read_text() == "{oops"


# --- the seed's rollback snippets, verbatim ---------------------------------------------------


def test_seed_rollback_snippet_disable(config_path: Path) -> None:
    config_path.write_text('{"use_sof_framework": true, "sof_rollout_percentage": 50}')
    done = _python(
        """
        from sof_core.config import disable_sof_framework
        disable_sof_framework()
        print("SOF framework disabled")
        """,
        config_path,
    )
    assert done.returncode == 0, done.stderr
    assert "SOF framework disabled" in done.stdout
    assert json.loads(config_path.read_text())["use_sof_framework"] is False
    reset_sof_config_managers()
    assert get_sof_config_manager().config.use_sof_framework is False
    assert get_sof_config_manager().config.sof_rollout_percentage == 50  # kept for re-enabling


def test_seed_rollback_snippet_rollout_zero(config_path: Path) -> None:
    config_path.write_text('{"use_sof_framework": true, "sof_rollout_percentage": 50}')
    done = _python(
        """
        from sof_core.config import get_sof_config_manager
        manager = get_sof_config_manager()
        manager.update_config(sof_rollout_percentage=0)
        """,
        config_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(config_path.read_text())["sof_rollout_percentage"] == 0
    assert SOFConfigManager(config_path).config.sof_rollout_percentage == 0


def test_enable_sof_framework_is_importable_from_config(config_path: Path) -> None:
    from sof_core.config import enable_sof_framework

    config = enable_sof_framework(rollout_percentage=5)
    assert (config.use_sof_framework, config.sof_rollout_percentage) == (True, 5)


def test_get_sof_config_manager_follows_sof_config(
    config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = get_sof_config_manager()
    assert first is get_sof_config_manager()
    assert first.path == config_path
    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "other.json"))
    assert get_sof_config_manager().path == tmp_path / "other.json"


# --- atomicity and concurrency -----------------------------------------------------------------


def test_file_always_parses_while_another_process_keeps_writing(config_path: Path) -> None:
    SOFConfigManager(config_path).update_config(max_workers=1)
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            from sof_core.config import get_sof_config_manager
            manager = get_sof_config_manager()
            for i in range(1, 151):
                manager.update_config(max_workers=i, default_plan=["S"] * (i % 7 + 1))
            """
        )],
        env=_env(config_path), stderr=subprocess.PIPE, text=True,
    )
    reads = 0
    while writer.poll() is None or reads < 50:
        data = json.loads(config_path.read_text())  # never a half-written file
        SOFConfig(**data)
        reads += 1
    assert writer.wait(60) == 0, writer.stderr.read() if writer.stderr else ""
    assert json.loads(config_path.read_text())["max_workers"] == 150
    leftovers = [p.name for p in config_path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_concurrent_updates_from_two_processes_both_persist(config_path: Path) -> None:
    script = """
        import sys
        from sof_core.config import get_sof_config_manager
        key = sys.argv[1]
        manager = get_sof_config_manager()
        for i in range(1, 61):
            manager.update_config(**{key: i})
        """
    procs = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), key],
                         env=_env(config_path), stderr=subprocess.PIPE, text=True)
        for key in ("max_workers", "skill_retries")
    ]
    for proc in procs:
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    data = json.loads(config_path.read_text())
    assert (data["max_workers"], data["skill_retries"]) == (60, 60)


def test_concurrent_updates_from_threads_all_persist(config_path: Path) -> None:
    keys = ["max_workers", "skill_retries", "plan_cache_size", "max_plan_length"]
    managers = [SOFConfigManager(config_path) for _ in keys]  # separate caches, one file

    def bump(manager: SOFConfigManager, key: str) -> None:
        for i in range(1, 31):
            manager.update_config(**{key: i})

    threads = [threading.Thread(target=bump, args=pair) for pair in zip(managers, keys, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    data = json.loads(config_path.read_text())
    assert {key: data[key] for key in keys} == dict.fromkeys(keys, 30)


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(
    config_path: Path, tmp_path: Path
) -> None:
    config_path.write_text('{"planner": "goal"}')
    # A writer SIGKILLed between its temporary file and the rename: make it do exactly that.
    code = f"""
        import os, signal
        from pathlib import Path
        import sof_core.config.manager as manager
        def killed(path, text):
            import tempfile
            tempfile.mkstemp(dir=path.parent, prefix=f".{{path.name}}.", suffix=".tmp")
            os.kill(os.getpid(), signal.SIGKILL)
        manager.write_atomic = killed
        manager.SOFConfigManager(Path({str(config_path)!r})).update_config(skill_retries=1)
    """
    assert _python(code, config_path).returncode == -9
    other = tmp_path / ".config.json.other.json.abcdefgh.tmp"  # another file's, kept
    other.write_text("{}")
    assert len([p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]) == 2
    SOFConfigManager(config_path).update_config(skill_retries=2)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == [other.name]
    assert json.loads(config_path.read_text()) == {"planner": "goal", "skill_retries": 2}


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_root_rewriting_a_services_file_keeps_its_owner(config_path: Path) -> None:
    config_path.write_text('{"use_sof_framework": true}')
    os.chown(config_path, 4321, 4322)
    SOFConfigManager(config_path).disable_sof_framework()
    st = config_path.stat()
    assert (st.st_uid, st.st_gid) == (4321, 4322)
    assert json.loads(config_path.read_text()) == {"use_sof_framework": False}
