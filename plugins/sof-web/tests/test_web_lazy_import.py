"""Loading the installed plugins must not import httpx: every `sof` command and every engine
loads sof-web, and only a fetch needs the HTTP client (over 100 ms of imports)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from sof_core.config import load_config
from sof_core.plugins import PluginManager
manager = PluginManager(load_config()).load()
assert manager.records["web"].status == "loaded", manager.records["web"]
before = "httpx" in sys.modules
import sof_web
sof_web.Fetcher  # the lazy public name still resolves
print(before, "httpx" in sys.modules)
"""


def test_loading_the_plugin_leaves_httpx_unimported_until_a_fetch_needs_it(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "SOF_CONFIG": str(tmp_path / "c.json"),
                               "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
