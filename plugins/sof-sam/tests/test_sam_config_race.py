"""A rollback is never undone by another writer's unrelated update (found by a concurrency
probe: ``update_config`` wrote back every setting it had read, ``use_sof_framework``
included, over a rollback made meanwhile)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sof_sam.config as sam_config

import sof_core.config as core
from sof_core.config.manager import get_sof_config_manager


@pytest.fixture
def sam_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for var in [v for v in os.environ if v.startswith("SOF_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "sof_config.json"
    path.write_text(json.dumps({"use_sof_framework": True, "max_plan_length": 10,
                                "custom_key": "kept"}))
    monkeypatch.setenv("SOF_CONFIG", str(path))
    sam_config.reset_sof_config_managers()
    core.reset_sof_config_managers()
    yield path
    sam_config.reset_sof_config_managers()
    core.reset_sof_config_managers()


def test_an_update_after_a_rollback_it_did_not_see_keeps_the_rollback(
    sam_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = sam_config.get_sof_config_manager()
    assert manager.load_config().use_sof_framework is True
    real = manager.core.save_sam_settings

    def rollback_first(values: Any, **kwargs: Any) -> None:
        get_sof_config_manager().disable_sof_framework()  # another writer, just before
        real(values, **kwargs)

    monkeypatch.setattr(manager.core, "save_sam_settings", rollback_first)
    manager.update_config(max_plan_length=5)
    data = json.loads(sam_file.read_text())
    assert data["use_sof_framework"] is False  # the rollback stands
    assert data["max_plan_length"] == 5 and data["custom_key"] == "kept"


def test_updates_of_different_keys_from_threads_all_land(sam_file: Path) -> None:
    manager = sam_config.get_sof_config_manager()
    keys = {"max_plan_length": 7, "max_retry_attempts": 4, "legacy_timeout": 12.0,
            "plan_cache_ttl": 99, "self_reflect_max_revisions": 3}
    start = threading.Barrier(len(keys) + 1)

    def update(key: str, value: Any) -> None:
        start.wait()
        manager.update_config(**{key: value})

    threads = [threading.Thread(target=update, args=item) for item in keys.items()]
    threads.append(threading.Thread(
        target=lambda: (start.wait(), get_sof_config_manager().disable_sof_framework())))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    data = json.loads(sam_file.read_text())
    assert data["use_sof_framework"] is False
    assert {key: data[key] for key in keys} == keys
    assert data["custom_key"] == "kept"
