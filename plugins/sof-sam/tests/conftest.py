"""Every test runs in its own working directory with its own config file.

SAM's config manager writes ``config/sof_config.json`` relative to the working directory when
none exists, as SAM does; a test must never leave that file in the checkout.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "sof_config.json"))
