"""Tool security through the real path: a tool from an installed distribution's entry point,
the policy from ``SOF_TOOL_POLICY``, the ``sof`` command in a subprocess (issue 11)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="isolation needs POSIX")

TOOL_PLUGIN = '''
import socket
from sof_core import BaseToolModule, hookimpl


class OfflineTool(BaseToolModule):
    skill_name = "OfflineTool"
    skill_description = "connects to the port named in the query, without permission"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif):
        port = int(uif.input_query.split()[-1])
        with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
            uif.final_response = conn.recv(64).decode()
        return uif


class OnlineTool(OfflineTool):
    skill_name = "OnlineTool"
    skill_description = "connects to the port named in the query"
    permissions = {"network"}


@hookimpl
def sof_register_tools():
    return [OfflineTool, OnlineTool]
'''


def run_sof(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sof_core.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


@pytest.fixture
def server() -> Iterator[tuple[int, list[int]]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    accepted = [0]

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            accepted[0] += 1
            with conn:
                conn.sendall(b"hello from the server")

    threading.Thread(target=serve, daemon=True).start()
    yield sock.getsockname()[1], accepted
    sock.close()


def test_installed_tools_are_sandboxed_and_the_policy_denies_by_entry(
    dists: Any, tmp_path: Path, server: tuple[int, list[int]]
) -> None:
    dists.add("sof-test-tools", TOOL_PLUGIN, entry_name="testtools")
    env = dists.env()
    env["SOF_CONFIG"] = str(tmp_path / "none.json")
    env["SOF_PLUGINS_ONLY"] = "testtools"
    port, accepted = server

    online = run_sof("run", f"greet {port}", "--plan", "OnlineTool", env=env)
    assert online.returncode == 0, online.stderr
    assert "hello from the server" in online.stdout
    assert accepted[0] == 1

    offline = run_sof("run", f"greet {port}", "--plan", "OfflineTool", env=env)
    assert offline.returncode == 1
    assert "no 'network' permission" in offline.stdout + offline.stderr
    assert "Traceback" not in offline.stderr
    assert accepted[0] == 1  # nothing got through

    env["SOF_TOOL_POLICY"] = '{"deny_permissions": ["network"]}'
    denied = run_sof("validate", "OnlineTool", env=env)
    assert denied.returncode == 1
    assert "tool_denied" in denied.stdout + denied.stderr
    assert "tool_policy.deny_permissions entry 'network'" in denied.stdout + denied.stderr
    refused = run_sof("run", f"greet {port}", "--plan", "OnlineTool", env=env)
    assert refused.returncode == 1
    assert "tool_policy.deny_permissions entry 'network'" in refused.stdout + refused.stderr
    assert accepted[0] == 1
