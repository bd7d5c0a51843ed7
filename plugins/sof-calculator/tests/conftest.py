"""Fixtures for the calculator's tests: a clean environment, an engine with the real tool."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer settings leak in: no config file, no plugin filters, no tool policy."""
    for var in ("SOF_PLUGINS_ONLY", "SOF_PLUGINS_DISABLE", "SOF_DISABLE_PLUGIN_AUTOLOAD",
                "SOF_STRICT_PLUGINS", "SOF_TOOL_POLICY", "SOF_ISOLATION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "no-config.json"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
