"""`sof run --json`: one documented, versioned schema (sof.run/1), with the final UIF.

Run as a user runs it: the real `sof` command in a subprocess over real plugin metadata.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.execution.report import RUN_SCHEMA, ExecutionReport
from sof_core.testing import make_engine

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"

PIPELINE = """
    from sof_core import BaseSkillModule, hookimpl

    class Retrieve(BaseSkillModule):
        skill_name = "Retrieve"
        skill_description = "find passages"
        required_inputs = ["input_query"]
        output_keys = {"passages": list}
        def execute(self, uif):
            uif.intermediate_data["passages"] = ["SOF runs skills as a graph"]
            return uif

    class Summarise(BaseSkillModule):
        skill_name = "Summarise"
        skill_description = "a summary object, not a final response"
        required_inputs = [("passages", list)]
        output_keys = ["summary"]
        def execute(self, uif):
            uif.intermediate_data["summary"] = {"count": 1, "first": "SOF"}
            return uif

    class Answer(BaseSkillModule):
        skill_name = "Answer"
        skill_description = "answer from passages"
        required_inputs = ["input_query", ("passages", list)]
        output_keys = ["final_response", "confidence_score"]
        def execute(self, uif):
            uif.final_response = "Answer: " + uif.input_query
            uif.confidence_score = 0.8
            return uif

    class Crash(BaseSkillModule):
        skill_name = "Crash"
        skill_description = "always fails"
        required_inputs = ["input_query"]
        output_keys = ["never"]
        def execute(self, uif):
            raise RuntimeError("disk full")

    @hookimpl
    def sof_register_skills():
        return [Retrieve, Summarise, Answer, Crash]
"""

TOP_KEYS = {
    "schema", "schema_version", "status", "task_id", "query", "final_response",
    "confidence_score", "plan", "stages", "executor", "duration_ms", "timings_ms", "skills",
    "failed_skills", "errors", "warnings", "problems", "source_documents", "planning", "uif",
}


@pytest.fixture
def env(dists: Any) -> dict[str, str]:
    dists.add("sof-pipeline", PIPELINE, entry_name="pipeline", version="0.9")
    environment = dists.env()
    environment["SOF_DEFAULT_PLAN"] = "Retrieve,Answer"
    environment["SOF_PLUGINS_ONLY"] = "pipeline"
    return environment


def sof_stdin(data: bytes, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "sof_core.cli", *args], input=data,
                          capture_output=True, env=env, timeout=60, check=False)


def test_json_has_the_schema_the_final_uif_and_its_intermediate_data(
    sof_cli: Any, env: dict[str, str]
) -> None:
    # A plan that does not end in final_response: its product is only in intermediate_data.
    done = sof_cli("run", "what is SOF", "--plan", "Retrieve", "Summarise", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == TOP_KEYS
    assert data["schema"] == "sof.run/1" and data["schema_version"] == 1
    assert data["status"] == "success" and data["final_response"] is None
    assert data["uif"]["intermediate_data"]["summary"] == {"count": 1, "first": "SOF"}
    assert data["uif"]["input_query"] == data["query"] == "what is SOF"
    assert [s["skill"] for s in data["skills"]] == ["Retrieve", "Summarise"]
    assert set(data["timings_ms"]) == {"plugins", "planning", "compile", "run"}
    assert all(isinstance(v, float) for v in data["timings_ms"].values())
    assert "results" not in data and "duration" not in data


NOISY = """
    import os, sys
    from sof_core import BaseSkillModule, hookimpl

    print("plugin import chatter")

    class Chatty(BaseSkillModule):
        skill_name = "Chatty"
        skill_description = "prints while it runs, as libraries do"
        required_inputs = ["input_query"]
        output_keys = ["chatty"]
        def execute(self, uif):
            print("chatty skill was here")
            os.write(1, b"raw descriptor write\\n")
            uif.intermediate_data["chatty"] = "done"
            return uif

    class Isolated(Chatty):
        skill_name = "Isolated"
        output_keys = ["isolated"]
        isolation = "process"
        def execute(self, uif):
            print("isolated skill was here", flush=True)
            uif.intermediate_data["isolated"] = "done"
            return uif

    @hookimpl
    def sof_register_skills():
        return [Chatty, Isolated]
