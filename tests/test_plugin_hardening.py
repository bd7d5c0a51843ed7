"""Host start-up survives hostile plugins and broken installed metadata.

Each case is a real installed distribution (a ``.dist-info`` folder on ``sys.path``): a plugin
whose registration raises something other than ``SOFError``, or whose import calls
``sys.exit()``, is recorded as that plugin's failure; a malformed ``entry_points.txt`` in an
unrelated distribution is skipped with a warning naming it, in SOF's discovery, in
pydantic's own plugin scan and in networkx's backend scan; a slow import is warned about, and failed in strict mode.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sof_core import PluginError, PluginManager, SOFConfig

GOOD = """
from sof_core import BaseSkillModule, hookimpl

class GoodSkill(BaseSkillModule):
    skill_name = "GoodSkill"
    skill_description = "still loads"
    required_inputs = ["input_query"]
    output_keys = ["good"]
    def execute(self, uif):
        uif.intermediate_data["good"] = "ok"
        return uif

@hookimpl
def sof_register_skills():
    return [GoodSkill]
"""

DUCK = """
from sof_core import hookimpl

class Duck:
    skill_name = "DuckSkill"
    skill_version = "1.0"
    skill_description = "duck-typed"
    skill_category = "test"
    required_inputs = ["input_query"]
    optional_inputs = []
    output_keys = ["duck"]
    requires_external_access = False
    requires_vetting = False
    can_run_parallel = True
    estimated_execution_time = 1.0
    max_execution_time = None
    def execute(self, uif):
        return uif
