"""Every test runs in its own working directory with its own config file and data folder.

SAM's config manager writes ``config/sof_config.json`` relative to the working directory when
none exists, as SAM does; a test must never leave that file in the checkout. No ``SOF_*``
variable of the caller's shell leaks in, and both config managers (SAM's and SOF's) start
and end each test forgotten, so one test's file never answers another's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sof_sam.config import reset_sof_config_managers as reset_sam_managers

from sof_core.config import reset_sof_config_managers

#: Variables that would change which plugins load or how runs go, whatever a test sets up.
LEAKY_VARIABLES = ("SOF_PLUGINS_ONLY", "SOF_PLUGINS_DISABLE", "SOF_STRICT_PLUGINS",
                   "SOF_EXECUTOR", "SOF_ROLLOUT_PERCENTAGE", "SOF_STRICT_DECLARATIONS",
                   "SOF_USE_SOF_FRAMEWORK")


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test's config file (``SOF_CONFIG``, not created), in its own working directory."""
    monkeypatch.chdir(tmp_path)
    for var in LEAKY_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "sof_config.json"
    monkeypatch.setenv("SOF_CONFIG", str(path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    reset_sam_managers()
    reset_sof_config_managers()
    yield path
    reset_sam_managers()
    reset_sof_config_managers()
