"""Planning fixes found by a black-box probe: damaged plan-cache rows, the LLM planner's token
budget and plugin backends, plugin upgrades and the plan cache, triggers that can never
match, the stages after a substitution, and what the run's ``planning`` holds."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule, CoordinatorEngine, SOFConfig
from sof_core.testing import make_engine

from .conftest import DistFactory

CALC = "CalculatorTool"
RESPONSE = "ResponseGenerationSkill"
DOCS = Path(__file__).resolve().parent.parent / "docs"


# --- 1. a damaged row in the persistent plan cache is a miss, never an error -------------


def _persisting(path: Path) -> dict[str, Any]:
    return {"plan_cache_persist": True, "plan_cache_path": str(path)}


@pytest.mark.parametrize("stored", [
    "[]", "null", '"a string"', "{not json",
    '{"plan": ["NoSuchSkill"], "stages": [["NoSuchSkill"]]}',
    '{"plan": ["CalculatorTool", "ResponseGenerationSkill"], "stages": 7, "reasons": 3}',
    '{"plan": ["CalculatorTool", "ResponseGenerationSkill"], "fallbacks": [1]}',
])
def test_a_damaged_store_entry_is_a_logged_miss(tmp_path: Path, stored: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "plans.sqlite"
    query = "what is 1+1"
    first = CoordinatorEngine(config=SOFConfig(**_persisting(store)))
    good = first.planning.plan(query).plan
    first.close()
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*) FROM plans").fetchone()[0] == 1
        db.execute("UPDATE plans SET plan = ?", (stored,))
    db.close()
    second = CoordinatorEngine(config=SOFConfig(**_persisting(store)))
    with caplog.at_level("WARNING", logger="sof.planning"):
        again = second.planning.plan(query)
        assert again.plan == good and not again.cache_hit
        second.planning.cache.clear()  # the memory copy gone: the store alone is asked
    unusable = [r for r in caplog.records if "unusable entry" in r.getMessage()]
    assert len(unusable) == 1
    assert second.planning.plan(query).plan == good
    second.close()


def test_the_same_damaged_entry_is_logged_once(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from sof_core.planning.cache import PlanStore

    store = PlanStore(tmp_path / "plans.sqlite")
    assert store.get("k") is None  # creates the table
    db = sqlite3.connect(tmp_path / "plans.sqlite")
    db.execute("INSERT INTO plans VALUES ('k', '[]', 0, NULL)")
    db.commit()
    db.close()
    with caplog.at_level("WARNING", logger="sof.planning"):
        assert store.get("k") is None and store.get("k") is None
    assert len([r for r in caplog.records if "unusable entry" in r.getMessage()]) == 1
    store.close()


# --- 2. the LLM planner never asks for more than its token budget ------------------------


class ChatServer:
    """A chat-completions endpoint on 127.0.0.1 answering scripted replies and usage."""

    def __init__(self, replies: list[tuple[str, Any]]) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                content, used = server.replies.pop(0) if server.replies else ("{}", 1)
                data = json.dumps({
                    "choices": [{"message": {"role": "assistant", "content": content},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": used},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def installed() -> Iterator[CoordinatorEngine]:
    engine = CoordinatorEngine(config=SOFConfig())
    yield engine
    engine.close()


@pytest.mark.parametrize("used", [-5000, -1, -1e9, "NaN", 10**30 * -1])
def test_negative_or_bogus_usage_never_enlarges_the_budget(installed: CoordinatorEngine,
                                                          used: Any) -> None:
    good = json.dumps({"plan": [CALC, RESPONSE], "reasoning": "ok"})
    server = ChatServer([("not a plan", used), (good, 10)])
    try:
        config = SOFConfig(planner="llm", planner_options={"llm": {
            "base_url": server.url, "model": "m", "timeout": 5, "max_tokens": 800}})
        result = installed.planning.plan("What is 2+2?", config=config, use_cache=False)
    finally:
        server.close()
    assert result.planner == "llm" and not result.fallbacks
    sent = [r["max_tokens"] for r in server.requests]
    assert len(sent) == 2 and all(0 < m <= 800 for m in sent), sent


# --- 3. upgrading a plugin whose skills change only their code ---------------------------

TIDES = """
    from sof_core import BaseSkillModule, hookimpl

    class TideTool(BaseSkillModule):
        skill_name = "TideTool"
        skill_description = "tide times"
        required_inputs = ["input_query"]
        output_keys = ["tide_info"]

        def planning_score(self, query):
            return {score}

        def execute(self, uif):
            uif.intermediate_data["tide_info"] = "high at 5"
            return uif

    class TideAnswer(BaseSkillModule):
        skill_name = "TideAnswer"
        skill_description = "answers tides"
        required_inputs = ["tide_info"]
        output_keys = ["final_response"]

        def execute(self, uif):
            uif.final_response = "Tide: " + uif.intermediate_data["tide_info"]
            return uif

    @hookimpl
    def sof_register_skills():
        return [TideTool, TideAnswer]
