"""Tables: rich, coloured and fitted to the width on a terminal; the plain format, byte for
byte and without importing rich, when piped."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sof_core.cli.output import render_table

pytest.importorskip("rich")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    env.update(SOF_CONFIG=str(tmp_path / "none.json"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               TERM="xterm-256color")
    env.update(extra)
    env.pop("NO_COLOR", None)
    return env


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run ``sof`` with stdout on a pseudo-terminal; return what it wrote there."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "sof_core.cli", *args], stdout=follower,
                               stderr=subprocess.PIPE, env=env)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        out += chunk
    process.wait(timeout=60)
    os.close(leader)
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    return out.decode().replace("\r\n", "\n")


def test_on_a_terminal_tables_are_rich_coloured_and_fit_the_width(tmp_path: Path) -> None:
    text = _on_a_terminal(["plugins"], _env(tmp_path, COLUMNS="72"))
    assert "\x1b[" in text  # colour and bold
    assert "\x1b[32mloaded" in text  # statuses in colour
    plain = ANSI.sub("", text)
    assert plain.splitlines()[0].split()[:3] == ["PLUGIN", "VERSION", "DISTRIBUTION"]
    assert "─" in plain.splitlines()[1]
    assert all(len(line) <= 72 for line in plain.splitlines()), plain
    wide = ANSI.sub("", _on_a_terminal(["plugins"], _env(tmp_path, COLUMNS="200")))
    assert len(wide.splitlines()) < len(plain.splitlines())  # narrower: wrapped, not cut
    for name in ("memory", "response", "conflict"):
        assert name in plain


def test_dumb_terminals_and_pipes_get_the_plain_format(tmp_path: Path) -> None:
    dumb = _on_a_terminal(["skills"], _env(tmp_path, TERM="dumb"))
    assert "\x1b[" not in dumb and "─" not in dumb
    piped = subprocess.run([sys.executable, "-m", "sof_core.cli", "skills"], capture_output=True,
                           text=True, env=_env(tmp_path), timeout=60, check=False)
    assert "\x1b[" not in piped.stdout
    rows = json.loads(subprocess.run(
        [sys.executable, "-m", "sof_core.cli", "skills", "--json"], capture_output=True,
        text=True, env=_env(tmp_path), timeout=60, check=False).stdout)
    expected = render_table(
        ["SKILL", "VERSION", "INPUTS (? = optional)", "OUTPUTS", "PLUGIN"],
        [(s["name"], s["version"],
          ", ".join(s["required_inputs"] + [f"{k}?" for k in s["optional_inputs"]]) or "-",
          ", ".join(s["output_keys"]) or "-", s["plugin"]) for s in rows],
        width=None,
    )
    assert piped.stdout.startswith(expected + "\n")


def test_piped_output_never_imports_rich(tmp_path: Path) -> None:
    code = ("import sys\nfrom sof_core.cli import main\nmain(['plugins'])\n"
            "print('rich' in sys.modules, file=sys.stderr)\n")
    # Only plugins that do not import rich themselves (httpx, which sof-web uses, does).
    env = _env(tmp_path, SOF_PLUGINS_ONLY="memory,response,conflict,dask")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "False"
