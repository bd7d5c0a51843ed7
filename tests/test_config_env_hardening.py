"""The environment and SOF_CONFIG: unknown SOF_* variables are reported with "did you mean",
yes/no switches mean what they say, an empty plugin list is an error, special files are
refused instead of read forever, and deep JSON is a ConfigError, not a RecursionError."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import sof_core.config.sources as sources
from sof_core.config import SOFConfig, build_config, env_overrides, unknown_env_vars
from sof_core.config.manager import SOFConfigManager, reset_sof_config_managers
from sof_core.errors import ConfigError


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for var in [v for v in os.environ if v.startswith("SOF_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "config.json"
    monkeypatch.setenv("SOF_CONFIG", str(path))
    monkeypatch.setattr(sources, "_env_checked", set())  # each test sees its own first warning
    reset_sof_config_managers()
    yield path
    reset_sof_config_managers()


def python(code: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**base, **env},
                          capture_output=True, text=True, timeout=timeout, check=False)


def sof(*argv: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    return subprocess.run([sys.executable, "-m", "sof_core.cli", *argv], env={**base, **env},
                          capture_output=True, text=True, timeout=timeout, check=False)


# --- unknown SOF_* variables ------------------------------------------------------------------


def test_a_misspelt_variable_is_warned_about_with_did_you_mean(
    clean_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {"SOF_ROLOUT_PERCENTAGE": "0", "SOF_USE_SOF_FRAMEWORK": "1"}
    with caplog.at_level(logging.WARNING, logger="sof.config"):
        build_config(environ=environ)
        build_config(environ=environ)
    warnings = [r.getMessage() for r in caplog.records if "SOF_ROLOUT_PERCENTAGE" in
                r.getMessage()]
    assert len(warnings) == 1  # once per process
    assert "did you mean SOF_ROLLOUT_PERCENTAGE" in warnings[0]


def test_did_you_mean_names_each_variable_once(
    clean_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sof.config"):
        build_config(environ={"SOF_PLUGINS_MODULES": "x"})
    [warning] = [r.getMessage() for r in caplog.records if "SOF_PLUGINS_MODULES" in
                 r.getMessage()]
    # It said "SOF_PLUGINS_ONLY or SOF_PLUGINS_ONLY": an alias and the field's own
    # variable are the same name.
    suggested = warning.split("did you mean ", 1)[1].rstrip("?").split(" or ")
    assert "SOF_PLUGINS_ONLY" in suggested
    assert len(suggested) == len(set(suggested))


def test_the_warning_reaches_a_host_process_stderr(tmp_path: Path) -> None:
    done = python(
        """
        from sof_core.config import load_config
        print(load_config().sof_rollout_percentage)
        """,
        {"SOF_CONFIG": str(tmp_path / "c.json"), "SOF_ROLOUT_PERCENTAGE": "0"},
    )
    assert done.returncode == 0, done.stderr
    assert "SOF_ROLOUT_PERCENTAGE" in done.stderr
    assert "did you mean SOF_ROLLOUT_PERCENTAGE" in done.stderr


def test_config_show_lists_ignored_variables(tmp_path: Path) -> None:
    done = sof("config", "show", "--json", env={"SOF_CONFIG": str(tmp_path / "c.json"),
                                                 "SOF_ROLOUT_PERCENTAGE": "0"})
    assert done.returncode == 0, done.stderr
    unknown = json.loads(done.stdout)["unknown_environment"]
    assert "SOF_ROLLOUT_PERCENTAGE" in unknown["SOF_ROLOUT_PERCENTAGE"]


def test_sams_names_as_variables_point_at_sofs(clean_env: Path) -> None:
    found = unknown_env_vars({"SOF_MAX_EXECUTION_TIME": "5", "SOF_ENABLE_PARALLEL_EXECUTION": "1",
                              "SOF_INTEGRATE_WITH_TPV": "0", "SOF_PLUGIN_SETTINGS": "{}"})
    assert "SOF_TOTAL_TIMEOUT" in found["SOF_MAX_EXECUTION_TIME"]
    assert "SOF_EXECUTOR=sequential or threads" in found["SOF_ENABLE_PARALLEL_EXECUTION"]
    assert "does not use" in found["SOF_INTEGRATE_WITH_TPV"]
    assert "config file" in found["SOF_PLUGIN_SETTINGS"]


def test_plugin_and_core_variables_are_not_reported(clean_env: Path) -> None:
    environ = {
        "SOF_CONFIG": "x.json", "SOF_DISABLE_PLUGIN_AUTOLOAD": "0", "SOF_EXECUTOR": "threads",
        "SOF_MEMORY_PATH": "m.db",  # the installed memory plugin's namespace
        "SOF_LLM_MODEL": "m", "SOF_TPV_MAX_TOKENS": "5", "SOF_USE_TPV_CONTROL": "1",
        "SOF_SKILL_TIMEOUT": "5", "SOF_TOTALLY_UNKNOWN": "1",
    }
    assert list(unknown_env_vars(environ)) == ["SOF_TOTALLY_UNKNOWN"]


# --- yes/no switches and lists --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "false", "no", "off", "", "FALSE"])
def test_disable_plugin_autoload_off_values_keep_autoload(clean_env: Path, value: str) -> None:
    environ = {"SOF_DISABLE_PLUGIN_AUTOLOAD": value}
    assert "plugins_autoload" not in env_overrides(environ)
    assert build_config(environ=environ).plugins_autoload is True


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "TRUE"])
def test_disable_plugin_autoload_on_values_stop_autoload(clean_env: Path, value: str) -> None:
    assert build_config(environ={"SOF_DISABLE_PLUGIN_AUTOLOAD": value}).plugins_autoload is False


def test_disable_plugin_autoload_other_values_are_an_error(clean_env: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(environ={"SOF_DISABLE_PLUGIN_AUTOLOAD": "please"})
    assert "SOF_DISABLE_PLUGIN_AUTOLOAD" in str(info.value)


def test_autoload_stays_on_in_a_real_process(tmp_path: Path) -> None:
    done = python(
        """
        from sof_core.plugins.loader import PluginManager
        from sof_core.config import load_config
        manager = PluginManager(load_config()).load()
        print(sorted(manager.records))
        """,
        {"SOF_CONFIG": str(tmp_path / "c.json"), "SOF_DISABLE_PLUGIN_AUTOLOAD": "0"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "memory" in done.stdout


@pytest.mark.parametrize("value", ["", "  ", ",", " , ", "[]"])
def test_an_empty_plugins_only_is_an_error_naming_the_variable(
    clean_env: Path, value: str
) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(environ={"SOF_PLUGINS_ONLY": value})
    assert info.value.key == "plugins_only"
    assert "SOF_PLUGINS_ONLY" in str(info.value)
    assert SOFConfigManager(clean_env, environ={"SOF_PLUGINS_ONLY": value}).state().error


@pytest.mark.parametrize("value", ['[""]', '[" "]', '["memory", ""]'])
def test_a_blank_name_in_plugins_only_is_an_error_naming_the_variable(
    clean_env: Path, value: str
) -> None:
    # a JSON list of blank names read as "only the plugin called ''": every plugin disabled
    with pytest.raises(ConfigError) as info:
        build_config(environ={"SOF_PLUGINS_ONLY": value})
    assert info.value.key == "plugins_only"
    assert "SOF_PLUGINS_ONLY" in str(info.value) and "blank name" in str(info.value)


@pytest.mark.parametrize("value", ["none", "null", " None "])
def test_plugins_only_none_or_null_means_unset(clean_env: Path, value: str) -> None:
    # it was the list ["none"]: every plugin "not in plugins_only"
    assert build_config(environ={"SOF_PLUGINS_ONLY": value}).plugins_only is None


def test_an_empty_plugins_only_from_a_file_or_code_is_an_error_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        SOFConfig(plugins_only=[])
    assert info.value.key == "plugins_only" and "plugins_autoload = false" in str(info.value)
    config = tmp_path / "c.json"
    config.write_text('{"plugins_only": []}')
    done = sof("plugins", env={"SOF_CONFIG": str(config)})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"plugins_only (from config file {config}): is empty" in done.stderr
    assert SOFConfig(plugins_only=["memory"]).plugins_only == ["memory"]


def test_an_empty_plugins_only_stops_the_command_with_one_line(tmp_path: Path) -> None:
    done = sof("config", "show", env={"SOF_CONFIG": str(tmp_path / "c.json"),
                                      "SOF_PLUGINS_ONLY": ""})
    assert done.returncode == 2
    assert "SOF_PLUGINS_ONLY" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("alias_first", [True, False])
def test_a_settings_own_variable_wins_over_its_alias_in_any_order_with_a_warning(
    clean_env: Path, caplog: pytest.LogCaptureFixture, alias_first: bool
) -> None:
    # the later in the environment won, without a word: a rollback through the short
    # alias could be masked
    pairs = [("SOF_ROLLOUT_PERCENTAGE", "0"), ("SOF_SOF_ROLLOUT_PERCENTAGE", "20")]
    environ = dict(pairs if alias_first else pairs[::-1])
    with caplog.at_level(logging.WARNING, logger="sof.config"):
        assert build_config(environ=environ).sof_rollout_percentage == 20
        build_config(environ=environ)
    (line,) = [r.getMessage() for r in caplog.records if "both set" in r.getMessage()]
    assert "SOF_SOF_ROLLOUT_PERCENTAGE='20' and SOF_ROLLOUT_PERCENTAGE='0'" in line
    assert "SOF_SOF_ROLLOUT_PERCENTAGE wins" in line
    agreeing = {"SOF_ROLLOUT_PERCENTAGE": "5", "SOF_SOF_ROLLOUT_PERCENTAGE": "5"}
    assert build_config(environ=agreeing).sof_rollout_percentage == 5


# --- SOF_CONFIG naming something that is not a regular file -----------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_not_read_forever(tmp_path: Path) -> None:
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    env = {"SOF_CONFIG": str(fifo)}
    done = python(
        """
        from sof_core.config import build_config, load_host_config, disable_sof_framework
        from sof_core.config.manager import get_sof_config_manager
        from sof_core.errors import ConfigError
        for call in (build_config, disable_sof_framework):
            try:
                call()
            except ConfigError as exc:
                print("refused:", exc)
        print("state:", get_sof_config_manager().state().error)
        print("host:", load_host_config().use_sof_framework)
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("refused:") for line in lines) == 2
    assert all("named pipe (FIFO)" in line for line in lines[:3])
    assert "host: False" in lines
    assert fifo.is_fifo() and not list(tmp_path.glob("config.json.corrupt-*"))
    shown = sof("config", "show", env=env)
    assert shown.returncode == 2 and "named pipe (FIFO)" in shown.stderr
    disabled = sof("config", "disable", env=env)
    assert disabled.returncode == 2 and "named pipe (FIFO)" in disabled.stderr
    assert fifo.is_fifo()


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_is_refused(tmp_path: Path) -> None:
    # In a subprocess with a memory cap: reading /dev/zero to the end never ends.
    done = python(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        from pathlib import Path
        from sof_core.config import build_config
        from sof_core.config.manager import SOFConfigManager
        from sof_core.errors import ConfigError
        try:
            build_config(file_path=Path("/dev/zero"))
        except ConfigError as exc:
            print("refused:", exc)
        print("state:", SOFConfigManager("/dev/zero").state().error)
        """,
        {"SOF_CONFIG": str(tmp_path / "c.json")},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all("character device" in line for line in lines), lines


def test_a_directory_is_refused(clean_env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "conf.d"
    folder.mkdir()
    with pytest.raises(ConfigError, match="a directory"):
        build_config(file_path=folder)
    with pytest.raises(ConfigError, match="a directory"):
        SOFConfigManager(folder).disable_sof_framework()
    assert folder.is_dir()


def test_devnull_means_no_file_and_cannot_be_written(clean_env: Path) -> None:
    manager = SOFConfigManager(os.devnull)
    assert manager.config.use_sof_framework is False
    with pytest.raises(ConfigError, match="cannot store"):
        manager.disable_sof_framework()


# --- deep JSON ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "text"),
    [("SOF_SKILL_PROVIDERS", '{"a":' * 5000 + "1" + "}" * 5000),
     ("SOF_PLUGINS_DISABLE", "[" * 5000 + "]" * 5000),
     ("SOF_DEFAULT_PLAN", "[" * 100 + "]" * 100)],
)
def test_deep_json_in_a_variable_is_a_config_error(clean_env: Path, var: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(environ={var: text})
    assert var in str(info.value) and "nested" in str(info.value)
    assert len(str(info.value)) < 400


def test_deep_json_in_the_file_is_corrupt_and_rollback_repairs_it(clean_env: Path) -> None:
    clean_env.write_text('{"plugin_settings": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ConfigError, match="nested too deeply"):
        build_config()
    manager = SOFConfigManager(clean_env)
    assert manager.disable_sof_framework().use_sof_framework is False
    assert json.loads(clean_env.read_text()) == {"use_sof_framework": False}


def test_an_unknown_key_points_at_a_listing_that_works_with_the_broken_file(
    tmp_path: Path,
) -> None:
    # it said "`sof config show` lists the settings", which fails on the same file
    config = tmp_path / "c.json"
    config.write_text('{"zzzqqq": 3}')
    done = sof("config", "show", env={"SOF_CONFIG": str(config)})
    assert done.returncode == 2 and "zzzqqq" in done.stderr
    assert "`SOF_CONFIG=/dev/null sof config show` lists the settings" in done.stderr
    listing = sof("config", "show", env={"SOF_CONFIG": os.devnull})
    assert listing.returncode == 0 and "skill_timeout" in listing.stdout
