"""SOF_LOG_LEVEL accepts every level the config's log_level does, CRITICAL included."""

from __future__ import annotations

import logging

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
