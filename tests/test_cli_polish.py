"""The `sof` command's rough edges, each run as a user runs it (a real subprocess over real
plugin distributions): logging, --trace timings, table width, --version, detail views,
plugin commands in --help, argument checks, goal planning, and one-line errors."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from sof_core import GoalResolutionError
from sof_core.execution.report import SkillResult
from sof_core.testing import make_engine

PIPELINE = """
    import logging
    from sof_core import BaseSkillModule, hookimpl

    class Retrieve(BaseSkillModule):
        skill_name = "Retrieve"
        skill_version = "1.4.0"
        skill_description = "find passages"
        required_inputs = ["input_query"]
        output_keys = {"passages": list}
        def execute(self, uif):
            chatty = logging.getLogger("chatty.library")
            chatty.setLevel(logging.INFO)  # as Dask's `distributed` does when imported
            chatty.info("chatty third-party detail")
            logging.getLogger("sof.skill.Retrieve").info("own progress note")
            uif.intermediate_data["passages"] = ["SOF runs skills as a graph"]
            return uif

    class Check(BaseSkillModule):
        skill_name = "Check"
        skill_description = "check passages"
        required_inputs = [("passages", list)]
        output_keys = ["checked"]
        def execute(self, uif):
            uif.intermediate_data["checked"] = True
            return uif

    class Answer(BaseSkillModule):
        skill_name = "Answer"
        skill_description = "answer from passages"
        required_inputs = ["input_query", ("passages", list)]
        optional_inputs = ["checked"]
        output_keys = ["final_response"]
        def execute(self, uif):
            uif.final_response = "Answer: " + uif.intermediate_data["passages"][0]
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
        return [Retrieve, Check, Answer, Crash]
"""

OTHER_ANSWER = """
    from sof_core import BaseSkillModule, hookimpl

    class ShortAnswer(BaseSkillModule):
        skill_name = "ShortAnswer"
        skill_description = "a short answer"
        required_inputs = ["input_query"]
        output_keys = ["final_response"]
        def execute(self, uif):
            uif.final_response = "short"
            return uif

    @hookimpl
    def sof_register_skills():
        return [ShortAnswer]
"""

COMMANDS = """
    from sof_core import hookimpl

    def _hello(args):
        print("hello from a plugin")
        return 0

    def _boom(args):
        raise RuntimeError("kaput")

    @hookimpl
    def sof_register_commands(subparsers):
        p = subparsers.add_parser("hello", help="say hello (added by a plugin)")
        p.set_defaults(func=_hello)
        p = subparsers.add_parser("boom", help="fails unexpectedly")
        p.set_defaults(func=_boom)
"""

BROKEN_COMMANDS = """
    from sof_core import hookimpl

    @hookimpl
    def sof_register_commands(subparsers):
        subparsers.add_parser("halfway", help="added before the hook raised")
        raise ValueError("cannot build my commands")
"""

CLASHING_COMMANDS = """
    from sof_core import hookimpl

    @hookimpl
    def sof_register_commands(subparsers):
        subparsers.add_parser("run", help="tries to replace a core command")
