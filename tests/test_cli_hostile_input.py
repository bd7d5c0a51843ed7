"""Hostile input to the ``sof`` command: Ctrl-C at start-up, infinite numbers, undecodable
and empty values, the JSON of a goal that cannot be resolved."""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _environment(tmp_path: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    environment.update(SOF_CONFIG=str(tmp_path / "cfg.json"), SOF_MEMORY_PATH=":memory:",
                       XDG_CACHE_HOME=str(tmp_path / "cache"),
                       XDG_DATA_HOME=str(tmp_path / "data"))
    return environment


# --- Ctrl-C while `sof` imports its CLI ----------------------------------------------------

_INTERRUPT_IMPORT = """
import importlib.abc, importlib.metadata, sys
class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise KeyboardInterrupt
        return None
sys.meta_path.insert(0, Interrupt())
(script,) = [e for e in importlib.metadata.entry_points(group="console_scripts")
             if e.name == "sof" and e.dist is not None and e.dist.name == "sof-core"]
sys.exit(script.load()())
"""


@pytest.mark.parametrize("module", ["sof_core.cli.main", "sof_core.cli.leave",
                                    "sof_core.cli", "argparse"])
def test_ctrl_c_while_the_console_script_imports_the_cli_exits_130_quietly(
    tmp_path: Path, module: str
) -> None:
    """Ctrl-C (a KeyboardInterrupt raised by an import the CLI needs) is exit 130, no
    traceback: the console script's module imports nothing before its handler exists."""
    result = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_IMPORT.format(module=module), "--version"],
        capture_output=True, text=True, env=_environment(tmp_path), timeout=120, check=False,
    )
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_the_console_script_is_the_tiny_entry_module() -> None:
    (script,) = [e for e in importlib.metadata.entry_points(group="console_scripts")
                 if e.name == "sof" and e.dist is not None and e.dist.name == "sof-core"]
    assert script.value == "sof_core._console:main"


@pytest.mark.parametrize("module", ["sof_core", "sof_core.cli"])
def test_python_dash_m_is_the_console_script(tmp_path: Path, module: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True,
                            text=True, env=_environment(tmp_path), timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sof")


# --- infinity and NaN in numeric settings ------------------------------------------------

@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in [v for v in os.environ if v.startswith("SOF_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "cfg.json"
    monkeypatch.setenv("SOF_CONFIG", str(path))
    return path


def _float_settings() -> list[str]:
    from sof_core.config import SOFConfig

    return [name for name, field in SOFConfig.model_fields.items()
            if float in (field.annotation, *getattr(field.annotation, "__args__", ()))]


@pytest.mark.parametrize("number", [float("inf"), float("-inf"), float("nan")])
def test_no_float_setting_holds_infinity_or_nan(number: float) -> None:
    from sof_core.config import SOFConfig
    from sof_core.errors import ConfigError

    settings = _float_settings()
    assert {"alert_window_seconds", "plan_cache_ttl", "alert_response_time"} <= set(settings)
    for name in settings:
        with pytest.raises(ConfigError) as caught:
            SOFConfig(**{name: number})
        assert caught.value.key == name and name in str(caught.value)
    with pytest.raises(ConfigError, match=r"rules\.threshold"):
        SOFConfig(planner_options={"rules": {"threshold": number}})


@pytest.mark.parametrize("var, value", [("SOF_ALERT_WINDOW_SECONDS", "1e999"),
                                        ("SOF_PLAN_CACHE_TTL", "inf"),
                                        ("SOF_ALERT_RESPONSE_TIME", "inf"),
                                        ("SOF_PLANNER_OPTIONS", '{"rules": {"x": 1e999}}')])
def test_config_show_refuses_infinite_values_from_the_environment(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    var: str, value: str,
) -> None:
    from sof_core.cli import main

    monkeypatch.setenv(var, value)
    assert main(["config", "show", "--json"]) == 2
    captured = capsys.readouterr()
    assert "Infinity" not in captured.out and var in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_config_show_json_is_strict_json_for_a_sam_key_holding_nan(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SAM's json.dump writes NaN and Infinity: such a SAM key SOF does not use is kept in
    the file (a rollback must not lose it) and shown as a string, so --json stays strict."""
    from sof_core.cli import main

    config_path.write_text('{"legacy_timeout": NaN, "use_sof_framework": true}')
    assert main(["config", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(name))
    assert shown["sam_settings_not_used"] == {"legacy_timeout": "NaN"}
    assert main(["config", "disable"]) == 0
    kept = json.loads(config_path.read_text())
    assert kept["use_sof_framework"] is False and math.isnan(kept["legacy_timeout"])
    assert [p.name for p in config_path.parent.iterdir()
            if p.name.startswith(config_path.name + ".corrupt")] == []


@pytest.mark.parametrize("key, value", [("alert_window_seconds", "1e999"),
                                        ("planner_options", '{"rules": {"x": -1e999}}')])
def test_config_set_refuses_infinity(
    config_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: str
) -> None:
    from sof_core.cli import main

    assert main(["config", "set", key, value]) == 2
    assert "finite" in capsys.readouterr().err
    assert not config_path.exists()


# --- sof config: undecodable values, no sub-command ---------------------------------------

@pytest.mark.parametrize("argv", [["planner", "caf\udce9"], ["plan\udce9", "goal"]])
def test_config_set_refuses_text_that_is_not_utf8(
    config_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """Bytes the shell passed that are not UTF-8 arrive as lone surrogates: refused, as
    ``sof run`` refuses them in its query, and nothing is written."""
    from sof_core.cli import main

    assert main(["config", "set", *argv]) == 2
    err = capsys.readouterr().err
    assert "UTF-8" in err and len(err.strip().splitlines()) == 1
    assert not config_path.exists()


def test_config_alone_prints_its_help_and_exits_0(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sof_core.cli import main

    assert main(["config"]) == 0
    captured = capsys.readouterr()
    assert "show" in captured.out and "rollout" in captured.out and not captured.err


# --- explicit empty values are usage errors, never "not given" ----------------------------

@pytest.mark.parametrize("argv, option", [
    (["run", "q", "--executor", ""], "--executor"),
    (["run", "q", "--output", ""], "--output"),
    (["run", "q", "--plan", ""], "--plan"),
    (["run", "q", "--plan", ","], "--plan"),
    (["run", "q", "--goal", " "], "--goal"),
    (["run", ""], "QUERY"),
    (["run", " ", " "], "QUERY"),
    (["plan", "q", "--planner", ""], "--planner"),
    (["validate", ",,,"], "SKILL"),
    (["graph", ""], "SKILL"),
    (["skills", ""], "NAME"),
    (["hooks", ""], "HOOK"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else None)
def test_an_explicit_empty_value_is_a_usage_error(
    config_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], option: str
) -> None:
    from sof_core.cli import main

    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sof: error: {option} "), captured.err
    assert "give" in lines[0] and not captured.out


# --- --json when --goal cannot be resolved ---------------------------------------------------

def test_an_unresolvable_goal_with_json_prints_the_runs_json(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from sof_core.cli import main

    assert main(["run", "q", "--goal", "nokey", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "sof.run/1" and data["status"] == "invalid"
    assert data["query"] == "q" and data["plan"] == []
    assert any("nokey" in error for error in data["errors"])
