"""What a black-box probe of the `sof` command found, each run as a user runs it (a real
subprocess over real plugin distributions): explicit empty values, a distribution that
declares two plugins, closed standard streams, `sof new-plugin` names that collide with the
generated project's own files, and a hand-corrupted plugin-command cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sof_core.cli.new_plugin import core_requirement, project_layout

GOOD = """
    from sof_core import BaseSkillModule, hookimpl

    class ProbeTwoGoodSkill(BaseSkillModule):
        skill_name = "ProbeTwoGoodSkill"
        skill_description = "good"
        required_inputs = ["input_query"]
        output_keys = ["probe_two"]
        def execute(self, uif):
            uif.intermediate_data["probe_two"] = 1
            return uif

    @hookimpl
    def sof_register_skills():
        return [ProbeTwoGoodSkill]
"""

COMMANDS = """
    from sof_core import hookimpl

    @hookimpl
    def sof_register_commands(subparsers):
        p = subparsers.add_parser("hello", help="say hello (added by a plugin)")
        p.set_defaults(func=lambda args: print("hello from a plugin") or 0)
"""


def _sof(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120,
         **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sof_core.cli", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, **options)


def _usage_error(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout[:300], done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sof: error: "), done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# --- 1. an explicit empty value is a usage error ------------------------------------------


def test_sof_plugins_with_an_empty_name_is_a_usage_error(dists: Any, tmp_path: Path) -> None:
    # It showed the built-in sof-executors in detail (exit 0).
    env = dists.env()
    for args in (("plugins", ""), ("plugins", "", "--json"), ("plugins", " ")):
        done = _sof(*args, cwd=tmp_path, env=env)
        _usage_error(done, "NAME is empty")
        assert done.stdout == ""


def test_sof_plugins_check_with_an_empty_name_does_not_check_every_plugin(
    dists: Any, tmp_path: Path
) -> None:
    dists.add("sof-probe-good", GOOD, entry_name="probegood")
    for args in (("plugins", "check", ""), ("plugins", "check", "probegood", "", "--json")):
        done = _sof(*args, cwd=tmp_path, env=dists.env())
        _usage_error(done, "NAME is empty")
        assert done.stdout == ""


def test_sof_plan_with_an_empty_query_is_refused_like_sof_run(
    dists: Any, tmp_path: Path
) -> None:
    env = dists.env()
    for query in ("", "  "):
        _usage_error(_sof("run", query, cwd=tmp_path, env=env), "QUERY is empty")
        _usage_error(_sof("plan", query, cwd=tmp_path, env=env), "QUERY is empty")
        _usage_error(_sof("plan", query, "--json", cwd=tmp_path, env=env), "QUERY is empty")


def test_sof_new_plugin_with_an_empty_directory_writes_nothing(
    isolated_env: None, tmp_path: Path
) -> None:
    # `--directory ""` was read as "not given" and wrote ./sof-probeempty.
    _usage_error(_sof("new-plugin", "sof-probeempty", "--directory", "", cwd=tmp_path),
                 "--directory is empty")
    _usage_error(_sof("new-plugin", "", cwd=tmp_path), "NAME is empty")
    assert not (tmp_path / "sof-probeempty").exists()


# --- 2. a distribution that declares two plugins --------------------------------------------


def _two_plugin_distribution(dists: Any) -> None:
    module = dists.add("sof-probe-two", GOOD, entry_name="probetwoa",
                       requires=[core_requirement()])
    (dists.root / f"{module}_bad.py").write_text(
        'raise ImportError("the second plugin of sof-probe-two is broken")\n')
    (info,) = dists.root.glob("sof_probe_two-*.dist-info")
    (info / "entry_points.txt").write_text(
        f"[sof.plugins]\nprobetwoa = {module}\nprobetwob = {module}_bad\n")


def test_checking_a_distribution_checks_every_plugin_it_declares(
    dists: Any, tmp_path: Path
) -> None:
    # Only the first plugin was checked (exit 0), the broken second one never.
    _two_plugin_distribution(dists)
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "probetwoa,probetwob"}
    for name in ("sof-probe-two", "SOF_Probe_Two"):
        done = _sof("plugins", "check", name, "--json", cwd=tmp_path, env=env, timeout=300)
        assert done.returncode == 1, done.stderr
        results = {item["plugin"]: item["passed"] for item in json.loads(done.stdout)}
        assert results == {"probetwoa": True, "probetwob": False}
    text = _sof("plugins", "check", "sof-probe-two", cwd=tmp_path, env=env, timeout=300)
    assert text.returncode == 1
    assert "plugin probetwoa (sof-probe-two 1.0): passed" in text.stdout
    assert "plugin probetwob (sof-probe-two 1.0): FAILED" in text.stdout
    # By its entry-point name, one plugin is still one plugin.
    one = _sof("plugins", "check", "probetwoa", "--json", cwd=tmp_path, env=env, timeout=300)
    assert one.returncode == 0 and [i["plugin"] for i in json.loads(one.stdout)] == ["probetwoa"]


def test_showing_a_distribution_shows_every_plugin_it_declares(
    dists: Any, tmp_path: Path
) -> None:
    _two_plugin_distribution(dists)
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "probetwoa,probetwob"}
    shown = _sof("plugins", "sof-probe-two", cwd=tmp_path, env=env)
    assert shown.returncode == 1, shown.stderr  # one of them failed to load
    assert "plugin probetwoa\n" in shown.stdout and "plugin probetwob\n" in shown.stdout
    assert "the second plugin of sof-probe-two is broken" in shown.stdout
    as_json = _sof("plugins", "sof-probe-two", "--json", cwd=tmp_path, env=env)
    assert as_json.returncode == 1
    listed = {item["name"]: item["status"] for item in json.loads(as_json.stdout)}
    assert listed == {"probetwoa": "loaded", "probetwob": "failed"}
    single = _sof("plugins", "probetwoa", "--json", cwd=tmp_path, env=env)
    assert single.returncode == 0 and json.loads(single.stdout)["name"] == "probetwoa"


# --- 3. closed standard streams -------------------------------------------------------------


def _closing(*fds: int) -> Any:
    def close() -> None:
        for fd in fds:
            os.close(fd)
    return close


@pytest.mark.skipif(sys.platform == "win32", reason="preexec_fn is POSIX only")
def test_sof_run_dash_with_stdin_closed_is_the_empty_stdin_usage_error(
    isolated_env: None, tmp_path: Path
) -> None:
    # `sof run - <&-` ended with "AttributeError: 'NoneType' object has no attribute 'buffer'".
    done = _sof("run", "-", cwd=tmp_path, stdin=None, preexec_fn=_closing(0))
    _usage_error(done, "no query on standard input")


@pytest.mark.skipif(sys.platform == "win32", reason="preexec_fn is POSIX only")
def test_closed_stdout_or_stderr_is_written_nowhere_with_the_usual_exit_code(
    isolated_env: None, tmp_path: Path
) -> None:
    # `sof skills >&-` ended with "AttributeError: ... 'isatty'" (exit 1).
    command = [sys.executable, "-m", "sof_core.cli"]
    no_stdout = subprocess.run([*command, "skills"], cwd=tmp_path, stderr=subprocess.PIPE,
                               text=True, timeout=120, preexec_fn=_closing(1), check=False)
    assert no_stdout.returncode == 0 and no_stdout.stderr == "", no_stdout.stderr
    no_stderr = subprocess.run([*command, "skills", "NoSuchSkill"], cwd=tmp_path,
                               stdout=subprocess.PIPE, text=True, timeout=120,
                               preexec_fn=_closing(2), check=False)
    assert no_stderr.returncode == 2 and no_stderr.stdout == ""
    nothing = subprocess.run([*command, "run", "-"], cwd=tmp_path, timeout=120,
                             preexec_fn=_closing(0, 1, 2), check=False)
    assert nothing.returncode == 2


# --- 4. new-plugin names that collide with the project's own layout -----------------------


@pytest.mark.parametrize("name", ["tests", "noxfile", "docs", "build", "dist", "README",
                                  "pyproject"])
def test_new_plugin_refuses_a_package_named_like_the_projects_own_files(
    isolated_env: None, tmp_path: Path, name: str
) -> None:
    # `sof new-plugin tests` wrote its package into tests/tests/, `noxfile` a noxfile/
    # package beside noxfile.py.
    line = _usage_error(_sof("new-plugin", name, cwd=tmp_path), f"plugin name {name!r}",
                        "clashes with the project's own", "choose another")
    assert f"sof-{name.lower()}" in line
    assert not (tmp_path / name.lower()).exists()


def test_the_refused_layout_names_are_what_the_templates_write() -> None:
    layout = project_layout()
    for name in ("tests", "noxfile", "pyproject", "readme", "build", "dist", "docs"):
        assert name in layout, layout


def test_new_plugin_with_a_prefixed_layout_name_is_fine(
    isolated_env: None, tmp_path: Path
) -> None:
    done = _sof("new-plugin", "sof-tests", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "sof-tests" / "sof_tests" / "plugin.py").exists()


# --- 5. a hand-corrupted plugin-command cache ----------------------------------------------


@pytest.mark.parametrize("commands", [[[1, 2]], [["hello"]], "he", [["", "x"]], {"a": "b"},
                                      [["hello", None]], [["--x", "y"]]])
def test_a_malformed_command_cache_is_rebuilt_as_if_missing(
    dists: Any, tmp_path: Path, commands: Any
) -> None:
    dists.add("sof-greeter", textwrap.dedent(COMMANDS), entry_name="greeter")
    env = {**dists.env(), "SOF_PLUGINS_ONLY": "greeter", "XDG_CACHE_HOME": str(tmp_path)}
    first = _sof("--help", cwd=tmp_path, env=env)
    assert "say hello (added by a plugin)" in first.stdout
    cache = tmp_path / "sof" / "commands.json"
    stored = json.loads(cache.read_text())
    ((key, _),) = stored["entries"]
    cache.write_text(json.dumps({"entries": [[key, commands]]}))
    shown = _sof("--help", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == first.stdout
    assert json.loads(cache.read_text()) == stored  # written again as the load left it


# --- a goal the query's UIF already holds -------------------------------------------------


@pytest.mark.parametrize("command", [["run", "q"], ["validate"], ["graph"]])
def test_a_goal_already_met_is_an_error_not_the_planners_plan(
        command: list[str], tmp_path: Path) -> None:
    # `sof run q --goal input_query` ran the configured planner's plan (resolve_goal is [])
    env = {**os.environ, "SOF_CONFIG": str(tmp_path / "none.json"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "d")}
    done = _sof(*command, "--goal", "input_query", cwd=tmp_path, env=env)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "the goal ['input_query'] needs no skill" in done.stderr
    assert "status:" not in done.stdout


def test_the_contract_check_sets_no_memory_path_nothing_reads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # without sof-memory installed, every check warned about SOF_MEMORY_PATH, set by SOF
    import sof_core._installed as installed
    from sof_core.cli import contract

    monkeypatch.delenv("SOF_MEMORY_PATH", raising=False)
    monkeypatch.setattr(installed, "plugin_variable", lambda var, path=None: False)
    with contract._isolated():
        assert "SOF_MEMORY_PATH" not in os.environ
        assert os.environ["XDG_CACHE_HOME"].endswith("cache")
    monkeypatch.setattr(installed, "plugin_variable", lambda var, path=None: True)
    with contract._isolated():
        assert os.environ["SOF_MEMORY_PATH"].endswith("memory.db")
    assert "SOF_MEMORY_PATH" not in os.environ
