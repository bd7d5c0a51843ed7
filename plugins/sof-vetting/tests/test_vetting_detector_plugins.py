"""A third-party detector, installed as a real distribution, joins the vetting skill.

The plugin below stands in for a model-based detector: a "classifier" with a score that
flags sources about a forbidden topic. It is written to a ``.dist-info`` layout with an
``entry_points.txt``, so discovery, loading and registration run as for a pip-installed
plugin, in-process and through the real ``sof`` command.
"""

from __future__ import annotations

import json
from typing import Any

from sof_core import CoordinatorEngine, PluginManager, SOFConfig

DETECTOR_PLUGIN = '''
from sof_core import BaseSkillModule, hookimpl
from sof_vetting import Finding

SOF_API_VERSION = 1


class ToyClassifier:
    """A stand-in for a model: scores text, flags it above a threshold."""

    name = "toy_model"

    def __init__(self, threshold=0.5):
        self.threshold = threshold

    def with_settings(self, settings):
        return ToyClassifier(threshold=0.5)

    def check(self, text):
        score = text.lower().count("pineapple") / 2
        if score < self.threshold:
            return []
        return [Finding(detector="toy_model.topic", category="toy_topic",
                        message="the classifier flags this topic", score=min(score, 1.0))]


class DictDetector:
    name = "dict_detector"

    def check(self, text):
        at = text.find("Moon")
        if at < 0:
            return []
        return [{"category": "custom", "message": "mentions the Moon", "start": at,
                 "end": at + 4, "action": "report"}]


class FixturePages(BaseSkillModule):
    skill_name = "FixturePages"
    skill_description = "External content from the query (a stand-in for a web tool)"
    required_inputs = ["input_query"]
    output_keys = [("external_content", list)]
    requires_external_access = True

    def execute(self, uif):
        uif.intermediate_data["external_content"] = [
            {"url": "http://fixture.test/" + str(i), "text": part.strip()}
            for i, part in enumerate(uif.input_query.split("|"))
        ]
        return uif


@hookimpl
def sof_register_vetting_detectors():
    return [ToyClassifier(), DictDetector()]


@hookimpl
def sof_register_skills():
    return [FixturePages]
'''


def engine_for(dists: Any, **settings: Any) -> CoordinatorEngine:
    dists.add("sof-toy-detector", DETECTOR_PLUGIN, entry_name="toy")
    cfg = SOFConfig(plugins_only=["vetting", "response", "toy"],
                    plugin_settings={"vetting": settings})
    return CoordinatorEngine(PluginManager(cfg), cfg)


def test_the_plugin_registers_its_detectors_next_to_the_shipped_ones(dists: Any) -> None:
    engine = engine_for(dists)

    record = engine.plugins.records["toy"]
    assert record.status == "loaded", record.error
    assert record.provides["vetting_detectors"] == ["toy_model", "dict_detector"]
    assert sorted(engine.registry.components("vetting_detectors")) == [
        "dict_detector", "encoded", "injection", "links", "pii", "secrets", "toy_model",
    ]


def test_the_plugin_detector_runs_and_blocks_with_its_own_category(dists: Any) -> None:
    engine = engine_for(dists)

    report = engine.run_query(
        "Tides follow the Moon. | Pineapple pizza: pineapple, pineapple!",
        ["FixturePages", "ContentVettingSkill", "ResponseGenerationSkill"],
    )

    assert report.status == "success", report.errors
    vetted = report.uif.intermediate_data["vetted_content"]
    first, second = vetted["sources"]
    assert (first["verdict"], first["detectors"]) == ("pass", ["dict_detector"])
    assert first["reasons"][0]["action"] == "report"
    assert (second["verdict"], second["detectors"]) == ("block", ["toy_model.topic"])
    assert second["reasons"][0]["category"] == "toy_topic"
    assert "toy_model" in vetted["detectors"]
    assert "withheld" in report.uif.final_response and "fixture.test/1" in report.uif.final_response
    assert "izza" not in report.uif.final_response


