"""SOF_LOG_LEVEL accepts every level the config's log_level does, CRITICAL included; the
config file's log_level applies to the ``sof`` command when SOF_LOG_LEVEL is not set."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sof_core.cli.main import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root, sof = logging.getLogger(), logging.getLogger("sof")
    saved = (root.level, list(root.handlers), sof.level)
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    sof.setLevel(saved[2])


@pytest.mark.parametrize("value", ["critical", "CRITICAL", "error", "info", "debug"])
def test_sof_log_level_sets_the_sof_loggers_level(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOF_LOG_LEVEL", value)
    configure_logging()
    assert logging.getLogger("sof").level == logging.getLevelName(value.upper())


def test_an_unknown_level_falls_back_to_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOF_LOG_LEVEL", "LOUD")
    configure_logging()
    assert logging.getLogger("sof").level == logging.WARNING


def test_the_handler_writes_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler outlives ``main()``; it kept the ``sys.stderr`` of that call, so after a
    host or test had put its own back (and closed the stand-in) every later warning was
    "--- Logging error --- ValueError: I/O operation on closed file" on the real stderr."""
    import io

    monkeypatch.delenv("SOF_LOG_LEVEL", raising=False)
    during = io.StringIO()
    monkeypatch.setattr(sys, "stderr", during)
    configure_logging()
    logging.getLogger("sof.test").warning("while the command ran")
    during.close()
    after = io.StringIO()
    monkeypatch.setattr(sys, "stderr", after)
    logging.getLogger("sof.test").warning("after it returned")
    assert after.getvalue().endswith("after it returned\n")  # no "Logging error" report


def _sof(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    environment.update(HOME=str(cwd), XDG_CONFIG_HOME=str(cwd / "xdg"), **env)
    return subprocess.run([sys.executable, "-m", "sof_core.cli", "skills"], cwd=cwd,
                          env=environment, capture_output=True, text=True, timeout=60,
                          check=False)


def test_the_config_files_log_level_applies_to_the_sof_command(tmp_path: Path) -> None:
    # Before: only SOF_LOG_LEVEL did; log_level in SAM's file (or any config file) did nothing.
    (tmp_path / "config").mkdir()
    sam_file = tmp_path / "config" / "sof_config.json"
    sam_file.write_text('{"log_level": "CRITICAL", "legacy_timeout": 30}')
    quiet = _sof(tmp_path, SOF_NOT_A_THING="1")
    assert quiet.returncode == 0 and quiet.stderr == ""
    sam_file.write_text('{"log_level": "info", "legacy_timeout": 30}')
    told = _sof(tmp_path)
    assert "sof: INFO: SAM settings SOF does not use" in told.stderr
    # the environment still wins over the file
    sam_file.write_text('{"log_level": "CRITICAL"}')
    loud = _sof(tmp_path, SOF_LOG_LEVEL="WARNING", SOF_NOT_A_THING="1")
    assert "ignoring environment variable SOF_NOT_A_THING" in loud.stderr
    toml = tmp_path / "c.toml"
    toml.write_text('log_level = "CRITICAL"\n')
    sam_file.unlink()
    assert _sof(tmp_path, SOF_CONFIG=str(toml), SOF_NOT_A_THING="1").stderr == ""


def test_main_called_in_process_leaves_the_hosts_logging_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A host or a test suite that calls ``sof_core.cli.main.main([...])`` keeps its own
    logging afterwards: a later ``caplog`` at INFO still sees SOF's INFO records, and the
    command's stderr handler is gone (a config file's ``log_level = ERROR`` hid warnings in
    every later test)."""
    from sof_core.cli.main import main

    config = tmp_path / "sof.json"
    config.write_text('{"log_level": "ERROR"}')
    monkeypatch.setenv("SOF_CONFIG", str(config))
    monkeypatch.delenv("SOF_LOG_LEVEL", raising=False)
    root, sof = logging.getLogger(), logging.getLogger("sof")
    before = (root.level, list(root.handlers), sof.level)

    assert main(["config", "path"]) == 0

    assert (root.level, list(root.handlers), sof.level) == before
    caplog.set_level(logging.INFO)
    logging.getLogger("sof.config").info("still heard")
    assert "still heard" in caplog.text