"""

HOSTILE: dict[str, tuple[str, str, str]] = {
    "generator raises midway": (
        GOOD.replace("return [GoodSkill]", "yield GoodSkill\n    raise OSError('disk gone')")
        .replace("GoodSkill", "HalfSkill"),
        "PluginHookError",
        "sof_register_skills() result raised OSError while it was read (after 1 item(s)): "
        "disk gone",
    ),
    "estimate is a word": (
        DUCK.replace("estimated_execution_time = 1.0", "estimated_execution_time = 'fast'")
        + "\n@hookimpl\ndef sof_register_skills():\n    return [Duck]\n",
        "SkillDefinitionError",
        "estimated_execution_time must be a number of seconds, got 'fast'",
    ),
    "no required_inputs": (
        DUCK.replace('    required_inputs = ["input_query"]\n', "")
        + "\n@hookimpl\ndef sof_register_skills():\n    return [Duck]\n",
        "SkillDefinitionError",
        "has no 'required_inputs'",
    ),
    "backend name raises": (
        "from sof_core import hookimpl\n"
        "class Backend:\n"
        "    @property\n"
        "    def name(self):\n"
        "        raise KeyError('no name configured')\n"
        "@hookimpl\ndef sof_register_llm_backends():\n    return [Backend()]\n",
        "PluginHookError",
        "whose 'name' raised KeyError",
    ),
    "skill_name raises": (
        DUCK.replace('    skill_name = "DuckSkill"\n',
                     "    @property\n    def skill_name(self):\n        raise RuntimeError('x')\n")
        + "\n@hookimpl\ndef sof_register_skills():\n    return [Duck()]\n",
        "SkillDefinitionError",
        "skill_name must be a non-empty string",
    ),
    "sys.exit at import": (
        "import sys\nsys.exit(3)",
        "PluginLoadError",
        "called sys.exit(3); a plugin module must not exit the process",
    ),
    "SystemExit from a hook": (
        "import sys\nfrom sof_core import hookimpl\n"
        "@hookimpl\ndef sof_register_skills():\n    sys.exit('bye')\n",
        "PluginHookError",
        "sof_register_skills() raised SystemExit: bye",
    ),
    "configure raises SystemExit": (
        GOOD.replace("GoodSkill", "ConfSkill")
        + "\n@hookimpl\ndef sof_configure():\n    raise SystemExit(1)\n",
        "PluginHookError",
        "sof_configure() raised SystemExit(1)",
    ),
    "a BaseException subclass at import": (
        "class Weird(BaseException):\n    pass\nraise Weird('weird base')",
        "PluginLoadError",
        "raised Weird: weird base",
    ),
    "a BaseException subclass from a hook": (
        "from sof_core import hookimpl\nclass Weird(BaseException):\n    pass\n"
        "@hookimpl\ndef sof_register_skills():\n    raise Weird('weird hook')\n",
        "PluginHookError",
        "sof_register_skills() raised Weird: weird hook",
    ),
    "GeneratorExit midway through the result": (
        GOOD.replace("return [GoodSkill]", "yield GoodSkill\n    raise GeneratorExit('gone')")
        .replace("GoodSkill", "HalfSkill"),
        "PluginHookError",
        "result raised GeneratorExit while it was read (after 1 item(s))",
    ),
    "a BaseException subclass from sof_configure": (
        GOOD.replace("GoodSkill", "ConfSkill")
        + "\nclass Weird(BaseException):\n    pass\n"
        "@hookimpl\ndef sof_configure():\n    raise Weird('no')\n",
        "PluginHookError",
        "sof_configure() raised Weird('no')",
    ),
}


def only(*names: str, **config: Any) -> PluginManager:
    return PluginManager(SOFConfig(plugins_only=list(names), **config)).load()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_plugin_is_recorded_as_failed_and_the_host_starts(
    dists: Any, case: str
) -> None:
    source, error_type, message = HOSTILE[case]
    dists.add("sof-aaa-hostile", source, entry_name="hostile")
    dists.add("sof-zzz-good", GOOD, entry_name="good")
    pm = only("hostile", "good")
    record = pm.records["hostile"]
    assert record.status == "failed", record
    assert record.error_type == error_type
    assert message in (record.error or "")
    assert "'hostile'" in (record.error or "")
    assert pm.records["good"].status == "loaded" and "GoodSkill" in pm.registry
    assert pm.hook_manager.get_plugin("hostile") is None
    skills = set(pm.registry.skill_names())
    assert skills == {"GoodSkill"}  # nothing of the hostile plugin stayed half-registered


def test_keyboard_interrupt_during_import_still_stops_the_host(dists: Any) -> None:
    dists.add("sof-interrupt", "raise KeyboardInterrupt", entry_name="interrupt")
    with pytest.raises(KeyboardInterrupt):
        only("interrupt")


# --- broken metadata of unrelated distributions ----------------------------------------------

BROKEN_ENTRY_POINTS: dict[str, bytes] = {
    "group line without '='": b"[console_scripts]\nnoequals\n",
    "binary content": bytes(range(128, 256)) * 2,
}


def add_broken_dist(root: Path, name: str, content: bytes) -> None:
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_bytes(content)


@pytest.mark.parametrize("kind", sorted(BROKEN_ENTRY_POINTS))
def test_a_malformed_entry_points_file_elsewhere_is_skipped_with_a_warning(
    dists: Any, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    add_broken_dist(dists.root, "unrelated-tool", BROKEN_ENTRY_POINTS[kind])
    dists.add("sof-good", GOOD, entry_name="good")
    with caplog.at_level(logging.WARNING, logger="sof.plugins"):
        pm = only("good")
    assert pm.records["good"].status == "loaded" and "GoodSkill" in pm.registry
    (warning,) = pm.discovery_warnings
    assert warning.startswith("skipped installed distribution 'unrelated-tool'")
    assert "entry_points.txt cannot be read" in warning
    assert warning in caplog.text


PROBE = """
import sys
from sof_core import CoordinatorEngine, UIF
uif = UIF(input_query="still here")
engine = CoordinatorEngine()
print("skills:", ",".join(engine.registry.skill_names()))
print("answer:", uif.input_query)
report = engine.execute_plan(["GoodSkill"], uif)  # the first compile imports networkx
print("run:", report.status, report.uif.intermediate_data.get("good"))
"""


@pytest.mark.parametrize("kind", sorted(BROKEN_ENTRY_POINTS))
def test_sof_starts_beside_a_distribution_with_malformed_entry_points(
    tmp_path: Path, kind: str
) -> None:
    """In a fresh process, so pydantic's own plugin scan (at SOF's first model) runs too."""
    site = tmp_path / "site"
    site.mkdir()
    add_broken_dist(site, "unrelated-tool", BROKEN_ENTRY_POINTS[kind])
    (site / "sof_probe_good.py").write_text(textwrap.dedent(GOOD))
    info = site / "sof_probe_good-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sof-probe-good\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[sof.plugins]\nprobe = sof_probe_good\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SOF_") and k != "PYDANTIC_DISABLE_PLUGINS"}
    env.update(PYTHONPATH=str(site), SOF_CONFIG=str(tmp_path / "none.json"),
               SOF_PLUGINS_ONLY="probe", XDG_CACHE_HOME=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "skills: GoodSkill" in result.stdout and "answer: still here" in result.stdout
    assert "pydantic's plugin scan failed" in result.stderr
    assert "'unrelated-tool'" in result.stderr
    assert "skipped installed distribution 'unrelated-tool'" in result.stderr
    # networkx scans every distribution's entry points when imported, at the first compile
    # without a stored plan graph (a fresh cache folder): it must not stop the run either.
    assert "run: success ok" in result.stdout
    assert "networkx's entry-point scan failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_healthy_environment_leaves_pydantic_plugins_alone(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    code = "import os, sof_core.uif; print(os.environ.get('PYDANTIC_DISABLE_PLUGINS'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "None", result.stderr
    assert result.stderr == ""


# --- import-time budget ------------------------------------------------------------------

SLOW = "import time\ntime.sleep(0.25)\n" + GOOD.replace("GoodSkill", "SlowSkill")


def test_a_slow_plugin_import_is_warned_about_and_recorded(
    dists: Any, caplog: pytest.LogCaptureFixture
) -> None:
    dists.add("sof-slow", SLOW, entry_name="slow")
    with caplog.at_level(logging.WARNING, logger="sof.plugins"):
        pm = only("slow", plugin_import_budget_ms=50)
    record = pm.records["slow"]
    assert record.status == "loaded" and "SlowSkill" in pm.registry
    (warning,) = record.warnings
    assert "over plugin_import_budget_ms = 50 (SOF_PLUGIN_IMPORT_BUDGET_MS)" in warning
    assert record.to_dict()["warnings"] == [warning]
    assert "plugin slow: importing" in caplog.text


def test_a_slow_plugin_import_fails_in_strict_mode(dists: Any) -> None:
    dists.add("sof-slow", SLOW, entry_name="slow")
    pm = PluginManager(SOFConfig(plugins_only=["slow"], plugin_import_budget_ms=50,
                                 strict_plugins=True))
    with pytest.raises(PluginError, match=r"strict mode: 1 plugin.*over plugin_import_budget_ms"):
        pm.load()
    assert pm.records["slow"].status == "failed"
    assert "SlowSkill" not in pm.registry


def test_sof_plugins_in_strict_mode_fails_a_slow_import_and_still_lists_every_plugin(
    dists: Any, sof_cli: Any
) -> None:
    """The CI recipe ``SOF_STRICT_PLUGINS=1 sof plugins`` (its listing used to load the
    plugins with strict mode off, so an import over the budget passed as ``loaded``)."""
    dists.add("sof-slow", SLOW, entry_name="slow")
    dists.add("sof-good", GOOD, entry_name="good")
    env = dists.env()
    env.update(SOF_PLUGINS_ONLY="slow,good", SOF_PLUGIN_IMPORT_BUDGET_MS="50")
    relaxed = sof_cli("plugins", "--json", env=env)
    assert relaxed.returncode == 0, relaxed.stderr
    statuses = {r["name"]: r["status"] for r in json.loads(relaxed.stdout)}
    assert (statuses["slow"], statuses["good"]) == ("loaded", "loaded")
    env["SOF_STRICT_PLUGINS"] = "1"
    strict = sof_cli("plugins", "--json", env=env)
    rows = {r["name"]: r for r in json.loads(strict.stdout)}
    assert strict.returncode == 1
    assert "strict mode: 1 plugin(s) failed to load" in strict.stderr
    assert rows["slow"]["status"] == "failed" and "strict mode" in rows["slow"]["error"]
    assert rows["good"]["status"] == "loaded"
    assert "Traceback" not in strict.stderr


def test_the_import_budget_comes_from_the_environment(
    dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dists.add("sof-slow", SLOW, entry_name="slow")
    monkeypatch.setenv("SOF_PLUGINS_ONLY", "slow")
    monkeypatch.setenv("SOF_PLUGIN_IMPORT_BUDGET_MS", "50")
    pm = PluginManager().load()
    assert pm.config.plugin_import_budget_ms == 50
    assert pm.records["slow"].warnings
    monkeypatch.setenv("SOF_PLUGIN_IMPORT_BUDGET_MS", "5000")
    assert PluginManager().load().records["slow"].warnings == []


def test_the_default_budget_is_one_second() -> None:
    assert SOFConfig().plugin_import_budget_ms == 1000


PYDANTIC_PLUGIN = """
SEEN = []

