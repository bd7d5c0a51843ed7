"""In a real plan: a hostile LLM server costs the answer its model, never the run.

The skill gives the model its remaining time minus a small reserve, so when the server drips,
streams forever, sends a gzip bomb or a malformed stream, the extractive answer is still
written before the step's deadline, and the report says why and which setting to change.
"""

from __future__ import annotations

import time

import pytest
from sof_response import ResponseGenerationSkill

import sof_core
from sof_core import UIF
from sof_core.testing import make_engine

QUERY = "What does SOF route?"
MEMORY = [{"id": "p1", "text": "SOF routes each query through a validated plan.",
           "source": "docs/concepts.md", "score": 0.8}]
LIMIT = 1.0


class QuickResponseSkill(ResponseGenerationSkill):
    """The response skill with a one-second time limit."""

    max_execution_time = LIMIT


def run_plan(settings, skill_class=QuickResponseSkill, engine=None):
    skill = skill_class(settings=settings)
    engine = engine or make_engine([skill])
    started = time.monotonic()
    report = engine.execute_plan(
        ["ResponseGenerationSkill"],
        UIF(input_query=QUERY, intermediate_data={"memory_results": list(MEMORY)}),
    )
    return report, time.monotonic() - started


def generation(report):
    return report.uif.intermediate_data["response_context"]["generation"]


@pytest.mark.parametrize(("scenario", "stream"), [("drip", False), ("driphead", False),
                                                  ("endless", True), ("slow", False)])
def test_a_server_that_will_not_finish_gets_an_extractive_answer_in_time(
    chat_server, scenario, stream
):
    report, took = run_plan({"backend": "openai", "base_url": chat_server.url(scenario),
                             "timeout": 30, "stream": stream})

    assert report.status == "success", report.errors
    assert took < LIMIT + 0.5
    info = generation(report)
    assert (info["backend"], info["fallback_from"], info["fallback_reason"]) == (
        "extractive", "openai", "deadline",
    )
    assert 0 < info["deadline_s"] <= LIMIT * 0.9
    assert "validated plan [1]." in report.uif.final_response
    assert "(extractive answer: language model 'openai' failed with LLMTimeoutError)" in (
        report.uif.final_response
    )
    warning = next(w for w in report.uif.warnings if "extractively" in w)
    assert "max_execution_time" in warning and "skill_timeout" in warning


def test_a_run_total_timeout_sooner_than_the_skills_limit_still_gets_the_fallback(
    chat_server, probe
):
    # The skill may take 30 s, the run only 1.5 s: the model gets what the run leaves, so the
    # extractive answer is written before the run's end. Before, the skill waited on the
    # dripping server for its own 30 s: the run ended at total_timeout with no answer and
    # the connection stayed open behind it, an abandoned call.
    class PatientResponseSkill(ResponseGenerationSkill):
        max_execution_time = 30.0

    skill = PatientResponseSkill(settings={"backend": "openai", "base_url": chat_server.url(
        "drip"), "timeout": 60, "stream": False})
    engine = make_engine([skill], total_timeout=1.5)
    warm, _ = run_plan({"backend": "extractive"}, engine=make_engine([QuickResponseSkill()]))
    assert warm.status == "success"  # the shared threads are started, before counting
    threads, sockets = probe.threads(), probe.sockets()
    report, took = run_plan(None, engine=engine)

    assert report.status == "success", report.errors
    assert took < 1.5 + 0.5
    info = generation(report)
    assert (info["fallback_from"], info["fallback_reason"]) == ("openai", "deadline")
    assert 0 < info["deadline_s"] <= 1.5
    assert "validated plan [1]." in report.uif.final_response
    assert engine.abandoned_calls() == {}
    # The connection is closed, and the server (in this process) saw the client go.
    assert probe.settles(lambda: probe.threads() <= threads and probe.sockets() <= sockets,
                         within=2.0), (probe.threads(), threads, probe.sockets(), sockets)


def test_after_the_cut_no_thread_or_socket_of_ours_keeps_running(chat_server, probe):
    engine = make_engine([QuickResponseSkill(settings={
        "backend": "openai", "base_url": chat_server.url("endless"), "timeout": 30,
        "stream": True,
    })])
    warm, _ = run_plan({"backend": "extractive"}, engine=make_engine([QuickResponseSkill()]))
    assert warm.status == "success"
    threads, sockets = probe.threads(), probe.sockets()

    report, _ = run_plan(None, engine=engine)

    assert report.status == "success", report.errors
    # The server's handler thread and both ends of the connection are in this process too,
    # so this also shows the server saw the client go.
    assert probe.settles(lambda: probe.threads() <= threads and probe.sockets() <= sockets,
                         within=1.0), (probe.threads(), threads, probe.sockets(), sockets)
    chunks = chat_server.chunks_sent
    time.sleep(0.1)
    assert chat_server.chunks_sent == chunks, "something is still reading the stream"


