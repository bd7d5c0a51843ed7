"""Fixtures for sof-serve: a clean environment and real uvicorn servers on 127.0.0.1.

Every test gets its own config file (``SOF_CONFIG``) and memory store (``SOF_MEMORY_PATH``)
in tmp_path; ``served`` starts the app on a free port in a background thread.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sof_serve.app import create_app
from sof_serve.server import BackgroundServer
from sof_serve.service import SOFService
from sof_serve.settings import ServeSettings

from sof_core import UIF, BaseSkillModule, CoordinatorEngine, SOFConfigManager

TOKEN = "s3cret-admin-token"


def _load_observe_support() -> None:
    """``observe_support.py`` (the monitor tests' helpers) as one module for every test
    file, ``sys.modules["sof_serve_tests_observe_support"]``: test modules are not a
    package here (``--import-mode=importlib``), so they cannot import it by name."""
    name = "sof_serve_tests_observe_support"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).with_name("observe_support.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_load_observe_support()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("SOF_ADMIN_TOKEN", "SOF_PLUGINS_ONLY", "SOF_PLUGINS_DISABLE",
                "SOF_DISABLE_PLUGIN_AUTOLOAD", "SOF_STRICT_PLUGINS", "SOF_USE_SOF_FRAMEWORK",
                "SOF_ROLLOUT_PERCENTAGE", "SOF_SOF_ROLLOUT_PERCENTAGE", "SOF_PLANNER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "sof.json"))
    monkeypatch.setenv("SOF_MEMORY_PATH", str(tmp_path / "memory.db"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


class AnswerSkill(BaseSkillModule):
    skill_name = "AnswerSkill"
    skill_description = "Answers by echoing the query."
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = f"sof:{uif.input_query}"
        return uif


class BrokenSkill(BaseSkillModule):
    skill_name = "BrokenSkill"
    skill_description = "Always raises."
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        raise RuntimeError("database is down")


def legacy_answer(query: str, **context: Any) -> str:
    """A host's legacy pipeline."""
    return f"legacy:{query}"


@pytest.fixture
def serve_skills() -> tuple[type[BaseSkillModule], type[BaseSkillModule], Callable[..., str]]:
    """``(AnswerSkill, BrokenSkill, legacy_answer)``, for tests that make their own engines."""
    return AnswerSkill, BrokenSkill, legacy_answer


@pytest.fixture
def manager(tmp_path: Path) -> SOFConfigManager:
    return SOFConfigManager(tmp_path / "sof.json")


@pytest.fixture
def engine() -> Iterator[CoordinatorEngine]:
    engine = CoordinatorEngine()
    engine.register_skills([AnswerSkill, BrokenSkill], "serve-tests")
    yield engine
    engine.close()


Served = Callable[..., BackgroundServer]


@pytest.fixture
def served(engine: CoordinatorEngine, manager: SOFConfigManager) -> Iterator[Served]:
    """``served(token=..., legacy=..., **settings)``: a started server (stopped after)."""
    servers: list[BackgroundServer] = []
    services: list[SOFService] = []

    def start(token: str | None = None, legacy: Any = legacy_answer,
              **settings: Any) -> BackgroundServer:
        options = ServeSettings(admin_token=token, **settings)
        service = SOFService(engine=engine, legacy=legacy, manager=manager, settings=options)
        services.append(service)
        server = BackgroundServer(create_app(service)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    for service in services:
        service.close()


def client(server: BackgroundServer, **options: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, **options)


class FindPassages(BaseSkillModule):
    skill_name = "Find"
    skill_description = "finds passages"
    required_inputs = ["input_query"]
    output_keys = ["found"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["found"] = ["a passage"]
        return uif


class AnswerFromPassages(BaseSkillModule):
    skill_name = "Answer"
    skill_description = "answers from the passages"
    required_inputs = ["found"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = str(uif.intermediate_data["found"])
        return uif


@pytest.fixture
def segmented_skills() -> list[type[BaseSkillModule]]:
    """Find, then Answer, which requires what Find produces: ``run_query`` with the plan
    ``["Find", "Answer"]`` runs them as two engine runs (producers first, to decide)."""
    return [FindPassages, AnswerFromPassages]