class Plugin:
    def new_schema_validator(self, schema, schema_type, schema_type_path, schema_kind,
                             config, plugin_settings):
        SEEN.append(schema_type.__name__)
        return None, None, None

plugin = Plugin()
"""


@pytest.mark.parametrize("disabled", [None, "probe-plugin"])
def test_pydantic_plugins_installed_beside_sof_are_loaded_as_pydantic_loads_them(
        tmp_path: Path, disabled: str | None) -> None:
    # SOF reads the pydantic entry points itself (pydantic's own scan of every
    # distribution's metadata cost ~10 ms a process): the plugins must be the same
    site = tmp_path / "site"
    site.mkdir()
    (site / "probe_pydantic_plugin.py").write_text(PYDANTIC_PLUGIN)
    info = site / "probe_pydantic_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: probe-pydantic-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[pydantic]\nprobe-plugin = probe_pydantic_plugin:plugin\n")
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    env["PYTHONPATH"] = str(site)
    if disabled:
        env["PYDANTIC_DISABLE_PLUGINS"] = disabled
    code = ("import sof_core.uif, probe_pydantic_plugin as p; "
            "import pydantic.plugin._loader as l; "
            "print(sorted(set(p.SEEN)), list(l._plugins or {}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    if disabled:
        assert result.stdout.strip() == "[] []"
    else:
        assert "'UIF'" in result.stdout
        assert "['probe_pydantic_plugin:plugin']" in result.stdout


def test_a_broken_distribution_on_the_path_twice_is_named_once(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    from sof_core import _pydantic_guard

    class Broken:
        metadata: ClassVar[dict[str, str]] = {"Name": "unrelated-tool"}

        @property
        def entry_points(self) -> list[Any]:
            raise ValueError("malformed entry_points.txt")

    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [Broken(), Broken()])
    assert _pydantic_guard._unreadable_distributions() == ["unrelated-tool"]
