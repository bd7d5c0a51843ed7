"""An empty config file (nothing, or only whitespace) means "all defaults", as a missing one
does: ``touch config.json`` is not a broken file. It is also written like a missing one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sof_core.config import SOFConfig, build_config
from sof_core.config.manager import SOFConfigManager


@pytest.mark.parametrize("text", ["", "   \n\t\n"])
def test_an_empty_config_file_means_all_defaults(tmp_path: Path, text: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("SOF_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "config.json"
    path.write_text(text, encoding="utf-8")
    assert build_config(file_path=path) == SOFConfig()
    manager = SOFConfigManager(path)
    assert manager.config == SOFConfig()
    manager.disable_sof_framework()  # a write over it keeps nothing of the empty text
    assert json.loads(path.read_text(encoding="utf-8"))["use_sof_framework"] is False