"""


def test_upgrading_a_plugin_that_changes_only_code_is_a_new_fingerprint(
    dists: DistFactory, tmp_path: Path
) -> None:
    import shutil

    store = tmp_path / "plans.sqlite"
    query = "When is high tide?"
    dists.add("sof-tidal", TIDES.format(score="1.0"), module="sof_tidal_v1", version="0.1.0")
    old = CoordinatorEngine(config=SOFConfig(**_persisting(store)))
    assert old.planning.plan(query).plan == ["TideTool", "TideAnswer"]
    old.close()
    shutil.rmtree(next(dists.root.glob("sof_tidal-*.dist-info")))
    (dists.root / "sof_tidal_v1.py").unlink()
    dists.add("sof-tidal", TIDES.format(score="0.0"), module="sof_tidal_v2", version="0.2.0")
    new = CoordinatorEngine(config=SOFConfig(**_persisting(store)))
    after = new.planning.plan(query)
    new.close()
    assert not after.cache_hit and "TideTool" not in after.plan


def test_the_fingerprint_includes_each_skills_distribution_and_version() -> None:
    from sof_core.planning.cache import skills_fingerprint

    engine = make_engine([_Answer])
    specs = [e.spec for e in engine.registry.skills()]
    assert skills_fingerprint(specs, {"Answer": ["p", "sof-x", "0.1.0"]}) != (
        skills_fingerprint(specs, {"Answer": ["p", "sof-x", "0.2.0"]}))


# --- 4. a plugin's LLM backend that needs no server --------------------------------------

LOCAL_BACKEND = """
    import json
    from sof_core import hookimpl

    class LocalBackend:
        name = "localmodel"

        def generate(self, messages, *args, **kwargs):
            return json.dumps({"plan": ["CalculatorTool", "ResponseGenerationSkill"],
                               "reasoning": "local"})

    @hookimpl
    def sof_register_llm_backends():
        return [LocalBackend()]
"""


def test_a_plugin_backend_plans_without_a_base_url(dists: DistFactory,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SOF_LLM_BASE_URL", "SOF_LLM_MODEL", "SOF_LLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    dists.add("sof-localmodel", LOCAL_BACKEND)
    engine = CoordinatorEngine(config=SOFConfig())
    try:
        local = engine.planning.plan("What is 2+2?", use_cache=False, config=SOFConfig(
            planner="llm", planner_options={"llm": {"backend": "localmodel"}}))
        assert local.planner == "llm" and not local.fallbacks
        assert local.reasoning == "local"
        # the bundled openai client still needs its server
        openai = engine.planning.plan("What is 2+2?", use_cache=False,
                                      config=SOFConfig(planner="llm"))
        assert openai.fallbacks and "has no server" in openai.fallbacks[0].reason
    finally:
        engine.close()


# --- 5. triggers that can never match are reported ---------------------------------------


class _Answer(BaseSkillModule):
    skill_name = "Answer"
    skill_description = "answers"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = "ok"
        return uif


class _BadRegex(BaseSkillModule):
    skill_name = "BadRegex"
    skill_description = "a broken trigger"
    required_inputs = ["input_query"]
    output_keys = ["tide_info"]
    triggers = ("(tide",)

    def execute(self, uif: UIF) -> UIF:
        return uif


def test_a_trigger_that_is_not_a_regex_is_said_under_skipped() -> None:
    engine = make_engine([_BadRegex, _Answer], default_plan=["Answer"])
    result = engine.planning.plan("When is the (tide high?", use_cache=False)
    assert "BadRegex" not in result.plan
    assert "'(tide' is not a regular expression" in result.skipped["BadRegex"]


def test_a_trigger_that_is_not_a_string_is_reported() -> None:
    from sof_core.planning.triggers import trigger_problems

    class NotAString:
        triggers = (123, r"\btide\b")

    class NotASequence:
        triggers = 5

    assert trigger_problems(NotAString) == [
        "trigger 123 is not a string (a regular expression)"]
    assert "not a sequence" in trigger_problems(NotASequence)[0]


# --- 6. the stages after a substitution --------------------------------------------------


class _FxPrimary(BaseSkillModule):
    skill_name = "FxPrimary"
    skill_description = "fx primary"
    required_inputs = ["input_query"]
    output_keys = ["fx_rate"]
    triggers = (r"\bfx\b",)

    def execute(self, uif: UIF) -> UIF:
        raise RuntimeError("primary down")


class _FxBackup(BaseSkillModule):
    skill_name = "FxBackup"
    skill_description = "fx backup"
    required_inputs = ["input_query"]
    output_keys = ["fx_rate"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["fx_rate"] = 1.25
        return uif


class _FxAnswer(BaseSkillModule):
    skill_name = "FxAnswer"
    skill_description = "answers fx"
    required_inputs = ["fx_rate"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = f"rate {uif.intermediate_data['fx_rate']}"
        return uif


def test_a_substitute_is_staged_after_the_skill_it_replaces() -> None:
    engine = make_engine([_FxPrimary, _FxBackup, _FxAnswer], total_timeout=None,
                         continue_on_skill_failure=True)
    report = engine.run_query("what is the fx rate today")
    assert report.final_response == "rate 1.25"
    assert [c["action"] for c in report.planning["changes"]] == ["substituted"]
    assert report.planning["stages"] == [["FxPrimary"], ["FxBackup"], ["FxAnswer"]]
    assert report.planning["stages"] == report.stages
    assert report.planning["plan"] == ["FxPrimary", "FxBackup", "FxAnswer"]


# --- 7. what the run's "planning" holds --------------------------------------------------


def test_the_runs_planning_is_the_plan_object_without_sof_plans_own_keys() -> None:
    text = " ".join((DOCS / "cli.md").read_text().split())
    assert "The run's JSON holds the same object as `planning`" not in text
    assert ("`planning`: the same keys but `query`, `valid` and `problems`, which only "
            "`sof plan` adds") in text
    engine = make_engine([_Answer], default_plan=["Answer"])
    report = engine.run_query("hello")
    from sof_core.planning.result import PlanResult

    assert set(report.planning) == set(PlanResult(plan=[], planner="x").to_dict())
