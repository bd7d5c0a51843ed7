"""Hostile input to the ``sof`` command: Ctrl-C at start-up, infinite numbers, undecodable
and empty values, the JSON of a goal that cannot be resolved."""

from __future__ import annotations

import importlib.metadata
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
