"""No home directory (``HOME`` unset, no passwd entry: ``docker run --user 54321``,
OpenShift's random uids): SOF starts and runs with defaults.

``Path.home()`` raises ``RuntimeError`` there. The config file that cannot be located means
defaults (as a missing file does), a write says in one line what to set, and the caches
that cannot be located are off. The environment is made here by unsetting ``HOME`` and
making ``pwd.getpwuid`` fail, as it does for a uid with no entry (no root needed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sof_core import _paths
from sof_core.config import build_config
from sof_core.config.manager import SOFConfigManager, get_sof_config_manager
from sof_core.errors import ConfigError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX home lookup")

#: Run first in a child process: the uid has no passwd entry.
NO_PASSWD = textwrap.dedent(
    """
    import pwd

    def _no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    pwd.getpwuid = _no_entry
    """
)


@pytest.fixture
def no_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    import pwd

    def no_entry(uid: int) -> pwd.struct_passwd:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    for var in [v for v in os.environ if v.startswith(("SOF_", "XDG_"))]:
        monkeypatch.delenv(var)
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.chdir(tmp_path)  # no SAM config/sof_config.json here
    yield


def child_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SOF_", "XDG_")) and k != "HOME"}
    # The core alone: sof-memory tests its own database path (tests/test_memory_paths_no_home).
    env["SOF_PLUGINS_ONLY"] = "response,calculator,conflict"
    return env


def run_without_home(code: str, tmp_path: Path, env: dict[str, str] | None = None
                     ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", NO_PASSWD + textwrap.dedent(code)],
                          env=env or child_env(tmp_path), cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)


def sof_without_home(tmp_path: Path, *argv: str, env: dict[str, str] | None = None
                     ) -> subprocess.CompletedProcess[str]:
    return run_without_home(
        f"""
        import sys
        from sof_core.cli import main
        sys.exit(main({list(argv)!r}))
        """, tmp_path, env)


def test_the_helpers_locate_nothing_and_raise_nothing(no_home: None) -> None:
    assert _paths.home_dir() is None
    assert _paths.config_file() == Path(os.devnull)
    assert _paths.cache_dir().parent == Path(os.devnull)  # nothing can be created there
    problem = _paths.config_file_problem()
    assert problem is not None and "\n" not in problem
    assert all(name in problem for name in ("SOF_CONFIG", "HOME", "XDG_CONFIG_HOME"))


def test_xdg_folders_need_no_home(no_home: None, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert _paths.config_file() == tmp_path / "cfg" / "sof" / "config.json"
    assert _paths.cache_dir() == tmp_path / "cache" / "sof"
    assert _paths.config_file_problem() is None


def test_sof_config_naming_the_null_device_is_no_problem(
    no_home: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOF_CONFIG", os.devnull)
    assert _paths.config_file_problem() is None


def test_a_tilde_in_sof_config_is_named_as_the_problem(
    no_home: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOF_CONFIG", "~/sof.json")
    assert _paths.config_file() == Path(os.devnull)
    problem = _paths.config_file_problem()
    assert problem is not None and "SOF_CONFIG=~/sof.json" in problem


def test_the_configuration_is_the_defaults(no_home: None) -> None:
    assert build_config() == build_config(file_path=Path(os.devnull))
    state = SOFConfigManager().state()
    assert state.error is None and state.config is not None
    assert state.config.use_sof_framework is build_config().use_sof_framework


def test_a_located_file_has_no_problem(tmp_path: Path) -> None:
    assert SOFConfigManager(tmp_path / "c.json").unlocated is None


@pytest.mark.parametrize("make", [SOFConfigManager, get_sof_config_manager])
def test_a_write_says_in_one_line_what_to_set(no_home: None, make: type) -> None:
    manager = make()
    with pytest.raises(ConfigError) as caught:
        manager.disable_sof_framework()
    message = str(caught.value)
    assert "\n" not in message and "cannot store a setting" in message
    assert manager.unlocated is not None and manager.unlocated in message
    assert manager.path == Path(os.devnull)
    assert all(name in message for name in ("SOF_CONFIG", "HOME", "XDG_CONFIG_HOME"))


def test_a_tilde_path_given_in_code_is_a_config_error(no_home: None) -> None:
    with pytest.raises(ConfigError, match="starts with ~"):
        SOFConfigManager("~/sof.json")


def test_every_command_runs_with_defaults(tmp_path: Path) -> None:
    for argv in (["--version"], ["config", "path"], ["config", "show"], ["run", "hello"]):
        done = sof_without_home(tmp_path, *argv)
        assert "Traceback" not in done.stderr, (argv, done.stderr)
        assert done.returncode == 0, (argv, done.stderr)
        assert "warning" not in done.stderr.lower(), (argv, done.stderr)


def test_sof_config_set_exits_2_naming_what_to_set(tmp_path: Path) -> None:
    done = sof_without_home(tmp_path, "config", "set", "skill_timeout", "5")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "SOF_CONFIG" in lines[0] and "HOME" in lines[0], done.stderr


def test_a_persistent_plan_cache_that_cannot_be_located_warns_once(
    tmp_path: Path,
) -> None:
    env = {**child_env(tmp_path), "SOF_PLAN_CACHE_PERSIST": "true"}
    done = run_without_home(
        """
        from sof_core import CoordinatorEngine
        engine = CoordinatorEngine()
        for _ in range(3):
            print(engine.run_query("hello").to_dict()["status"])
        """, tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "plan cache store" in lines[0], done.stderr


def test_an_embedding_host_gets_a_report(tmp_path: Path) -> None:
    done = run_without_home(
        """
        from sof_core import CoordinatorEngine
        print(CoordinatorEngine().run_query("hello").to_dict()["status"])
        """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in {"success", "partial", "failure"}, done.stdout
    assert "Traceback" not in done.stderr