"""


def one_line_error(done: Any, code: int = 2) -> str:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return str(lines[0])


@pytest.fixture
def env(dists: Any) -> dict[str, str]:
    dists.add("sof-pipeline", PIPELINE, entry_name="pipeline", version="0.9")
    environment = dists.env()
    environment["SOF_DEFAULT_PLAN"] = "Retrieve,Answer"
    environment["SOF_PLUGINS_ONLY"] = "pipeline"
    environment.pop("SOF_LOG_LEVEL", None)
    environment.pop("COLUMNS", None)
    return environment


# --- logging -------------------------------------------------------------------------------


def test_third_party_info_logs_stay_hidden_unless_debug(sof_cli: Any, env: dict[str, str]) -> None:
    env["SOF_LOG_LEVEL"] = "INFO"
    info = sof_cli("run", "q", env=env)
    assert info.returncode == 0, info.stderr
    assert "own progress note" in info.stderr
    assert "chatty third-party detail" not in info.stderr
    env["SOF_LOG_LEVEL"] = "DEBUG"
    debug = sof_cli("run", "q", env=env)
    assert "chatty third-party detail" in debug.stderr and "[chatty.library]" in debug.stderr


def test_a_dask_run_prints_no_dask_info_lines(sof_cli: Any, env: dict[str, str]) -> None:
    pytest.importorskip("sof_dask")
    env["SOF_PLUGINS_ONLY"] = "pipeline,dask"
    done = sof_cli("run", "q", "--executor", "dask", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Answer: SOF runs skills as a graph" in done.stdout
    assert "INFO" not in done.stderr, done.stderr


# --- --trace -------------------------------------------------------------------------------


def test_trace_splits_the_time_into_phases(sof_cli: Any, env: dict[str, str]) -> None:
    done = sof_cli("run", "q", "--trace", env=env)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("time: plugins"))
    for phase in ("plugins", "planning", "compiling", "running", "total"):
        assert f"{phase} " in line
    timings = json.loads(sof_cli("run", "q", "--json", env=env).stdout)["timings_ms"]
    assert timings["plugins"] > 0 and timings["compile"] > 0 and timings["run"] > 0


@pytest.mark.skipif("traceback" not in getattr(SkillResult, "__dataclass_fields__", {}),
                    reason="SkillResult.traceback is not recorded by this build")
def test_trace_shows_a_failed_skills_traceback(sof_cli: Any, env: dict[str, str]) -> None:
    done = sof_cli("run", "q", "--plan", "Crash", "--trace", env=env)
    assert done.returncode == 1
    assert "Traceback of Crash" in done.stdout
    assert 'raise RuntimeError("disk full")' in done.stdout


# --- tables --------------------------------------------------------------------------------


def test_tables_fit_the_terminal_width_and_lose_nothing(sof_cli: Any, dists: Any) -> None:
    words = " ".join(f"word{i}" for i in range(40))
    dists.add("sof-broken", f"raise RuntimeError({words!r})", entry_name="broken")
    env = dists.env()
    env["SOF_PLUGINS_ONLY"] = "broken"
    env["COLUMNS"] = "70"
    done = sof_cli("plugins", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 70, done.stdout
    assert all(f"word{i}" in done.stdout for i in range(40))
    env["COLUMNS"] = "400"
    wide = sof_cli("plugins", env=env).stdout
    assert any("word0" in line and "word39" in line for line in wide.splitlines())


# --- --version -----------------------------------------------------------------------------


def test_version_lists_plugin_versions_without_importing_them(
    sof_cli: Any, dists: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "imported"
    dists.add("sof-spy", f"open({str(marker)!r}, 'w').close()", entry_name="spy",
              version="2.5.1")
    done = sof_cli("--version", env=dists.env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sof-core ")
    assert any(line.split() == ["spy", "sof-spy", "2.5.1"] for line in done.stdout.splitlines())
    assert not marker.exists()


# --- one item in detail --------------------------------------------------------------------


def test_skills_name_shows_one_skill_in_detail(sof_cli: Any, env: dict[str, str]) -> None:
    done = sof_cli("skills", "Answer", env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("skill Answer ")
    assert "answer from passages" in out and "passages: list" in out and "checked" in out
    assert "pipeline" in out
    retrieve = sof_cli("skills", "Retrieve", env=env).stdout
    assert "read by" in retrieve and "Answer, Check" in retrieve
    data = json.loads(sof_cli("skills", "Answer", "--json", env=env).stdout)
    assert data["name"] == "Answer" and data["plugin"] == "pipeline"


def test_plugins_name_shows_one_plugin_in_detail(sof_cli: Any, env: dict[str, str]) -> None:
    done = sof_cli("plugins", "pipeline", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("plugin pipeline")
    assert "sof-pipeline 0.9" in done.stdout and "Retrieve" in done.stdout
    by_distribution = sof_cli("plugins", "sof-pipeline", env=env)
    assert by_distribution.stdout.startswith("plugin pipeline\n")
    data = json.loads(sof_cli("plugins", "pipeline", "--json", env=env).stdout)
    assert data["name"] == "pipeline" and data["status"] == "loaded"


def test_an_unknown_name_is_one_line_with_a_suggestion(sof_cli: Any, env: dict[str, str]) -> None:
    skill_line = one_line_error(sof_cli("skills", "Retreive", env=env))
    assert "'Retreive'" in skill_line and "did you mean 'Retrieve'?" in skill_line
    plugin_line = one_line_error(sof_cli("plugins", "pipelin", env=env))
    assert "did you mean 'pipeline'?" in plugin_line


# --- plugin commands -----------------------------------------------------------------------


def test_commands_that_plugins_add_appear_in_help_and_run(sof_cli: Any, dists: Any) -> None:
    dists.add("sof-greeter", COMMANDS, entry_name="greeter")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "greeter"}
    help_text = sof_cli("--help", env=env)
    assert help_text.returncode == 0, help_text.stderr
    assert "hello" in help_text.stdout and "say hello (added by a plugin)" in help_text.stdout
    assert "run" in help_text.stdout
    bare = sof_cli(env=env)
    assert "say hello" in bare.stdout
    hello = sof_cli("hello", env=env)
    assert hello.returncode == 0 and hello.stdout == "hello from a plugin\n"


def test_the_help_lists_plugin_commands_without_importing_plugins_once_it_has_seen_them(
    sof_cli: Any, dists: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "imports.log"
    source = f"open({str(marker)!r}, 'a').write('imported\\n')\n" + textwrap.dedent(COMMANDS)
    dists.add("sof-greeter", source, entry_name="greeter")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "greeter", "XDG_CACHE_HOME": str(tmp_path)}

    def imports() -> int:
        return len(marker.read_text().splitlines()) if marker.exists() else 0

    first = sof_cli("--help", env=env)
    assert "say hello (added by a plugin)" in first.stdout and imports() == 1
    second = sof_cli("--help", env=env)
    assert second.stdout == first.stdout and imports() == 1  # from the cache, no import
    assert (tmp_path / "sof" / "commands.json").exists()
    # Anything the commands depend on changes: the plugins are loaded again.
    hidden = sof_cli("--help", env={**env, "SOF_PLUGINS_DISABLE": "greeter"})
    assert "say hello" not in hidden.stdout and imports() == 1  # disabled: never imported
    # Each environment keeps its entry: going back and forth rebuilds neither.
    for _ in range(2):
        assert sof_cli("--help", env=env).stdout == first.stdout and imports() == 1
        again = sof_cli("--help", env={**env, "SOF_PLUGINS_DISABLE": "greeter"})
        assert again.stdout == hidden.stdout and imports() == 1
    entries = json.loads((tmp_path / "sof" / "commands.json").read_text())["entries"]
    assert len(entries) == 2
    (info,) = dists.root.glob("sof_greeter-*.dist-info")
    os.utime(info / "METADATA", ns=(1, 1))  # an upgrade or reinstall rewrites the metadata
    assert "say hello" in sof_cli("--help", env=env).stdout and imports() == 2
    assert sof_cli("hello", env=env).stdout == "hello from a plugin\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_in_place_of_the_command_cache_does_not_hang_help(
    sof_cli: Any, dists: Any, tmp_path: Path
) -> None:
    # The cache file was read as a file whatever it was: a FIFO in its place hung
    # `sof --help` for good. It is now read only if it is a regular file.
    dists.add("sof-greeter", COMMANDS, entry_name="greeter")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "greeter", "XDG_CACHE_HOME": str(tmp_path)}
    (tmp_path / "sof").mkdir()
    os.mkfifo(tmp_path / "sof" / "commands.json")
    shown = sof_cli("--help", env=env, timeout=30)  # a hang bound
    assert shown.returncode == 0, shown.stderr
    assert "say hello (added by a plugin)" in shown.stdout


def test_a_plugin_whose_command_hook_raises_does_not_break_help(
    sof_cli: Any, dists: Any
) -> None:
    dists.add("sof-greeter", COMMANDS, entry_name="greeter")
    dists.add("sof-broken-cli", BROKEN_COMMANDS, entry_name="brokencli")
    dists.add("sof-clash-cli", CLASHING_COMMANDS, entry_name="clashcli")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "greeter,brokencli,clashcli"}
    for _ in range(2):  # a plugin problem is never cached away (cli/command_cache.py)
        done = sof_cli("--help", env=env)
        assert done.returncode == 0, done.stderr
        assert "say hello" in done.stdout and "halfway" not in done.stdout
        assert "Traceback" not in done.stderr
        warnings = done.stderr.strip().splitlines()
        assert any("'brokencli'" in w and "cannot build my commands" in w for w in warnings)
        assert any("'clashcli'" in w for w in warnings)
    # the core command the other plugin tried to take still works
    run_help = sof_cli("run", "--help", env=env)
    assert run_help.returncode == 0 and "--output KEY" in run_help.stdout


HUNG_COMMANDS = """
    import threading
    from sof_core import hookimpl

    @hookimpl
    def sof_register_commands(subparsers):
        subparsers.add_parser("late", help="added after the hook gave up")
        threading.Event().wait(60)  # asks a server that never answers
