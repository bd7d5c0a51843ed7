"""Admin endpoints: bearer token, 401/404, writes through the config manager's atomic update."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from sof_serve.settings import ServeSettings

from sof_core import SOFConfigManager

Served = Callable[..., Any]
TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def client(server: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def test_without_a_configured_token_admin_is_off(served: Served) -> None:
    server = served(token=None)
    with client(server) as http:
        for method, path in (("POST", "/v1/admin/enable"), ("POST", "/v1/admin/disable"),
                             ("PUT", "/v1/admin/rollout"), ("GET", "/v1/admin/config")):
            answer = http.request(method, path, headers=AUTH, json={"percentage": 5}
                                  if path.endswith("rollout") else None)
            assert answer.status_code == 404, path
            assert "SOF_ADMIN_TOKEN" in answer.json()["error"]["message"]


def test_wrong_or_missing_token_is_401_and_changes_nothing(
        served: Served, manager: SOFConfigManager) -> None:
    server = served(token=TOKEN)
    with client(server) as http:
        missing = http.put("/v1/admin/rollout", json={"percentage": 50})
        wrong = http.put("/v1/admin/rollout", json={"percentage": 50},
                         headers={"Authorization": "Bearer not-it"})
        basic = http.get("/v1/admin/config", headers={"Authorization": f"Basic {TOKEN}"})
    for answer in (missing, wrong, basic):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
    assert manager.config.sof_rollout_percentage == 0
    assert not manager.path.exists()


def test_rollout_enable_disable_write_the_config_file(
        served: Served, manager: SOFConfigManager) -> None:
    server = served(token=TOKEN)
    with client(server) as http:
        enabled = http.post("/v1/admin/enable", headers=AUTH, json={"percentage": 10})
        assert enabled.status_code == 200, enabled.text
        assert json.loads(manager.path.read_text())["use_sof_framework"] is True
        rolled = http.put("/v1/admin/rollout", headers=AUTH, json={"percentage": 42.5})
        assert rolled.json()["sof_rollout_percentage"] == 42.5
        fresh = SOFConfigManager(manager.path)  # what `sof config show` would read
        assert fresh.config.sof_rollout_percentage == 42.5
        disabled = http.post("/v1/admin/disable", headers=AUTH)
        assert disabled.json()["use_sof_framework"] is False
        shown = http.get("/v1/admin/config", headers=AUTH).json()
    rows = {row["key"]: row for row in shown["settings"]}
    assert rows["sof_rollout_percentage"]["value"] == 42.5
    assert "config file" in rows["sof_rollout_percentage"]["source"]
    assert rows["max_workers"]["source"] == "default"
    assert [c["what"] for c in shown["changes"]] == [
        "enable (rollout 10 %)", "rollout 42.5 %", "disable"]
    assert SOFConfigManager(manager.path).config.use_sof_framework is False


def test_bad_percentages_are_422(served: Served, manager: SOFConfigManager) -> None:
    server = served(token=TOKEN)
    with client(server) as http:
        for body in ({"percentage": 101}, {"percentage": -1}, {"percentage": "50"},
                     {"percentage": True}, {}, {"percent": 5}):
            answer = http.put("/v1/admin/rollout", headers=AUTH, json=body)
            assert answer.status_code == 422, body
            assert "percent" in answer.json()["error"]["message"]
    assert not manager.path.exists()


def test_environment_override_is_reported(served: Served, manager: SOFConfigManager,
                                          monkeypatch: Any) -> None:
    monkeypatch.setenv("SOF_ROLLOUT_PERCENTAGE", "7")
    server = served(token=TOKEN)
    with client(server) as http:
        answer = http.put("/v1/admin/rollout", headers=AUTH, json={"percentage": 60}).json()
    assert answer["sof_rollout_percentage"] == 7
    assert "SOF_ROLLOUT_PERCENTAGE" in answer["overridden_by"]["sof_rollout_percentage"]


def test_token_comes_from_the_environment(monkeypatch: Any) -> None:
    assert ServeSettings.load({}).admin_token is None
    monkeypatch.setenv("SOF_ADMIN_TOKEN", "  abc  ")
    assert ServeSettings.load({}).admin_token == "abc"


def test_an_admin_change_applies_to_the_next_query(served: Served) -> None:
    server = served(token=TOKEN)
    with client(server) as http:
        before = http.post("/v1/query", json={"query": "q", "plan": ["AnswerSkill"]}).json()
        http.post("/v1/admin/enable", headers=AUTH, json={"percentage": 100})
        after = http.post("/v1/query", json={"query": "q", "plan": ["AnswerSkill"]}).json()
        http.post("/v1/admin/disable", headers=AUTH)
        rolled_back = http.post("/v1/query", json={"query": "q", "plan": ["AnswerSkill"]}).json()
    assert before["route"]["path"] == "legacy"
    assert after["route"]["path"] == "sof" and after["final_response"] == "sof:q"
    assert rolled_back["route"]["path"] == "legacy"
