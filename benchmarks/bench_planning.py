"""Planning: the rules planner's accuracy, and planning latency as skills are added.

* **Accuracy** of the rules planner on the labelled queries in
  ``benchmarks/data/planning_queries.json``, with the installed plugins: a query is right when
  its plan holds exactly the labelled skills besides the response skill (the right tools,
  no unneeded ones); precision and recall are over the chosen skills.
* **Latency** per plan of a cache hit, the rules planner and the LLM planner (against a
  chat-completions server on 127.0.0.1 that answers at once, so the figure is SOF's own
  work plus one loopback HTTP round trip), each against the static planner (reading
  ``default_plan``) measured in the same run.
* **Growth**: the same three with 10, 100 and 1,000 registered skills that each declare a
  trigger, as ratios against N = 10.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _common import Row, Section, Target, best_of, make_skill

from sof_core import UIF, BaseSkillModule, CoordinatorEngine, SOFConfig, hookimpl
from sof_core.testing import make_engine

DATA = Path(__file__).resolve().parent / "data" / "planning_queries.json"
RESPONSE = "ResponseGenerationSkill"


class _Answer(BaseSkillModule):
    skill_name = "Answer"
    skill_description = "answers"
    required_inputs = ["input_query"]
    optional_inputs = ["tool_results"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        return uif


class _Server:
    """A chat-completions endpoint replying with one fixed, valid plan."""

    def __init__(self, plan: list[str]) -> None:
        body = json.dumps({"choices": [{"message": {"role": "assistant", "content": json.dumps(
            {"plan": plan, "reasoning": "benchmark"})}, "finish_reason": "stop"}],
            "usage": {"completion_tokens": 12}}).encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body in one write: no delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def accuracy(section: Section) -> None:
    labelled = json.loads(DATA.read_text(encoding="utf-8"))["queries"]
    engine = CoordinatorEngine(config=SOFConfig())
    exact = chosen_total = chosen_right = wanted_total = 0
    misses = []
    for item in labelled:
        got = set(engine.planning.plan(item["query"], use_cache=False).plan) - {RESPONSE}
        wanted = set(item["tools"])
        exact += got == wanted
        chosen_total += len(got)
        chosen_right += len(got & wanted)
        wanted_total += len(wanted)
        if got != wanted:
            misses.append(f"{item['query']!r}: chose {sorted(got)}, labelled {sorted(wanted)}")
    share = exact / len(labelled)
    section.rows.append(Row(f"rules planner: plans exactly right ({len(labelled)} queries)",
                            share * 100, "%", 100.0, "every query right"))
    section.rows.append(Row("rules planner: precision (chosen skills that were wanted)",
                            100 * chosen_right / max(chosen_total, 1), "%", 100.0, "perfect"))
    section.rows.append(Row("rules planner: recall (wanted skills that were chosen)",
                            100 * chosen_right / max(wanted_total, 1), "%", 100.0, "perfect"))
    section.targets.append(Target("rules planner wrong on at most 10% of labelled queries",
                                  10.0, "%", (1 - share) * 100))
    section.notes.extend(f"miss: {m}" for m in misses)


class _Backends:
    """The installed ``openai`` LLM backend (sof-response), on engines with only test skills."""

    def __init__(self) -> None:
        entry = CoordinatorEngine(config=SOFConfig()).registry.component("llm_backends", "openai")
        if entry is None:
            raise RuntimeError("the llm rows need sof-response installed (backend 'openai')")
        self.backend = entry.obj

    @hookimpl
    def sof_register_llm_backends(self) -> list[Any]:
        return [self.backend]


def _engine(n: int, backends: _Backends) -> CoordinatorEngine:
    """``n`` skills that each declare a trigger no benchmark query matches, plus an answer."""
    skills = [make_skill(f"Grow{i}", ["input_query"], [f"grow_{i}"],
                         triggers=(rf"\bgrowword{i}\b",)) for i in range(n - 1)]
    return make_engine([*skills, _Answer], plugins=[("backends", backends)],
                       default_plan=["Answer"])


def _measure(n: int, backends: _Backends, url: str, repeat: int,
             number: int) -> dict[str, float]:
    """Seconds per plan at ``n`` registered skills: static, cache hit, rules, llm."""
    engine = _engine(n, backends)
    counter = iter(range(10**9))
    static = SOFConfig(planner="static", default_plan=["Answer"])
    rules = SOFConfig(default_plan=["Answer"])
    llm = SOFConfig(planner="llm", default_plan=["Answer"],
                    planner_options={"llm": {"base_url": url, "timeout": 10}})
    engine.planning.plan("warm", config=rules)
    if engine.planning.plan("q", config=llm, use_cache=False).planner != "llm":
        raise RuntimeError("the LLM planner fell back: the llm rows would measure rules")
    return {
        "static": best_of(lambda: engine.planning.plan(
            "q", config=static, use_cache=False), repeat, number),
        "cache hit": best_of(lambda: engine.planning.plan("warm", config=rules), repeat,
                             number),
        "rules": best_of(lambda: engine.planning.plan(
            f"q{next(counter)}", config=rules, use_cache=False), repeat,
            max(2, number // (1 + n // 100))),
        "llm": best_of(lambda: engine.planning.plan(
            "q", config=llm, use_cache=False), repeat, max(2, number // 10)),
    }


def latency(section: Section, quick: bool) -> None:
    repeat = 3 if quick else 7
    number = 20 if quick else 100
    server = _Server(["Answer"])
    backends = _Backends()
    try:
        base: dict[int, dict[str, float]] = {}
        for n in (10, 100, 1000):
            figures = base[n] = _measure(n, backends, server.url, repeat, number)
            for kind in ("cache hit", "rules", "llm"):
                section.rows.append(Row(f"{kind}, N = {n} skills", figures[kind] * 1e6, "us",
                                        figures["static"] * 1e6, "static planner, same N"))
        for kind in ("cache hit", "rules", "llm"):
            for n in (100, 1000):
                section.rows.append(Row(f"{kind}: N = {n} against N = 10", base[n][kind] * 1e6,
                                        "us", base[10][kind] * 1e6, f"{kind}, N = 10"))
        section.targets.append(Target("cache hit at N = 1000, against a rules plan", 0.5, "x",
                                      base[1000]["cache hit"] / base[1000]["rules"]))
    finally:
        server.close()


def run(quick: bool) -> Section:
    section = Section("planning", "Planning: rules accuracy, latency and growth")
    accuracy(section)
    latency(section, quick)
    return section


if __name__ == "__main__":
    result = run(quick=True)
    print(json.dumps(result.to_dict(), indent=2))
