"""``sof hooks`` (the hook reference, generated from the specs, equal to docs/hooks.md) and
plugin tracing (``SOF_TRACE_PLUGINS=1``)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sof_core.cli.hooks import hook_docs, reference_markdown
from sof_core.config import SOFConfig
from sof_core.plugins import PluginManager, hookspecs
from sof_core.plugins.registry import COMPONENT_HOOKS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_reference_covers_every_hook_spec_in_source_order() -> None:
    specs = [n for n in vars(hookspecs) if n.startswith("sof_") and hasattr(getattr(hookspecs, n), "sof_spec")]
    assert [d.name for d in hook_docs()] == specs
    text = reference_markdown()
    for doc in hook_docs():
        assert f"### {doc.name}\n" in text
        assert doc.signature in text
        assert doc.doc.splitlines()[0] in text
    skills = next(d for d in hook_docs() if d.name == "sof_register_skills")
    assert skills.signature == "def sof_register_skills() -> Sequence[Any]"
    configure = next(d for d in hook_docs() if d.name == "sof_configure")
    assert configure.arguments == ("config", "registry")


def test_every_collected_hook_says_where_its_items_go() -> None:
    for kind, hook in COMPONENT_HOOKS.items():
        doc = next(d for d in hook_docs() if d.name == hook)
        assert f"added to the registry as `{kind}`" in doc.calling


def test_docs_hooks_md_is_the_generated_reference() -> None:
    # Regenerate with `python docs/generate.py` when a hook spec changes.
    assert (DOCS / "hooks.md").read_text(encoding="utf-8") == reference_markdown(), (
        "docs/hooks.md is out of date: run `python docs/generate.py`"
    )


def test_sof_hooks_prints_the_reference_one_hook_or_json(sof_cli: Any) -> None:
    full = sof_cli("hooks")
    assert full.returncode == 0 and full.stdout == reference_markdown()
    one = sof_cli("hooks", "register_tools")
    assert one.returncode == 0
    assert one.stdout.startswith("### sof_register_tools\n")
    assert "registry as `tools`" in one.stdout
    assert sof_cli("hooks", "sof_register_tools").stdout == one.stdout
    data = json.loads(sof_cli("hooks", "--json").stdout)
    assert [d["name"] for d in data] == [d.name for d in hook_docs()]
    observer = json.loads(sof_cli("hooks", "after_skill", "--json").stdout)
    assert observer["group"] == "Lifecycle observers" and observer["arguments"] == ["skill", "result"]
    wrong = sof_cli("hooks", "register_skill")
    assert wrong.returncode == 2
    assert wrong.stderr == ("sof: error: no hook named 'register_skill'; did you mean "
                            "'sof_register_skills'?\n")


# --- tracing -------------------------------------------------------------------------------

TRACED = """
from sof_core import BaseSkillModule, hookimpl

class Traced(BaseSkillModule):
    skill_name = "Traced"
    skill_description = "A skill to trace"
    required_inputs = ["input_query"]
    output_keys = ["traced_out"]

    def execute(self, uif):
        uif.intermediate_data["traced_out"] = 1
        return uif

@hookimpl
def sof_register_skills():
    return [Traced]

@hookimpl
def sof_after_plan(report):
    raise RuntimeError("observer boom")
"""

FAILING = """
from sof_core import hookimpl

@hookimpl
def sof_register_skills():
    raise ValueError("cannot list my skills")
"""


def test_tracing_logs_every_hook_call_with_plugin_result_error_and_time(dists: Any, sof_cli: Any) -> None:
    dists.add("trace-me", TRACED, entry_name="traceme")
    dists.add("trace-failing", FAILING, entry_name="failing")
    env = {**dists.env(), "SOF_TRACE_PLUGINS": "1"}
    done = sof_cli("run", "q", "--plan", "Traced", "--output", "traced_out", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()

    def line(start: str) -> str:
        found = [entry for entry in lines if entry.startswith(start)]
        assert found, done.stderr
        return found[0]

    ok = line("sof: INFO: sof_register_skills: plugin 'traceme' returned 1 item(s) [Traced] (")
    assert ok.endswith(" ms)")
    raised = line("sof: INFO: sof_register_skills: plugin 'failing' raised ValueError: cannot list my skills (")
    assert raised.endswith(" ms)")
    # observers too, called during the run, and the error still only logged
    line("sof: INFO: sof_after_plan: plugin 'traceme' raised RuntimeError: observer boom (")
    line("sof: INFO: sof_register_executors: plugin 'sof-executors' returned 3 item(s)")
    assert "ignoring environment variable SOF_TRACE_PLUGINS" not in done.stderr
    # SOF_LOG_LEVEL does not hide the trace
    quiet = sof_cli("skills", env={**env, "SOF_LOG_LEVEL": "ERROR"})
    assert "sof: INFO: sof_register_skills: plugin 'traceme'" in quiet.stderr
    off = sof_cli("skills", env=dists.env())
    assert "sof_register_skills: plugin" not in off.stderr


def test_without_tracing_nothing_is_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    from sof_core.plugins import markers

    def sof_register_skills() -> list[Any]:
        return []

    marked = markers.hookimpl(sof_register_skills)

    class Plugin:
        sof_register_skills = staticmethod(marked)

    monkeypatch.delenv("SOF_TRACE_PLUGINS", raising=False)
    manager = PluginManager(SOFConfig(plugins_autoload=False), builtins=False).load()
    manager.register(Plugin, name="plain")
    impl = next(i for i in manager.hook_manager.hook.sof_register_skills.get_hookimpls()
                if i.plugin_name == "plain")
    assert impl.function is marked  # called directly: tracing costs nothing when off

    monkeypatch.setenv("SOF_TRACE_PLUGINS", "1")
    traced = PluginManager(SOFConfig(plugins_autoload=False), builtins=False).load()
    traced.register(Plugin, name="plain")
    impl = next(i for i in traced.hook_manager.hook.sof_register_skills.get_hookimpls()
                if i.plugin_name == "plain")
    assert impl.function is not marked and impl.function.__wrapped__ is marked


def test_a_host_without_logging_gets_the_trace_on_stderr(tmp_path: Path) -> None:
    code = (
        "from sof_core import CoordinatorEngine\n"
        "engine = CoordinatorEngine()\n"
        "print(sorted(engine.registry.skill_names())[:1])\n"
    )
    env = {"SOF_TRACE_PLUGINS": "yes", "SOF_CONFIG": str(tmp_path / "none.json"),
           "PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "sof: trace: sof_register_executors: plugin 'sof-executors' returned" in done.stderr
    # and once only when the host configures logging
    configured = "import logging, sys; logging.basicConfig(stream=sys.stderr, level=logging.INFO)\n" + code
    done = subprocess.run([sys.executable, "-c", configured], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert "sof: trace:" not in done.stderr
    assert done.stderr.count("sof_register_executors: plugin 'sof-executors' returned") == 1


def test_the_trace_logger_is_at_info(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOF_TRACE_PLUGINS", "1")
    logger = logging.getLogger("sof.plugins.trace")
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    PluginManager(SOFConfig(plugins_autoload=False)).load()
    assert logger.level == logging.INFO