"""


def test_a_plugin_whose_command_hook_hangs_does_not_hold_the_cli(
    sof_cli: Any, dists: Any
) -> None:
    """Before: ``sof --help`` (and every plugin command) waited for it forever."""
    dists.add("sof-greeter", COMMANDS, entry_name="greeter")
    dists.add("sof-hung-cli", HUNG_COMMANDS, entry_name="hungcli")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "greeter,hungcli",
           "SOF_PLUGIN_IMPORT_TIMEOUT": "0.5"}
    started = time.monotonic()
    done = sof_cli("--help", env=env, timeout=30)
    assert time.monotonic() - started < 20  # hangs only
    assert done.returncode == 0, done.stderr
    assert "say hello" in done.stdout and "late" not in done.stdout
    assert ("plugin 'hungcli' failed to add its commands (sof_register_commands did not "
            "return within 0.5 s (plugin_import_timeout))") in done.stderr
    hello = sof_cli("hello", env=env, timeout=30)
    assert hello.returncode == 0 and "hello from a plugin" in hello.stdout


SIGNAL_COMMANDS = """
    import signal
    from sof_core import hookimpl

    def _ping(args):
        print("pong")
        return 0

    @hookimpl
    def sof_register_commands(subparsers):
        subparsers.add_parser("ping", help="added before the signal handler").set_defaults(
            func=_ping)
        signal.signal(signal.SIGUSR2, lambda *a: None)  # main thread only
