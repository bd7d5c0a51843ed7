"""``sof config``: show with sources, set, enable/disable, rollout, path; errors exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sof_core.cli import main
from sof_core.cli.config import parse_value
from sof_core.config.manager import SOFConfigManager


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for var in [v for v in os.environ if v.startswith("SOF_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "config.json"
    monkeypatch.setenv("SOF_CONFIG", str(path))
    yield path


def sof(*argv: str) -> subprocess.CompletedProcess[str]:
    """The real command line, in a fresh process."""
    return subprocess.run([sys.executable, "-m", "sof_core.cli", *argv], capture_output=True,
                          text=True, timeout=60, check=False, env=dict(os.environ))


def test_show_lists_every_key_with_value_and_source(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path.write_text('{"planner": "goal"}')
    monkeypatch.setenv("SOF_ROLLOUT_PERCENTAGE", "15")
    assert main(["config", "show", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {row["key"]: row for row in data["settings"]}
    assert data["path"] == str(config_path)
    assert rows["planner"] == {"key": "planner", "value": "goal",
                               "source": f"config file {config_path}"}
    assert rows["sof_rollout_percentage"]["value"] == 15
    assert rows["sof_rollout_percentage"]["source"] == "environment SOF_ROLLOUT_PERCENTAGE"
    assert rows["use_sof_framework"] == {"key": "use_sof_framework", "value": False,
                                         "source": "default"}
    assert main(["config", "show"]) == 0
    table = capsys.readouterr().out
    assert "use_sof_framework" in table and "default" in table and "SOURCE" in table


def test_set_parses_json_values_and_falls_back_to_strings(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "set", "max_workers", "8"]) == 0
    assert main(["config", "set", "planner", "goal"]) == 0
    assert main(["config", "set", "plugins_disable", '["web", "llm"]']) == 0
    assert main(["config", "set", "skill_timeout", "null"]) == 0
    assert json.loads(config_path.read_text()) == {
        "max_workers": 8, "planner": "goal", "plugins_disable": ["web", "llm"],
        "skill_timeout": None,
    }
    assert "planner = \"goal\"" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "key"),
    [(["set", "no_such_key", "1"], "no_such_key"),
     (["set", "max_workers", "lots"], "max_workers"),
     (["rollout", "150"], "sof_rollout_percentage"),
     (["rollout", "half"], "sof_rollout_percentage")],
)
def test_bad_input_is_one_line_naming_the_key_and_exit_2(
    config_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], key: str
) -> None:
    assert main(["config", *argv]) == 2
    err = capsys.readouterr().err
    assert key in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not config_path.exists()


def test_enable_disable_and_rollout(config_path: Path) -> None:
    assert main(["config", "enable", "--percentage", "10"]) == 0
    assert main(["config", "rollout", "25%"]) == 0
    config = SOFConfigManager(config_path).config
    assert (config.use_sof_framework, config.sof_rollout_percentage) == (True, 25)
    assert main(["config", "disable"]) == 0
    assert SOFConfigManager(config_path).config.use_sof_framework is False


def test_a_change_masked_by_the_environment_warns_and_exits_1(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOF_USE_SOF_FRAMEWORK", "1")
    assert main(["config", "disable"]) == 1
    assert "SOF_USE_SOF_FRAMEWORK" in capsys.readouterr().err
    assert json.loads(config_path.read_text())["use_sof_framework"] is False


def test_path_prints_the_config_file(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(config_path)


def test_corrupt_file_is_reported_by_show_with_exit_2(config_path: Path) -> None:
    config_path.write_text('{"use_sof_framework": true,,}')
    done = sof("config", "show")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(config_path) in lines[0] and "corrupt" in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_disable_repairs_a_corrupt_file_from_the_command_line(config_path: Path) -> None:
    config_path.write_text("{broken")
    done = sof("config", "disable")
    assert done.returncode == 0, done.stderr
    assert "kept it as" in done.stderr
    assert json.loads(config_path.read_text()) == {"use_sof_framework": False}
    assert sof("config", "show").returncode == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [("25", 25), ("12.5", 12.5), ("true", True), ("null", None), ('["a"]', ["a"]),
     ("goal", "goal"), ("", "")],
)
def test_values_are_json_when_they_parse(text: str, value: object) -> None:
    assert parse_value(text) == value
