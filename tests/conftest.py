"""Shared fixtures: real plugin distributions on disk, and small skills to build plans from."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sof_core import BaseSkillModule

# The test modules import their shared helpers (``sof_test_support``) from this folder;
# pytest's importlib mode does not put it on sys.path itself.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

_counter = itertools.count()


class DistFactory:
    """Writes real installed-distribution layouts (``.dist-info`` + module) into one folder.

    The folder is put on ``sys.path`` (in-process) and can be passed as ``PYTHONPATH`` to a
    subprocess, so entry-point discovery runs exactly as for a pip-installed plugin.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def add(
        self,
        dist: str,
        source: str,
        *,
        entry_name: str | None = None,
        module: str | None = None,
        version: str = "1.0",
        requires: list[str] | None = None,
        group: str = "sof.plugins",
    ) -> str:
        module = module or f"{dist.replace('-', '_')}_{next(_counter)}"
        (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        meta = ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}"]
        meta += [f"Requires-Dist: {r}" for r in requires or []]
        (info / "METADATA").write_text("\n".join(meta) + "\n")
        (info / "entry_points.txt").write_text(f"[{group}]\n{entry_name or dist} = {module}\n")
        self.modules.append(module)
        return module

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), env.get("PYTHONPATH", "")])
        return env


_SAM_FILE_HERE = Path("config") / "sof_config.json"


@pytest.fixture(autouse=True)
def _no_sam_config_file_left_in_the_working_directory() -> Iterator[None]:
    """SAM's config manager writes ``config/sof_config.json`` in the working directory when
    it finds none, and SOF reads that file there when ``SOF_CONFIG`` is unset: one test
    leaving it behind would change the settings of every test after it."""
    before = _SAM_FILE_HERE.exists()
    yield
    if not before and _SAM_FILE_HERE.exists():
        _SAM_FILE_HERE.unlink()
        pytest.fail(f"the test left {_SAM_FILE_HERE.absolute()} behind (SAM's config "
                    "manager writes it): set SOF_CONFIG or change the working directory")


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The plan store (user cache dir) of this test session is a throw-away folder, for
    this process and the ``sof`` subprocesses it starts: tests never fill the user's.

    ``COLUMNS`` and ``LINES`` are left out too: ``sof`` wraps its tables to ``COLUMNS``
    even when piped, and a runner that exports them (pytest-xdist's workers set 80 and 24)
    would wrap the rows the CLI tests read; a test about widths sets its own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("user-cache")))
        patch.delenv("COLUMNS", raising=False)
        patch.delenv("LINES", raising=False)
        yield


@pytest.fixture
def dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DistFactory]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "no-config.json"))
    factory = DistFactory(root)
    yield factory
    for module in factory.modules:
        sys.modules.pop(module, None)


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config file and no SOF_* variables leak into a test."""
    for key in list(os.environ):
        if key.startswith("SOF_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "config.json"))


def run_sof(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (as a user would)."""
    return subprocess.run(
        [sys.executable, "-m", "sof_core.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def skill(
    name: str,
    requires: Any = (),
    outputs: Any = (),
    optional: Any = (),
    body: Callable[[Any], Any] | None = None,
    **attrs: Any,
) -> type[BaseSkillModule]:
    """A skill class for tests: writes ``f"{name}:{key}"`` to each output unless ``body`` is given."""

    def execute(self: Any, uif: Any) -> Any:
        if body is not None:
            result = body(uif)
            return uif if result is None else result
        for key in self.output_keys_list:
            uif.intermediate_data[key] = f"{name}:{key}"
        return uif

    namespace = {
        "skill_name": name,
        "skill_description": f"test skill {name}",
        "required_inputs": list(requires),
        "optional_inputs": list(optional),
        "output_keys": list(outputs),
        "output_keys_list": [o if isinstance(o, str) else o[0] for o in outputs],
        "max_execution_time": None,
        "execute": execute,
        **attrs,
    }
    return type(name, (BaseSkillModule,), namespace)


@pytest.fixture
def make_skill() -> Callable[..., type[BaseSkillModule]]:
    return skill


def returns_within(fn: Callable[[], Any], seconds: float = 10.0, what: str = "the call"
                   ) -> Any:
    """``fn()`` in a daemon thread: its result, or its exception raised here; the test fails
    (instead of hanging the suite) if it has not returned within ``seconds``. A bound for
    hangs only, never a performance figure."""
    box: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:  # handed to the test
            box.append((False, exc))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if not box:
        pytest.fail(f"{what} did not return within {seconds:g} s")
    ok, value = box[0]
    if not ok:
        raise value
    return value


@pytest.fixture
def within() -> Callable[..., Any]:
    """``returns_within``: call a function that must not hang, with a bound."""
    return returns_within


@pytest.fixture
def sof_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_sof