"""


def test_a_command_hook_that_needs_the_main_thread_still_adds_its_commands(
    sof_cli: Any, dists: Any
) -> None:
    dists.add("sof-signal-cli", SIGNAL_COMMANDS, entry_name="signalcli")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "signalcli"}
    done = sof_cli("ping", env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pong" in done.stdout and "failed to add" not in done.stderr


def test_an_unexpected_error_is_one_line_and_its_traceback_is_at_debug(
    sof_cli: Any, dists: Any
) -> None:
    dists.add("sof-greeter", COMMANDS, entry_name="greeter")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "greeter"}
    line = one_line_error(sof_cli("boom", env=env), code=1)
    assert line == ("sof: error: RuntimeError: kaput (run with SOF_LOG_LEVEL=DEBUG for the "
                    "traceback)")
    env["SOF_LOG_LEVEL"] = "DEBUG"
    debug = sof_cli("boom", env=env)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "_boom" in debug.stderr
    # ... and the last line no longer asks for what is printed above it
    assert debug.stderr.rstrip().splitlines()[-1] == "sof: error: RuntimeError: kaput"


# --- argument checks -----------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", ["0", "-3"])
def test_run_file_rejects_a_concurrency_below_one(
    sof_cli: Any, env: dict[str, str], tmp_path: Path, concurrency: str
) -> None:
    queries = tmp_path / "q.txt"
    queries.write_text("a\nb\n", encoding="utf-8")
    line = one_line_error(sof_cli("run", "--file", str(queries), "--concurrency", concurrency,
                                  env=env))
    assert "--concurrency" in line and concurrency in line


def test_run_file_rejects_a_query_beside_it(
    sof_cli: Any, env: dict[str, str], tmp_path: Path
) -> None:
    queries = tmp_path / "q.txt"
    queries.write_text("a\n", encoding="utf-8")
    line = one_line_error(sof_cli("run", "what", "--file", str(queries), env=env))
    assert "not both" in line and "'what'" in line


def test_options_for_one_run_are_refused_for_many(
    sof_cli: Any, env: dict[str, str], tmp_path: Path
) -> None:
    queries = tmp_path / "q.txt"
    queries.write_text("a\nb\n", encoding="utf-8")
    line = one_line_error(sof_cli("run", "--file", str(queries), "--output", "x", env=env))
    assert "--output applies to a single query" in line


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\x00\x01\x02\xff" * 64, "is binary"), (b"good line\n\xc3\x28 bad\n", "not UTF-8 text")],
)
def test_run_file_on_a_binary_or_non_utf8_file_is_one_line(
    sof_cli: Any, env: dict[str, str], tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "queries.bin"
    path.write_bytes(content)
    line = one_line_error(sof_cli("run", "--file", str(path), env=env))
    assert message in line and str(path) in line


@pytest.mark.parametrize("bad", ["novalue", "=Answer", "final_response="])
def test_prefer_without_key_and_skill_is_one_line(
    sof_cli: Any, env: dict[str, str], bad: str
) -> None:
    line = one_line_error(sof_cli("run", "q", "--goal", "final_response", "--prefer", bad,
                                  env=env))
    assert "--prefer expects KEY=SKILL" in line and repr(bad) in line


def test_deep_or_non_finite_json_arguments_are_one_line(
    sof_cli: Any, env: dict[str, str], tmp_path: Path
) -> None:
    env["SOF_CONFIG"] = str(tmp_path / "config.json")
    deep = "[" * 5000 + "]" * 5000
    line = one_line_error(sof_cli("config", "set", "default_plan", deep, env=env))
    assert "default_plan" in line and "nested" in line
    line = one_line_error(sof_cli("config", "set", "retry_backoff", "NaN", env=env))
    assert "retry_backoff" in line and "NaN" in line
    assert not (tmp_path / "config.json").exists()


# --- goal planning -------------------------------------------------------------------------


def test_goal_planning_gives_the_same_skills_from_api_and_cli(
    sof_cli: Any, env: dict[str, str], dists: Any
) -> None:
    from sof_core.config import SOFConfig
    from sof_core.execution.coordinator import CoordinatorEngine
    from sof_core.plugins import PluginManager

    engine = CoordinatorEngine(PluginManager(SOFConfig(plugins_only=["pipeline"])))
    for extra in ([], ["--include-optional"]):
        include = bool(extra)
        api = engine.resolve_goal(["final_response"], include_optional=include)
        ran = engine.run_query("q", goal=["final_response"], include_optional=include)
        cli = json.loads(sof_cli("run", "q", "--goal", "final_response", *extra, "--json",
                                 env=env).stdout)
        graph = json.loads(sof_cli("graph", "--goal", "final_response", *extra, "--format",
                                   "json", env=env).stdout)
        assert ran.plan == cli["plan"] == graph["plan"] == api
    assert engine.resolve_goal(["final_response"]) == ["Retrieve", "Answer"]


CYCLE = """
    from sof_core import BaseSkillModule, hookimpl

    class CycA(BaseSkillModule):
        skill_name = "CycA"
        skill_description = "needs cb, makes ca"
        required_inputs = ["cb"]
        output_keys = ["ca"]
        def execute(self, uif):
            return uif

    class CycB(BaseSkillModule):
        skill_name = "CycB"
        skill_description = "needs ca, makes cb"
        required_inputs = ["ca"]
        output_keys = ["cb"]
        def execute(self, uif):
            return uif

    @hookimpl
    def sof_register_skills():
        return [CycA, CycB]
