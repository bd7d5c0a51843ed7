"""Claims of docs/configuration.md and docs/migration-and-rollback.md that did not hold:
the router's constructor forms, backups that never overwrite one another, the both-names
warning of ``sof config show``, ``isolation_limits: null`` and ``SOF_PLUGIN_SETTINGS``.
Real config files in tmp_path and real ``sof`` processes; only the clock is pinned."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sof_core.config.sources as sources
from sof_core import QueryRouter
from sof_core.config.manager import SOFConfigManager, reset_sof_config_managers
from sof_core.testing import make_engine

DOCS = Path(__file__).resolve().parents[1] / "docs"

#: Any instant: both writes of a test fall in this one second.
FROZEN = 1_800_000_000.25


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No outer SOF_* variable, a private (not created) config file, fresh warnings."""
    for var in [v for v in os.environ if v.startswith("SOF_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "config.json"
    monkeypatch.setenv("SOF_CONFIG", str(path))
    monkeypatch.setattr(sources, "_env_checked", set())
    monkeypatch.setattr(sources, "_noted", set())
    reset_sof_config_managers()
    yield path
    reset_sof_config_managers()


def _legacy_a(query: str, **context: Any) -> str:
    return "A"


def _legacy_b(query: str, **context: Any) -> str:
    return "B"


# --- migration-and-rollback.md: the router's forms ---------------------------------------------


@pytest.mark.parametrize("form", ["positional", "keyword"])
def test_two_legacy_callables_are_a_type_error_saying_what_to_pass(
    tmp_path: Path, form: str
) -> None:
    # "Passing no callable, or two, is a TypeError saying what to pass." The first
    # function used to become router.engine, and every SOF-routed query fell back.
    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    with pytest.raises(TypeError, match=r"QueryRouter\(engine, legacy_pipeline\)") as caught:
        if form == "positional":
            QueryRouter(_legacy_a, _legacy_b, manager)
        else:
            QueryRouter(_legacy_a, legacy_pipeline=_legacy_b, manager=manager)
    assert "_legacy_a" in str(caught.value)


def test_an_engine_and_one_legacy_callable_still_make_a_router(tmp_path: Path) -> None:
    # "QueryRouter(engine, legacy_pipeline) is the full form" (also with the keyword).
    manager = SOFConfigManager(tmp_path / "config.json", environ={})
    engine = make_engine([])
    for router in (QueryRouter(engine, _legacy_a, manager),
                   QueryRouter(engine, legacy_pipeline=_legacy_a, manager=manager)):
        assert (router.engine, router.legacy) == (engine, _legacy_a)
        assert router.route("q", user_id="u").response == "A"