"""


def test_what_plugins_and_skills_print_never_reaches_stdout(
    sof_cli: Any, dists: Any
) -> None:
    # A skill's print() (or an isolated one's, or a plugin's at import) went to stdout and
    # broke `sof run --json` and `--output KEY` for scripts; it goes to stderr now.
    dists.add("sof-noisy", NOISY, entry_name="noisy")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "noisy"}
    done = sof_cli("run", "q", "--plan", "Chatty", "Isolated", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # nothing else on stdout
    assert data["uif"]["intermediate_data"] == {"chatty": "done", "isolated": "done"}
    for line in ("plugin import chatter", "chatty skill was here", "raw descriptor write",
                 "isolated skill was here"):
        assert line in done.stderr
    value = sof_cli("run", "q", "--plan", "Chatty", "--output", "chatty", env=env)
    assert value.stdout == "done\n", value.stdout


def test_a_failed_skill_is_in_skills_errors_and_failed_skills(
    sof_cli: Any, env: dict[str, str]
) -> None:
    done = sof_cli("run", "q", "--plan", "Crash", "--json", env=env)
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert data["status"] == "failure" and data["failed_skills"] == ["Crash"]
    crash = data["skills"][0]
    assert crash["status"] == "failed" and crash["error_type"] == "RuntimeError"
    assert any("disk full" in error for error in data["errors"])


def test_an_invalid_plan_is_reported_in_the_same_schema(sof_cli: Any, env: dict[str, str]) -> None:
    done = sof_cli("run", "q", "--plan", "Nope", "--json", env=env)
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert set(data) == TOP_KEYS
    assert data["status"] == "invalid" and data["problems"][0]["code"] == "unknown_skill"
    assert data["uif"]["input_query"] == "q"


def test_output_prints_one_key_strings_raw_and_other_values_as_json(
    sof_cli: Any, env: dict[str, str]
) -> None:
    text = sof_cli("run", "what is SOF", "--output", "final_response", env=env)
    assert text.returncode == 0, text.stderr
    assert text.stdout == "Answer: what is SOF\n"
    passages = sof_cli("run", "q", "--output", "passages", env=env)
    assert json.loads(passages.stdout) == ["SOF runs skills as a graph"]
    score = sof_cli("run", "q", "--output", "confidence_score", env=env)
    assert score.stdout.strip() == "0.8"


def test_output_of_a_missing_key_names_it_and_the_keys_there_are(
    sof_cli: Any, env: dict[str, str]
) -> None:
    done = sof_cli("run", "q", "--output", "pasages", env=env)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "'pasages'" in lines[0]
    assert "did you mean 'passages'?" in lines[0]
    assert "passages" in lines[0] and "final_response" in lines[0]
    both = sof_cli("run", "q", "--output", "passages", "--json", env=env)
    assert both.returncode == 2 and "not both" in both.stderr


def test_dash_reads_one_query_from_standard_input_like_a_normal_run(env: dict[str, str]) -> None:
    done = sof_stdin(b"what is SOF?\n", "run", "-", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["schema"] == RUN_SCHEMA and data["final_response"] == "Answer: what is SOF?"


def test_dash_with_several_queries_runs_them_like_file(env: dict[str, str]) -> None:
    done = sof_stdin(b"first\n\n# a comment\nsecond\n", "run", "-", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["schema"] == "sof.batch/1"
    assert [i["final_response"] for i in data["items"]] == ["Answer: first", "Answer: second"]


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "no query on standard input"), (b"\n  \n", "no query on standard input"),
     (b"\x00\x01binary", "binary"), (b"caf\xe9\n", "not UTF-8")],
)
def test_unusable_standard_input_is_a_one_line_usage_error(
    env: dict[str, str], data: bytes, message: str
) -> None:
    done = sof_stdin(data, "run", "-", env=env)
    stderr = done.stderr.decode()
    assert done.returncode == 2 and message in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def test_batch_json_items_are_the_run_schema(
    sof_cli: Any, env: dict[str, str], tmp_path: Path
) -> None:
    queries = tmp_path / "queries.txt"
    queries.write_text("first\nsecond\n", encoding="utf-8")
    done = sof_cli("run", "--file", str(queries), "--plan", "Retrieve", "Summarise", "--json",
                   env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["schema"] == "sof.batch/1" and data["summary"]["count"] == 2
    for index, item in enumerate(data["items"]):
        assert set(item) >= TOP_KEYS
        assert item["schema"] == "sof.run/1" and item["index"] == index
        assert item["uif"]["intermediate_data"]["summary"]["first"] == "SOF"
    invalid = json.loads(sof_cli("run", "--file", str(queries), "--plan", "Nope", "--json",
                                 env=env).stdout)
    item = invalid["items"][0]
    assert set(item) >= TOP_KEYS and item["status"] == "invalid"
    assert item["problems"][0]["code"] == "unknown_skill" and item["query"] == "first"


# --- the documentation shows the real output ------------------------------------------------


def _doc_json_example() -> dict[str, Any]:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    runs = [json.loads(b) for b in blocks if '"schema": "sof.run/1"' in b]
    assert runs, "docs/cli.md must show a real `sof run --json` output"
    return runs[0]


def test_docs_show_the_keys_the_real_output_has(sof_cli: Any, env: dict[str, str]) -> None:
    real = json.loads(sof_cli("run", "q", "--plan", "Retrieve", "Summarise", "--json",
                              env=env).stdout)
    shown = _doc_json_example()
    assert set(shown) == set(real)
    assert set(shown["uif"]) == set(real["uif"])
    assert set(shown["timings_ms"]) == set(real["timings_ms"])
    assert set(shown["skills"][0]) == set(real["skills"][0])


def test_docs_table_describes_every_top_level_key_and_no_other() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## The run's JSON"):]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))
    assert documented == TOP_KEYS


# --- the API that builds it ---------------------------------------------------------------


class Odd(BaseSkillModule):
    skill_name = "Odd"
    skill_description = "leaves a value JSON cannot hold"
    output_keys = ["odd"]
    max_execution_time = None

    def execute(self, uif: Any) -> Any:
        uif.intermediate_data["odd"] = object()
        return uif


def test_a_report_always_serialises() -> None:
    report = make_engine([Odd]).run_query("q", ["Odd"])
    data = json.loads(report.to_json())
    assert data["schema"] == RUN_SCHEMA and "object object" in data["uif"]["intermediate_data"]["odd"]


def test_run_query_measures_planning_compiling_and_running() -> None:
    report = make_engine([Odd]).run_query("q", goal=["odd"])
    assert set(report.timings) == {"planning", "compile", "run"}
    assert all(seconds >= 0 for seconds in report.timings.values())
    assert report.to_dict()["timings_ms"]["plugins"] is None


def test_not_run_reports_use_the_same_schema() -> None:
    report = ExecutionReport.not_run(["X"], UIF(input_query="q"), "could not start",
                                     status="error")
    data = report.to_dict()
    assert set(data) == TOP_KEYS and data["status"] == "error"
    assert data["errors"] == ["could not start"]