"""


def test_a_goal_whose_producers_form_a_cycle_is_a_goal_error_naming_the_cycle(
    sof_cli: Any, dists: Any
) -> None:
    # Before: networkx's NetworkXUnfeasible, shown as an unexpected error without names.
    dists.add("sof-cycle", CYCLE, entry_name="cycle")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "cycle"}
    cycle = "CycA -[ca]-> CycB; CycB -[cb]-> CycA (CycA -> CycB -> CycA)"
    for command in (["run", "q", "--goal", "ca"], ["graph", "--goal", "ca"],
                    ["validate", "--goal", "ca"]):
        line = one_line_error(sof_cli(*command, env=env), code=1)
        assert cycle in line and "GoalResolutionError" not in line.split(":")[0], line
        assert "NetworkX" not in line
    from sof_core import CoordinatorEngine, SOFConfig

    with CoordinatorEngine(config=SOFConfig(plugins_only=["cycle"])) as engine:
        with pytest.raises(GoalResolutionError, match=r"depend on each other in a cycle"):
            engine.resolve_goal(["ca"])
        assert engine.resolve_goal(["ca"], available=["cb"]) == ["CycA"]


def test_two_producers_of_a_goal_key_are_named_with_how_to_prefer_one(
    sof_cli: Any, env: dict[str, str], dists: Any
) -> None:
    dists.add("sof-other", OTHER_ANSWER, entry_name="other")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "pipeline,other"}
    line = one_line_error(sof_cli("run", "q", "--goal", "final_response", env=env), code=1)
    assert "'Answer'" in line and "'ShortAnswer'" in line
    assert "--prefer final_response=SKILL" in line
    chosen = sof_cli("run", "q", "--goal", "final_response", "--prefer",
                     "final_response=ShortAnswer", "--output", "final_response", env=env)
    assert chosen.returncode == 0 and chosen.stdout == "short\n"


def test_run_query_accepts_prefer_like_resolve_goal(make_skill: Any) -> None:
    first = make_skill("First", outputs=["final_response"])
    second = make_skill("Second", outputs=["final_response"])
    engine = make_engine([first, second])
    with pytest.raises(GoalResolutionError, match=r"prefer=\{'final_response': \.\.\.\}"):
        engine.run_query("q", goal=["final_response"])
    report = engine.run_query("q", goal=["final_response"], prefer={"final_response": "Second"})
    assert report.plan == ["Second"]


# --- conflicts -----------------------------------------------------------------------------

DUPLICATE = """
    from sof_core import BaseSkillModule, hookimpl

    class Retrieve(BaseSkillModule):
        skill_name = "Retrieve"
        skill_description = "another plugin's Retrieve"
        required_inputs = ["input_query"]
        output_keys = ["passages"]
        def execute(self, uif):
            uif.intermediate_data["passages"] = []
            return uif

    @hookimpl
    def sof_register_skills():
        return [Retrieve]
