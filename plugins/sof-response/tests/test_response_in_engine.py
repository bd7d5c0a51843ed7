"""The installed plugin, loaded from its entry point, answering inside a real plan."""

from __future__ import annotations

from typing import Any

import pytest

from sof_core import BaseSkillModule, CoordinatorEngine, PluginManager, SOFConfig

QUERY = "When was the SAM memory system redesigned?"


class StubMemorySkill(BaseSkillModule):
    """Writes memory_results in MemoryRetrievalSkill's shape (best first)."""

    skill_name = "StubMemorySkill"
    skill_description = "Returns two fixed passages about the memory system"
    required_inputs = ["input_query"]
    output_keys = [("memory_results", list)]

    def execute(self, uif):
        uif.intermediate_data["memory_results"] = [
            {"id": "a", "text": "The SAM memory system was redesigned in 2023. It is fast.",
             "source": "notes/a.md", "score": 0.9, "created_at": "2024-01-02", "metadata": {}},
            {"id": "b", "text": "Changelog: memory system redesigned in 2022.",
             "source": "CHANGELOG.md", "score": 0.7, "created_at": None, "metadata": {}},
        ]
        return uif


class StubConflictSkill(BaseSkillModule):
    """Writes conflicts in ConflictDetectorSkill's shape."""

    skill_name = "StubConflictSkill"
    skill_description = "Reports that the two passages disagree about the year"
    required_inputs = [("memory_results", list)]
    output_keys = [("conflicts", list)]

    def execute(self, uif):
        passages = uif.intermediate_data["memory_results"]
        uif.intermediate_data["conflicts"] = [{
            "subject": "redesign year", "values": ["2023", "2022"],
            "passages": [{k: p[k] for k in ("id", "source", "text")} for p in passages],
            "description": "the passages give different years",
        }]
        return uif


def engine_with(settings: dict[str, Any] | None = None, **config: Any) -> CoordinatorEngine:
    """An engine that loads only the installed ``response`` entry point, plus the stubs."""
    cfg = SOFConfig(plugins_only=["response"], plugin_settings={"response": settings or {}},
                    **config)
    engine = CoordinatorEngine(PluginManager(cfg), cfg)
    record = engine.plugins.records.get("response")
    if record is None or record.status != "loaded":
        pytest.fail(f"the sof-response entry point did not load: {record}")
    engine.register_skills([StubMemorySkill, StubConflictSkill], plugin_name="stubs")
    return engine


def test_the_entry_point_loads_and_provides_everything():
    record = engine_with().plugins.records["response"]

    assert record.distribution == "sof-response"
    assert record.provides == {
        "skills": ["ResponseGenerationSkill"],
        "llm_backends": ["extractive", "openai"],
        "generation_controllers": ["stop"],
    }


def test_memory_then_conflicts_then_response_in_one_plan():
    engine = engine_with()

    report = engine.run_query(
        QUERY, ["StubMemorySkill", "StubConflictSkill", "ResponseGenerationSkill"]
    )

    assert report.status == "success", report.errors
    assert report.uif.executed_skills == [
        "StubMemorySkill", "StubConflictSkill", "ResponseGenerationSkill",
    ]
    answer = report.uif.final_response
    assert "redesigned in 2023 [1]." in answer
    assert "Note: sources disagree about redesign year" in answer
    assert "(sources: notes/a.md, CHANGELOG.md)" in answer
    assert "[2] CHANGELOG.md (id b)" in answer
    assert 0 < report.uif.confidence_score < 1


def test_plan_order_is_a_hint_the_graph_runs_memory_first():
    report = engine_with().run_query(QUERY, ["ResponseGenerationSkill", "StubMemorySkill"])

    assert report.status == "success", report.errors
    assert report.uif.executed_skills == ["StubMemorySkill", "ResponseGenerationSkill"]
    assert "[1]" in report.uif.final_response


def test_plugin_settings_reach_the_registered_skill_through_sof_configure():
    engine = engine_with({"max_sentences": 1, "use_tpv_control": True, "tpv_max_tokens": 50})

    report = engine.run_query(QUERY, ["StubMemorySkill", "ResponseGenerationSkill"])

    generation = report.uif.intermediate_data["response_context"]["generation"]
    assert generation["controller"] == "stop"
    assert report.uif.final_response.split("\n\n")[0] == (
        "The SAM memory system was redesigned in 2023 [1]."
    )


def test_the_top_level_use_tpv_control_setting_turns_generation_control_on(tmp_path):
    # Before: SOFConfig(use_tpv_control=True) and a config file holding it were refused
    # ("unknown config key"); only plugin_settings.response.use_tpv_control worked.
    import json

    from sof_core.config import load_config

    engine = engine_with({"tpv_max_tokens": 50}, use_tpv_control=True)
    report = engine.run_query(QUERY, ["StubMemorySkill", "ResponseGenerationSkill"])
    assert report.uif.intermediate_data["response_context"]["generation"]["controller"] == "stop"
    off = engine_with({"use_tpv_control": False}, use_tpv_control=True)  # the plugin's wins
    report = off.run_query(QUERY, ["StubMemorySkill", "ResponseGenerationSkill"])
    assert report.uif.intermediate_data["response_context"]["generation"]["controller"] is None
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"use_tpv_control": True}))
    assert load_config(file_path=path).use_tpv_control is True


def test_a_bad_backend_name_in_config_fails_only_the_response_skill():
    engine = engine_with({"backend": "missing"}, continue_on_skill_failure=True)

    report = engine.run_query(QUERY, ["StubMemorySkill", "ResponseGenerationSkill"])

    assert report.status != "success"
    assert "StubMemorySkill" in report.uif.executed_skills
    assert "unknown LLM backend 'missing'" in " ".join(report.errors)
    assert "installed: ['extractive', 'openai']" in " ".join(report.errors)


def test_the_openai_backend_answers_inside_the_plan(chat_server):
    engine = engine_with({"backend": "openai", "base_url": chat_server.url("ok"),
                          "model": "test-model", "stream": True})

    report = engine.run_query(QUERY, ["StubMemorySkill", "ResponseGenerationSkill"])

    assert report.status == "success", report.errors
    assert report.uif.final_response.startswith(chat_server.reply)
    generation = report.uif.intermediate_data["response_context"]["generation"]
    assert (generation["backend"], generation["streamed"]) == ("openai", True)
    sent = chat_server.requests[-1]["body"]["messages"][1]["content"]
    assert "[1] (notes/a.md) The SAM memory system was redesigned in 2023." in sent
