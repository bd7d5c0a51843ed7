"""The skill-author pytest plugin: free to import, and the ``sof_cli`` fixture runs the real
``sof`` with a temporary config and memory, in a subprocess or in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sof_core.testing.cli import SofCLI

HEAVY = ["pydantic", "networkx", "sof_core.uif", "sof_core.config", "sof_core.plugins",
         "sof_core.plugins.loader", "sof_core.skills", "sof_core.errors", "sof_core.graph",
         "sof_core.execution", "sof_core.cli", "sof_core.testing.helpers",
         "sof_core.testing.cli", "sof_core.cli.contract"]


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    env.update(SOF_CONFIG=str(tmp_path / "none.json"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    return env


def test_importing_the_pytest_plugin_imports_nothing_heavy(tmp_path: Path) -> None:
    code = (
        "import sys, json\n"
        "import pytest\n"
        "import sof_core.testing.pytest_plugin\n"
        "import sof_core.testing\n"
        f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_clean_env(tmp_path), timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == dict.fromkeys(HEAVY, False)


def test_a_pytest_session_that_uses_no_sof_fixture_pays_nothing(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        "import sys\n\n"
        "def test_nothing_of_sof_was_imported():\n"
        f"    loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "    assert 'sof_core.testing.pytest_plugin' in sys.modules  # the plugin is active\n"
        "    assert loaded == []\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
         str(tmp_path / "test_plain.py")],
        capture_output=True, text=True, env=_clean_env(tmp_path), cwd=tmp_path, timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_pytest_imports_the_core_as_python_does_in_a_skill_authors_session(
        tmp_path: Path) -> None:
    """pytest rewrites (parses with ``ast``) every module of a distribution with a pytest
    plugin; the core imports modules lazily in worker threads, and on Python 3.11 ``ast`` in
    two threads at once fails (CPython gh-106905): skills failed with ``SystemError: AST
    constructor recursion depth mismatch`` or ``cannot import name`` in test suites. The
    core is now imported by Python's own loader there; this kit is still rewritten."""
    # pytest marks the core for rewriting from the installed files of a regular install (an
    # editable one lists none): marked here the same way, before the sof plugin loads.
    (tmp_path / "mark_like_a_regular_install.py").write_text(
        "def pytest_addoption(parser, pluginmanager):\n"
        "    pluginmanager.rewrite_hook.mark_rewrite('sof_core')\n"
    )
    (tmp_path / "test_loaders.py").write_text(
        "import importlib\n\n"
        "def test_loaders():\n"
        "    aio = importlib.import_module('sof_core.execution.aio')\n"
        "    assert type(aio.__loader__).__name__ == 'SourceFileLoader', aio.__loader__\n"
        "    kit = importlib.import_module('sof_core.testing.helpers')\n"
        "    assert type(kit.__loader__).__name__ == 'AssertionRewritingHook'\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "mark_like_a_regular_install", str(tmp_path / "test_loaders.py")],
        capture_output=True, text=True, env={**_clean_env(tmp_path), "PYTHONPATH": str(tmp_path)},
        cwd=tmp_path, timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_sof_cli_runs_sof_with_a_private_config_and_memory(tmp_path: Path) -> None:
    cli = SofCLI(tmp_path / "cli", env={"SOF_PLUGINS_ONLY": "memory,response"})
    for inprocess in (False, True):
        version = cli("--version", inprocess=inprocess)
        assert version.ok and version.stdout.startswith("sof-core ")
        shown = cli("config", "show", "--json", inprocess=inprocess).json()
        assert shown["path"] == str(cli.config_path)
        plugins = {p["name"]: p["status"] for p in cli("plugins", "--json", inprocess=inprocess).json()}
        assert plugins["memory"] == "loaded"
        bad = cli("run", "q", "--concurrency", "0", inprocess=inprocess)
        assert bad.returncode == 2 and bad.stderr.startswith("sof: error: ")
        usage = cli("nosuchcommand", inprocess=inprocess)
        assert usage.returncode == 2 and "invalid choice" in usage.stderr
    assert str(cli.memory_path) == cli.env["SOF_MEMORY_PATH"]
    assert cli.env["XDG_DATA_HOME"].startswith(str(tmp_path))
    imported = cli("memory", "import", "--sample")
    assert imported.ok, imported.stderr
    assert cli.memory_path.exists()  # the temporary store, not the user's
    answer = cli("run", "When was the SAM memory system redesigned?", "--output", "final_response")
    assert answer.ok and "2024" in answer.stdout
    piped = cli("run", "-", "--output", "final_response", input="What does SAM memory store?\n")
    assert piped.ok, piped.stderr


def test_sof_cli_configure_writes_the_temporary_config(tmp_path: Path) -> None:
    cli = SofCLI(tmp_path)
    cli.configure(max_plan_length=7)
    cli.configure(executor="sequential")
    assert json.loads(cli.config_path.read_text()) == {"max_plan_length": 7,
                                                       "executor": "sequential"}
    source = f"config file {cli.config_path}"
    assert _setting(cli, "max_plan_length") == {"value": 7, "source": source}
    assert _setting(cli, "executor") == {"value": "sequential", "source": source}


def _setting(cli: SofCLI, key: str) -> dict[str, object]:
    shown = cli("config", "show", "--json", inprocess=True).json()
    row = next(s for s in shown["settings"] if s["key"] == key)
    return {"value": row["value"], "source": row["source"]}


def test_the_callers_sof_variables_never_leak_in(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOF_EXECUTOR", "nonsense")
    cli = SofCLI(tmp_path)
    assert "SOF_EXECUTOR" not in cli.env
    assert _setting(cli, "executor")["source"] == "default"
    assert os.environ["SOF_EXECUTOR"] == "nonsense"  # in-process runs restore the environment


def test_the_fixture_in_a_plugin_authors_test_suite(tmp_path: Path) -> None:
    (tmp_path / "test_author.py").write_text(
        "def test_sof_cli(sof_cli):\n"
        "    result = sof_cli('plugins', '--json')\n"
        "    assert result.returncode == 0\n"
        "    assert {p['name'] for p in result.json()} >= {'memory'}\n"
        "    assert sof_cli('hooks', 'configure', inprocess=True).stdout.startswith('### sof_configure')\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_author.py")],
        capture_output=True, text=True, env=_clean_env(tmp_path), cwd=tmp_path, timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
