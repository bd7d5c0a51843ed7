"""Fixtures for sof-vetting: a real page server, real plugin distributions, the real CLI.

``page_server`` serves a dict of pages over HTTP on an ephemeral 127.0.0.1 port (stdlib
``http.server`` in a thread), so the web tool fetches them as it would any site.
``dists`` writes installed-distribution layouts (``.dist-info`` with ``entry_points.txt``)
into a folder put on ``sys.path`` and on a subprocess's ``PYTHONPATH``, so entry-point
discovery runs exactly as for a pip-installed plugin.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

_counter = itertools.count()


@dataclass
class PageServer:
    host: str
    port: int
    pages: dict[str, tuple[str, str]] = field(default_factory=dict)  # path -> (type, body)
    #: Paths requested, in order (a refused fetch must leave no trace here).
    hits: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def add(self, path: str, body: str, content_type: str = "text/html; charset=utf-8") -> str:
        self.pages[path] = (content_type, body)
        return self.url(path)


class _Handler(BaseHTTPRequestHandler):
    state: PageServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.state.hits.append(self.path)
        page = self.state.pages.get(self.path)
        if page is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        kind, body = page
        data = body.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def page_server() -> Iterator[PageServer]:
    state = PageServer("127.0.0.1", 0)
    handler = type("BoundHandler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class DistFactory:
    """Writes real installed-distribution layouts (``.dist-info`` + module) into one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def add(self, dist: str, source: str, *, entry_name: str | None = None,
            version: str = "1.0") -> str:
        module = f"{dist.replace('-', '_')}_{next(_counter)}"
        (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
            "Requires-Dist: sof-core>=0.1\n"
        )
        (info / "entry_points.txt").write_text(
            f"[sof.plugins]\n{entry_name or dist} = {module}\n"
        )
        self.modules.append(module)
        return module

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(base if base is not None else os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), env.get("PYTHONPATH", "")])
        return env


@pytest.fixture
def dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DistFactory]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    factory = DistFactory(root)
    yield factory
    for module in factory.modules:
        sys.modules.pop(module, None)


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No SOF_* variable or user config leaks into a test (or the CLI it starts)."""
    for key in list(os.environ):
        if key.startswith("SOF_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "no-config.json"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def run_sof(*args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real ``sof`` command in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "sof_core.cli", *args],
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )


@pytest.fixture
def sof_cli() -> Any:
    """``run_sof`` for tests (test modules cannot import this conftest by name)."""
    return run_sof