"""


def test_skills_and_plugins_show_a_contested_skill_and_how_to_settle_it(
    sof_cli: Any, env: dict[str, str], dists: Any
) -> None:
    dists.add("sof-rival", DUPLICATE, entry_name="rival")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "pipeline,rival"}
    skills = sof_cli("skills", env=env)
    assert skills.returncode == 0, skills.stderr
    unavailable = skills.stdout.split("unavailable:")[1]
    assert "Retrieve" in unavailable and "'pipeline'" in unavailable and "'rival'" in unavailable
    assert "skill_providers" in unavailable
    assert "Answer" in skills.stdout  # the other skills of both plugins load
    line = one_line_error(sof_cli("skills", "Retrieve", env=env), code=1)
    assert "unavailable" in line and "skill_providers" in line
    plugins = sof_cli("plugins", env=env)
    assert "conflicts:" in plugins.stdout and "'Retrieve'" in plugins.stdout


def test_goal_plans_of_the_bundled_plugins_are_the_documented_ones(
    sof_cli: Any, tmp_path: Path
) -> None:
    for module in ("sof_memory", "sof_conflict", "sof_response"):
        pytest.importorskip(module)
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    env["SOF_CONFIG"] = str(tmp_path / "config.json")
    env["SOF_PLUGINS_ONLY"] = "memory,conflict,response"
    minimal = json.loads(sof_cli("graph", "--goal", "final_response", "--format", "json",
                                 env=env).stdout)
    assert minimal["plan"] == ["ResponseGenerationSkill"]
    full = json.loads(sof_cli("graph", "--goal", "final_response", "--include-optional",
                              "--format", "json", env=env).stdout)
    assert full["plan"] == ["MemoryRetrievalSkill", "ConflictDetectorSkill",
                            "ResponseGenerationSkill"]


def test_piped_tables_keep_one_row_per_line(sof_cli: Any, dists: Any) -> None:
    words = " ".join(f"word{i}" for i in range(40))
    dists.add("sof-broken", f"raise RuntimeError({words!r})", entry_name="broken")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "broken"}
    env.pop("COLUMNS", None)
    done = sof_cli("plugins", env=env)
    assert any("word0" in line and "word39" in line for line in done.stdout.splitlines())


def test_plugins_name_of_a_failed_plugin_shows_its_error_and_exits_1(
    sof_cli: Any, dists: Any
) -> None:
    dists.add("sof-broken", "raise RuntimeError('no database driver')", entry_name="broken")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "broken"}
    done = sof_cli("plugins", "broken", env=env)
    assert done.returncode == 1
    assert "status" in done.stdout and "failed" in done.stdout
    assert "no database driver" in done.stdout


def test_arguments_that_are_not_utf8_are_one_line(env: dict[str, str]) -> None:
    import subprocess
    import sys

    def sof_bytes(*args: bytes) -> Any:
        return subprocess.run([sys.executable.encode(), b"-m", b"sof_core.cli", *args],
                              capture_output=True, text=True, env=env, timeout=60, check=False)

    line = one_line_error(sof_bytes(b"run", b"caf\xe9"))
    assert "input_query" in line
    line = one_line_error(sof_bytes(b"run", b"q", b"--context", b"k=caf\xe9"))
    assert "--context" in line and "UTF-8" in line


HALF_BROKEN = """
    from sof_core import BaseSkillModule, hookimpl

    class Fine(BaseSkillModule):
        skill_name = "FineSkill"
        skill_description = "would be fine"
        output_keys = ["fine"]
        def execute(self, uif):
            return uif

    @hookimpl
    def sof_register_skills():
        return [Fine, 42]  # not a skill: the whole plugin fails to register
