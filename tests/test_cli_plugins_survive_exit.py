"""``sof plugins`` lists every plugin whatever one does while it is loaded (docs/cli.md).

A plugin that ends the process as it is imported (``os._exit``, a crash in native code) used
to end ``sof plugins`` with it: its exit code, and nothing printed. The plugins are now
loaded in a forked child (``sof_core.cli.plugin_listing``): the plugin is listed as failed,
saying how the process ended, and every other plugin as usual. Each plugin here is a real
installed distribution (``dists``), run through the real command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from conftest import run_sof

GOOD = """
from sof_core import BaseSkillModule, hookimpl

class SurviveGoodSkill(BaseSkillModule):
    skill_name = "SurviveGoodSkill"
    skill_description = "loads fine"
    required_inputs = ["input_query"]
    output_keys = ["survive_good"]
    def execute(self, uif):
        uif.intermediate_data["survive_good"] = "ok"
        return uif

@hookimpl
def sof_register_skills():
    return [SurviveGoodSkill]
"""
EXITS_AT_IMPORT = "import os\nos._exit(4)\n"
CRASHES_AT_IMPORT = "import ctypes\nctypes.string_at(0)\n"  # a segfault in native code
EXITS_IN_CONFIGURE = """
import os
from sof_core import hookimpl

@hookimpl
def sof_configure(config):
    os._exit(3)
"""
EXITS_IN_REGISTRATION = """
import os
from sof_core import hookimpl

@hookimpl
def sof_register_skills():
    os._exit(5)
"""


def _rows(stdout: str) -> dict[str, str]:
    """The table's rows by plugin name (the first word of each line)."""
    return {line.split()[0]: line for line in stdout.splitlines() if line.strip()}


def test_a_plugin_that_ends_the_process_at_import_is_listed_as_failed(dists: Any) -> None:
    dists.add("sof-ender", EXITS_AT_IMPORT, entry_name="ender")
    dists.add("sof-survivor", GOOD, entry_name="survivor")
    done = run_sof("plugins", env=dists.env())
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    rows = _rows(done.stdout)
    assert "failed" in rows["ender"]
    assert "ended the process with exit code 4 while it was imported" in rows["ender"]
    assert "loaded" in rows["survivor"] and "register_skills" in rows["survivor"]
    assert "loaded" in rows["calculator"]  # the installed bundled plugins, as usual


def test_the_detail_and_json_forms_say_so_too(dists: Any) -> None:
    dists.add("sof-ender", EXITS_AT_IMPORT, entry_name="ender")
    dists.add("sof-survivor", GOOD, entry_name="survivor")
    env = dists.env()
    one = run_sof("plugins", "ender", env=env)
    assert one.returncode == 1, (one.stdout, one.stderr)  # a failed plugin, as documented
    assert "  status        failed" in one.stdout
    assert ("  error         PluginLoadError: plugin 'ender': ended the process with exit code "
            "4 while it was imported") in one.stdout
    other = run_sof("plugins", "sof-survivor", env=env)
    assert other.returncode == 0 and "  status        loaded" in other.stdout, other.stdout
    listed = run_sof("plugins", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    by_name = {r["name"]: r for r in json.loads(listed.stdout)}
    assert by_name["ender"]["status"] == "failed"
    assert by_name["ender"]["error_type"] == "PluginLoadError"
    assert "exit code 4" in by_name["ender"]["error"]
    assert by_name["survivor"]["status"] == "loaded"
    assert by_name["survivor"]["provides"] == {"skills": ["SurviveGoodSkill"]}
    shown = run_sof("plugins", "ender", "--json", env=env)
    assert shown.returncode == 1 and json.loads(shown.stdout)["status"] == "failed"


def test_a_crash_in_native_code_names_the_signal(dists: Any) -> None:
    dists.add("sof-crasher", CRASHES_AT_IMPORT, entry_name="crasher")
    dists.add("sof-survivor", GOOD, entry_name="survivor")
    done = run_sof("plugins", env=dists.env())
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    rows = _rows(done.stdout)
    assert "was killed by signal SIGSEGV while it was imported" in rows["crasher"]
    assert "loaded" in rows["survivor"]


def test_a_plugin_ending_the_process_in_its_hooks_is_blamed_for_it(dists: Any) -> None:
    dists.add("sof-configurer", EXITS_IN_CONFIGURE, entry_name="configurer")
    dists.add("sof-registrar", EXITS_IN_REGISTRATION, entry_name="registrar")
    dists.add("sof-survivor", GOOD, entry_name="survivor")
    done = run_sof("plugins", env=dists.env())
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    rows = _rows(done.stdout)
    assert "exit code 3 while its sof_configure() ran" in rows["configurer"]
    assert "exit code 5 while its registration hooks ran" in rows["registrar"]
    assert "loaded" in rows["survivor"] and "loaded" in rows["memory"]


def test_several_such_plugins_each_fail_and_strict_mode_counts_them(dists: Any) -> None:
    dists.add("sof-ender", EXITS_AT_IMPORT, entry_name="ender")
    dists.add("sof-crasher", CRASHES_AT_IMPORT, entry_name="crasher")
    dists.add("sof-survivor", GOOD, entry_name="survivor")
    env = dists.env()
    env.update(SOF_PLUGINS_ONLY="ender,crasher,survivor", SOF_STRICT_PLUGINS="1")
    done = run_sof("plugins", env=env)
    assert done.returncode == 1, (done.stdout, done.stderr)  # strict mode: failed plugins
    assert "strict mode: 2 plugin(s) failed to load" in done.stderr
    rows = _rows(done.stdout)
    assert "exit code 4" in rows["ender"] and "SIGSEGV" in rows["crasher"]
    assert "loaded" in rows["survivor"]


# --- the common case: what the forked child lists is what this process would ----------------

#: Lists the plugins in this (single-threaded) process as each ``args`` asks: first each
#: in a forked child, then each loaded here as before (``os.fork`` taken away, as on
#: Windows), with a clock that stands still so that import times print the same.
COMPARE = """
import argparse, contextlib, io, json, os, sys, types
from sof_core.cli import inspect
from sof_core.plugins import loader

loader.time = types.SimpleNamespace(perf_counter=lambda: 1.0)
cases = json.loads(sys.argv[1])
forks = []
real_fork = os.fork

def counted_fork():
    pid = real_fork()
    if pid:
        forks.append(pid)
    return pid

def listing(names, as_json, every):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = inspect.cmd_plugins(argparse.Namespace(name=names, json=as_json, all=every))
    return [code, out.getvalue()]

os.fork = counted_fork
forked = [listing(*case) for case in cases]
del os.fork
here = [listing(*case) for case in cases]
print(json.dumps({"forks": len(forks), "forked": forked, "here": here}))
"""


def test_the_listing_is_byte_for_byte_what_loading_here_gives(dists: Any) -> None:
    """The forked child's records, sent back, print exactly as records loaded in this
    process (today's way, and the way where there is no fork): text, ``--json``,
    ``--all``, one plugin, one distribution."""
    dists.add("sof-survivor", GOOD, entry_name="survivor")
    cases = [[[], False, False], [[], True, False], [[], False, True],
             [["survivor"], False, False], [["sof-survivor"], True, False]]
    done = subprocess.run([sys.executable, "-c", COMPARE, json.dumps(cases)],
                          capture_output=True, text=True, env=dists.env(), timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["forks"] == len(cases)  # each forked case did fork
    assert result["forked"] == result["here"]
    assert [code for code, _ in result["forked"]] == [0] * len(cases)
    assert "survivor" in result["forked"][0][1] and "calculator" in result["forked"][0][1]