def test_settings_govern_plugin_categories_and_can_disable_the_plugin(dists: Any) -> None:
    query = "Pineapple pizza: pineapple, pineapple!"
    plan = ["FixturePages", "ContentVettingSkill"]

    reported = engine_for(dists, actions={"toy_topic": "report"}).run_query(query, plan)
    disabled = engine_for(dists, disabled=["toy_model"]).run_query(query, plan)

    assert reported.uif.intermediate_data["vetted_content"]["verdict"] == "pass"
    vetted = disabled.uif.intermediate_data["vetted_content"]
    assert vetted["verdict"] == "pass" and "toy_model" not in vetted["detectors"]


def test_the_real_cli_uses_the_installed_detector_and_trace_names_it(
    dists: Any, sof_cli: Any
) -> None:
    dists.add("sof-toy-detector", DETECTOR_PLUGIN, entry_name="toy")
    env = dists.env()

    result = sof_cli("run", "Pineapple pizza: pineapple, pineapple!", "--plan", "FixturePages",
                     "ContentVettingSkill", "ResponseGenerationSkill", "--trace", env=env)

    assert result.returncode == 0, result.stderr
    assert "http://fixture.test/0: block (toy_model.topic)" in result.stdout
    assert "withheld by content vetting" in result.stdout
    listing = sof_cli("plugins", "--json", env=env)
    records = {p["name"]: p for p in json.loads(listing.stdout)}
    assert records["toy"]["status"] == "loaded"
    assert records["toy"]["provides"]["vetting_detectors"] == ["toy_model", "dict_detector"]
    assert records["vetting"]["provides"]["vetting_detectors"] == [
        "injection", "encoded", "secrets", "pii", "links"]


CLASHING = '''
from sof_core import hookimpl

SOF_API_VERSION = 1


class Impostor:
    name = "injection"

    def check(self, text):
        return []


@hookimpl
def sof_register_vetting_detectors():
    return [Impostor()]
'''


def test_a_second_detector_with_a_taken_name_fails_its_plugin_only(dists: Any) -> None:
    dists.add("sof-impostor", CLASHING, entry_name="zz_impostor")
    cfg = SOFConfig(plugins_only=["vetting", "zz_impostor"])
    engine = CoordinatorEngine(PluginManager(cfg), cfg)

    record = engine.plugins.records["zz_impostor"]
    assert record.status == "failed"
    assert record.error_type == "PluginConflictError"
    assert "'injection' is already registered by plugin 'vetting'" in (record.error or "")
    assert engine.plugins.records["vetting"].status == "loaded"
    assert type(engine.registry.components("vetting_detectors")["injection"].obj).__name__ == (
        "InjectionDetector")


def test_an_isolated_vetting_skill_runs_the_same_detectors_as_in_thread(dists: Any) -> None:
    # The skill is pickled for its worker without the registry; the installed detectors
    # must go with it (before, the worker ran only the built-in ones, in another order).
    dists.add("sof-toy-detector", DETECTOR_PLUGIN, entry_name="toy")
    query = "Tides follow the Moon. | Pineapple pizza: pineapple, pineapple!"
    plan = ["FixturePages", "ContentVettingSkill"]
    vetted = []
    for isolate in ([], ["ContentVettingSkill"]):
        cfg = SOFConfig(plugins_only=["vetting", "toy"], isolate_skills=isolate)
        engine = CoordinatorEngine(PluginManager(cfg), cfg)
        if isolate:
            assert engine.compile(plan).steps["ContentVettingSkill"].isolation == "process"
        with engine:
            report = engine.run_query(query, plan)
        assert report.status == "success", report.errors
        vetted.append(report.uif.intermediate_data["vetted_content"])
    local, isolated = vetted
    assert isolated == local
    assert "toy_model" in isolated["detectors"]
    assert isolated["sources"][1]["detectors"] == ["toy_model.topic"]
