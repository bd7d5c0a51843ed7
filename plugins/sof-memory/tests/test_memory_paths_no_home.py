"""No home directory (``HOME`` unset, no passwd entry: ``docker run --user 54321``) and no
``XDG_DATA_HOME``: the default database has no place, so it is kept in RAM with one warning
per process naming what to set; a run still works, and nothing is a RuntimeError.

The environment is made by unsetting ``HOME`` and making ``pwd.getpwuid`` fail, as it does
for a uid with no entry (no root needed).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import sof_memory.paths as memory_paths
import sof_memory.plugin as memory_plugin
from sof_memory import SQLiteMemoryBackend
from sof_memory.paths import MEMORY_IN_RAM, NoDataDirError, resolve_db_path, user_data_dir

from sof_core.errors import ConfigError
from sof_core.testing import make_engine

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX home lookup")

NO_PASSWD = textwrap.dedent(
    """
    import pwd

    def _no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    pwd.getpwuid = _no_entry
    """
)


@pytest.fixture
def no_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import pwd

    def no_entry(uid: int) -> pwd.struct_passwd:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.setattr(memory_paths, "_warned_in_ram", False)
    yield


def test_the_data_dir_is_a_config_error_naming_what_to_set(no_home: None) -> None:
    with pytest.raises(NoDataDirError) as caught:
        user_data_dir()
    message = str(caught.value)
    assert isinstance(caught.value, ConfigError) and "\n" not in message
    assert all(name in message for name in ("SOF_MEMORY_PATH", "XDG_DATA_HOME", "HOME"))


def test_the_default_database_is_kept_in_ram_with_one_warning(
    no_home: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sof.memory"):
        assert resolve_db_path({}, {}) == MEMORY_IN_RAM
        assert resolve_db_path({}, {}) == MEMORY_IN_RAM
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "lost at exit" in warnings[0]
    assert all(name in warnings[0] for name in ("SOF_MEMORY_PATH", "XDG_DATA_HOME", "HOME"))


def test_xdg_data_home_needs_no_home(no_home: None, monkeypatch: pytest.MonkeyPatch,
                                     tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert resolve_db_path({}, {}) == str(tmp_path / "data" / "sof" / "memory.db")


def test_a_tilde_path_is_a_config_error_naming_it(no_home: None) -> None:
    with pytest.raises(ConfigError, match=r"~/m\.db starts with ~"):
        resolve_db_path({}, {"SOF_MEMORY_PATH": "~/m.db"})
    with pytest.raises(ConfigError, match=r"plugin_settings\.memory\.path"):
        resolve_db_path({"path": "~/m.db"}, {})


def test_the_store_works_in_ram(no_home: None) -> None:
    store = SQLiteMemoryBackend()
    store.add("the cafe opens at nine")
    assert store.path == MEMORY_IN_RAM
    assert [hit.text for hit in store.search("cafe")] == ["the cafe opens at nine"]
    store.close()


def test_a_run_succeeds(no_home: None) -> None:
    engine = make_engine(plugins=[("memory", memory_plugin)])
    report = engine.run_query("what is in memory", ["MemoryRetrievalSkill"])
    assert report.status == "success", report.errors


def test_sof_run_with_only_xdg_config_home_set(sof_env: dict[str, str], tmp_path: Path) -> None:
    """XDG_CONFIG_HOME set, XDG_DATA_HOME and HOME unset: the run failed inside
    MemoryRetrievalSkill with RuntimeError('Could not determine home directory.')."""
    env = {k: v for k, v in sof_env.items()
           if k not in ("HOME", "SOF_MEMORY_PATH", "SOF_CONFIG", "XDG_DATA_HOME")}
    env["SOF_PLUGINS_ONLY"] = "memory,response"
    source = str(Path(memory_paths.__file__).resolve().parents[1])  # this checkout's plugin
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    code = NO_PASSWD + "import sys\nfrom sof_core.cli import main\nsys.exit(main(['run', 'hello']))"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "RuntimeError" not in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("no place for the memory database") == 1, done.stderr


@pytest.mark.parametrize("argv", [["memory", "add", "the cafe opens at nine"],
                                  ["memory", "import", "--sample"]])
def test_sof_memory_add_and_import_refuse_to_store_what_would_be_lost(
    sof_env: dict[str, str], tmp_path: Path, argv: list[str]
) -> None:
    # They stored into the RAM database and said "stored" (exit 0): gone at exit.
    env = {k: v for k, v in sof_env.items()
           if k not in ("HOME", "SOF_MEMORY_PATH", "XDG_DATA_HOME")}
    env["SOF_PLUGINS_ONLY"] = "memory"
    source = str(Path(memory_paths.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    code = NO_PASSWD + f"import sys\nfrom sof_core.cli import main\nsys.exit(main({argv!r}))"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, (done.stdout, done.stderr)
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"sof memory {argv[1]}: error: no place for the memory database")
    assert "SOF_MEMORY_PATH" in last and "lost at exit" in last
    assert "Traceback" not in done.stderr