"""


def test_skills_lists_a_skill_whose_plugin_failed_as_unavailable(
    sof_cli: Any, dists: Any
) -> None:
    dists.add("sof-half", HALF_BROKEN, entry_name="half")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "half"}
    done = sof_cli("skills", env=env)
    assert done.returncode == 0, done.stderr
    unavailable = done.stdout.split("unavailable:")[1]
    assert "FineSkill: its plugin 'half' failed to load" in unavailable
    detail = sof_cli("skills", "FineSkill", env=env)  # (the loader also warns about 'half')
    assert detail.returncode == 1 and "Traceback" not in detail.stderr
    assert "sof: error: skill 'FineSkill' is unavailable: its plugin 'half' failed to load" in (
        detail.stderr.splitlines()[-1]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-", "extra"], "give no other QUERY"),
        (["q", "--prefer", "final_response=Answer"], "--prefer only applies with --goal"),
        (["q", "--include-optional"], "--include-optional only applies with --goal"),
        ([], "give a QUERY"),
    ],
)
def test_run_usage_errors_are_one_line(
    sof_cli: Any, env: dict[str, str], args: list[str], message: str
) -> None:
    assert message in one_line_error(sof_cli("run", *args, env=env))


def test_a_query_file_without_queries_is_a_usage_error(
    sof_cli: Any, env: dict[str, str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n", encoding="utf-8")
    assert "holds no query" in one_line_error(sof_cli("run", "--file", str(empty), env=env))
