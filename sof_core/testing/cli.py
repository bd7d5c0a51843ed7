"""Running the ``sof`` command from tests, as pytest's ``pytester`` runs pytest.

``SofCLI`` (the ``sof_cli`` fixture) runs ``sof`` in a subprocess, or in-process for speed,
with a temporary config file, memory store and data, cache and config directories, and none
of the caller's ``SOF_*`` variables: a test sees what a fresh installation would, and never
touches the user's files. Only the standard library is imported until a command runs
in-process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class SofResult:
    """What one ``sof`` command did: exit code and both streams, as text."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def json(self) -> Any:
        """``stdout`` parsed as JSON (for ``--json`` commands)."""
        return json.loads(self.stdout)

    def __repr__(self) -> str:  # what pytest shows when an assertion on it fails
        return (f"SofResult(sof {' '.join(self.args)!s}: exit {self.returncode}\n"
                f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr})")


class SofCLI:
    """``sof`` with a private config file, memory store and directories under ``root``.

    The memory store is ``memory_path`` (``SOF_MEMORY_PATH``) when the memory plugin is
    installed; without it the variable is not set (nothing would read it).

    ``cli("plugins", "--json")`` runs ``sof plugins --json`` and returns a ``SofResult``.
    ``env`` adds or overrides environment variables (for every call, or for one call);
    ``inprocess=True`` calls ``sof_core.cli.main`` in this process instead of starting
    Python again (faster; plugins already imported in this process stay imported).
    """

    def __init__(
        self, root: Path, *, env: Mapping[str, str] | None = None, inprocess: bool = False
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path = self.root / "config.json"
        self.memory_path = self.root / "memory.db"
        self.inprocess = inprocess
        base = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
        base.update(
            SOF_CONFIG=str(self.config_path),
            XDG_CONFIG_HOME=str(self.root / "config"),
            XDG_DATA_HOME=str(self.root / "data"),
            XDG_CACHE_HOME=str(self.root / "cache"),
        )
        base.pop("COLUMNS", None)  # tables keep whole rows, as when piped
        # SOF_MEMORY_PATH is the memory plugin's: set only where that plugin is installed,
        # or SOF would warn about a variable nobody reads, which the user never set.
        if _memory_plugin_installed({**base, **dict(env or {})}):
            base["SOF_MEMORY_PATH"] = str(self.memory_path)
        self.env: dict[str, str] = {**base, **dict(env or {})}

    def configure(self, **settings: Any) -> Path:
        """Merge ``settings`` into the temporary config file (JSON) and return its path."""
        current: dict[str, Any] = {}
        if self.config_path.exists():
            current = json.loads(self.config_path.read_text(encoding="utf-8") or "{}")
        current.update(settings)
        self.config_path.write_text(json.dumps(current, indent=2), encoding="utf-8")
        return self.config_path

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        inprocess: bool | None = None,
        timeout: float = 120.0,
    ) -> SofResult:
        environment = {**self.env, **dict(env or {})}
        words = [str(a) for a in args]
        if self.inprocess if inprocess is None else inprocess:
            return self._in_process(words, input, environment)
        done = subprocess.run(
            [sys.executable, "-m", "sof_core.cli", *words],
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            env=environment,
            cwd=self.root,
            timeout=timeout,
            check=False,
        )
        return SofResult(words, done.returncode, done.stdout, done.stderr)

    def _in_process(self, args: list[str], input: str | None, env: dict[str, str]) -> SofResult:
        from sof_core.cli.main import logging_restored, main

        out, err = io.StringIO(), io.StringIO()
        code: int
        with _environment(env), logging_restored(), _stdin(input or ""), \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as exc:  # argparse: --help, --version, usage errors
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
        return SofResult(args, code, out.getvalue(), err.getvalue())


def _memory_plugin_installed(env: Mapping[str, str]) -> bool:
    """Whether ``sof`` run with ``env`` loads a plugin ``SOF_MEMORY_PATH`` belongs to (one
    named ``memory``), from the metadata files alone."""
    from sof_core._installed import child_import_path, plugin_variable

    try:
        return plugin_variable("SOF_MEMORY_PATH", child_import_path(env))
    except Exception:  # unreadable metadata: set it, as before
        return True


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _stdin(text: str) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved


__all__ = ["SofCLI", "SofResult"]