def test_the_backend_timeout_wins_when_it_is_shorter_than_the_skill_limit(chat_server):
    report, took = run_plan({"backend": "openai", "base_url": chat_server.url("drip"),
                             "timeout": 0.3}, skill_class=ResponseGenerationSkill)

    assert report.status == "success", report.errors
    assert took < 0.3 + 0.75
    assert generation(report)["fallback_reason"] == "timeout"
    warning = next(w for w in report.uif.warnings if "extractively" in w)
    assert "SOF_LLM_TIMEOUT" in warning


def test_the_skill_uses_the_core_deadline_when_there_is_one(chat_server, monkeypatch):
    end = time.monotonic() + 0.6
    monkeypatch.setattr(sof_core, "current_deadline", lambda: end, raising=False)

    report, took = run_plan({"backend": "openai", "base_url": chat_server.url("drip"),
                             "timeout": 30}, skill_class=ResponseGenerationSkill)

    assert report.status == "success", report.errors
    assert took < 0.6 + 0.5
    assert generation(report)["fallback_reason"] == "deadline"


@pytest.mark.parametrize("stream", [False, True])
def test_a_gzip_bomb_gets_an_extractive_answer_and_names_the_setting(chat_server, stream):
    report, _ = run_plan({"backend": "openai", "base_url": chat_server.url("gzipbomb"),
                          "stream": stream, "max_response_bytes": 1_000_000},
                         skill_class=ResponseGenerationSkill)

    assert report.status == "success", report.errors
    assert len(report.uif.final_response) < 10_000
    assert generation(report)["fallback_reason"] == "size"
    assert generation(report)["deadline_s"] is None
    warning = next(w for w in report.uif.warnings if "extractively" in w)
    assert "max_response_bytes" in warning and "SOF_LLM_MAX_RESPONSE_BYTES" in warning


@pytest.mark.parametrize("scenario", ["badsse", "nodone"])
def test_a_malformed_stream_gets_an_extractive_answer_and_the_reason(chat_server, scenario):
    report, _ = run_plan({"backend": "openai", "base_url": chat_server.url(scenario),
                          "stream": True}, skill_class=ResponseGenerationSkill)

    assert report.status == "success", report.errors
    assert generation(report)["fallback_reason"] == "protocol"
    warning = next(w for w in report.uif.warnings if "extractively" in w)
    assert "SOF_LLM_BASE_URL" in warning


def test_a_good_answer_records_no_fallback_reason_and_its_deadline(chat_server):
    report, _ = run_plan({"backend": "openai", "base_url": chat_server.url("ok")})

    assert report.status == "success", report.errors
    info = generation(report)
    assert info["backend"] == "openai"
    assert info["fallback_reason"] is None
    assert 0 < info["deadline_s"] <= LIMIT


def test_the_model_gets_the_skill_limit_less_a_tenth_at_most_one_second(monkeypatch):
    monkeypatch.setattr(sof_core, "current_deadline", lambda: None, raising=False)

    from sof_core import SOFConfig

    bundled = ResponseGenerationSkill()
    bundled.configure(SOFConfig(), None)  # skill_timeout 30 s by default
    assert bundled.generation_deadline(100.0) == pytest.approx(129.0)
    assert QuickResponseSkill().generation_deadline(100.0) == pytest.approx(100.9)


def test_a_skill_without_its_own_limit_uses_skill_timeout(monkeypatch):
    from sof_core import SOFConfig

    monkeypatch.setattr(sof_core, "current_deadline", lambda: None, raising=False)

    class Unlimited(ResponseGenerationSkill):
        max_execution_time = None

    skill = Unlimited()
    assert skill.generation_deadline(100.0) is None
    skill.configure(SOFConfig(skill_timeout=5.0), None)
    assert skill.generation_deadline(100.0) == pytest.approx(104.5)


def test_a_sooner_core_deadline_wins_over_the_skill_limit(monkeypatch):
    monkeypatch.setattr(sof_core, "current_deadline", lambda: 102.0, raising=False)

    assert ResponseGenerationSkill().generation_deadline(100.0) == pytest.approx(101.8)


def test_the_bundled_skill_follows_the_configured_skill_timeout(chat_server, monkeypatch):
    # Issue 10: max_execution_time defaults to "use skill_timeout". The bundled skill sets no
    # limit of its own, so SOF_SKILL_TIMEOUT decides how long a dripping server may hold it
    # (it pinned 120 s before, and the LLM's own 60 s timeout held the run instead).
    assert ResponseGenerationSkill.max_execution_time is None
    monkeypatch.setenv("SOF_SKILL_TIMEOUT", "1.5")
    from sof_core import CoordinatorEngine

    engine = CoordinatorEngine()  # the host's configuration, environment included
    engine.register_skill(ResponseGenerationSkill(settings={
        "backend": "openai", "base_url": chat_server.url("drip"), "stream": False}))
    report, took = run_plan(None, engine=engine)

    assert report.status == "success", report.errors
    assert took < 1.5 + 0.5
    info = generation(report)
    assert (info["fallback_from"], info["fallback_reason"]) == ("openai", "deadline")
    assert 0 < info["deadline_s"] <= 1.5
