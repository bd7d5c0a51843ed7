"""A plugin whose import hangs is skipped at ``plugin_import_timeout``; the host starts.

Each plugin is a real installed distribution (``dists``). The hung import is a module that
waits on a lock nobody releases (a ``threading.Event`` the test sets at the end, so the
daemon thread it leaves behind ends with the test).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

from sof_core import UIF, CoordinatorEngine, PluginError, PluginManager, SOFConfig
from sof_core.plugins.importer import hung_imports

GOOD = """
from sof_core import BaseSkillModule, hookimpl

class {name}(BaseSkillModule):
    skill_name = "{name}"
    skill_description = "loads fine"
    required_inputs = ["input_query"]
    output_keys = ["{key}"]
    def execute(self, uif):
        uif.intermediate_data["{key}"] = "ok"
        return uif

@hookimpl
def sof_register_skills():
    return [{name}]
"""

#: Hangs at import until the test process's ``RELEASE`` event is set (``builtins`` is shared
#: by every module, so the plugin finds it without importing the test).
HUNG = """
import builtins
builtins.SOF_TEST_RELEASE.wait()
""" + GOOD.format(name="HungSkill", key="hung")


@pytest.fixture
def release() -> Any:
    import builtins

    event = threading.Event()
    builtins.SOF_TEST_RELEASE = event  # type: ignore[attr-defined]
    yield event
    event.set()
    del builtins.SOF_TEST_RELEASE  # type: ignore[attr-defined]


def only(*names: str, **config: Any) -> PluginManager:
    return PluginManager(SOFConfig(plugins_only=list(names), **config)).load()


def test_a_plugin_whose_import_hangs_is_skipped_and_the_others_load(
    dists: Any, release: threading.Event
) -> None:
    module = dists.add("sof-aaa-hung", HUNG, entry_name="hung")
    dists.add("sof-zzz-good", GOOD.format(name="GoodSkill", key="good"), entry_name="good")
    started = time.monotonic()
    pm = only("hung", "good", plugin_import_timeout=0.5)
    waited = time.monotonic() - started
    record = pm.records["hung"]
    assert record.status == "failed" and record.error_type == "PluginLoadError"
    assert record.error is not None
    assert f"importing {module!r} did not finish within 0.5 s (plugin_import_timeout" in (
        record.error)
    # Where it hangs: the plugin's own file and line, with the line's source.
    assert f"{module}.py:3 (builtins.SOF_TEST_RELEASE.wait())" in record.error
    assert pm.records["good"].status == "loaded" and "GoodSkill" in pm.registry
    assert "HungSkill" not in pm.registry
    assert waited < 10, "the host waited for the hung import"  # a hang bound, not a figure
    assert module in hung_imports()
    # The hung import is a daemon thread: it never holds the process's exit.
    (thread,) = [t for t in threading.enumerate() if t.name == "sof-plugin-import"
                 and t.is_alive() and t.daemon]
    # A second load of the same plugin does not wait behind the hung import again.
    started = time.monotonic()
    again = only("hung", plugin_import_timeout=30)
    assert time.monotonic() - started < 5
    error = again.records["hung"].error or ""
    assert "hung in an earlier load and is still running" in error
    assert f"{module}.py:3" in error
    # Once it ends, a new load imports it as any other plugin.
    release.set()
    thread.join(5)
    assert not thread.is_alive()
    assert module not in hung_imports()
    late = only("hung", plugin_import_timeout=30)
    assert late.records["hung"].status == "loaded" and "HungSkill" in late.registry


def test_an_engine_starts_and_runs_queries_beside_a_hung_plugin(
    dists: Any, release: threading.Event
) -> None:
    dists.add("sof-aaa-hung", HUNG, entry_name="hung")
    dists.add("sof-zzz-good", GOOD.format(name="GoodSkill", key="good"), entry_name="good")
    config = SOFConfig(plugins_only=["hung", "good"], plugin_import_timeout=0.5)
    with CoordinatorEngine(config=config) as engine:
        assert engine.plugins.records["hung"].status == "failed"
        report = engine.execute_plan(["GoodSkill"], UIF(input_query="q"))
    assert report.status == "success" and report.uif.intermediate_data["good"] == "ok"


def test_the_timeout_comes_from_the_environment_and_defaults_to_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert SOFConfig().plugin_import_timeout == 60
    monkeypatch.setenv("SOF_PLUGIN_IMPORT_TIMEOUT", "2.5")
    assert PluginManager().config.plugin_import_timeout == 2.5
    for bad in ("inf", "1e300", "0", "-1"):
        monkeypatch.setenv("SOF_PLUGIN_IMPORT_TIMEOUT", bad)
        with pytest.raises(Exception, match="plugin_import_timeout"):
            PluginManager()


def test_strict_mode_fails_the_load_naming_the_hung_plugin(
    dists: Any, release: threading.Event
) -> None:
    dists.add("sof-hung", HUNG, entry_name="hung")
    pm = PluginManager(SOFConfig(plugins_only=["hung"], plugin_import_timeout=0.3,
                                 strict_plugins=True))
    with pytest.raises(PluginError, match=r"hung.*did not finish within 0.3 s"):
        pm.load()


SIGNALS = """
import signal
signal.signal(signal.SIGUSR1, lambda *a: None)
""" + GOOD.format(name="SignalSkill", key="signal")

LOADS_PLUGINS = """
from sof_core.plugins import get_plugin_manager
MANAGER = get_plugin_manager()
""" + GOOD.format(name="LoaderSkill", key="loader")


def test_a_plugin_that_loads_plugins_at_import_does_not_wait_for_itself(
    dists: Any, tmp_path: Any
) -> None:
    """Its import runs in the import thread while the loading thread holds the manager's
    lock: as on one thread, the manager being loaded is handed back, not waited for."""
    dists.add("sof-loader", LOADS_PLUGINS, entry_name="loader")
    script = textwrap.dedent("""
        import time
        from sof_core.plugins import get_plugin_manager
        started = time.monotonic()
        pm = get_plugin_manager()
        print(pm.records["loader"].status, round(time.monotonic() - started) < 5)
    """)
    env = dists.env()
    env.update(SOF_PLUGINS_ONLY="loader", SOF_PLUGIN_IMPORT_TIMEOUT="20",
               SOF_CONFIG=str(tmp_path / "none.json"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["loaded", "True"], done.stderr


def test_sof_exits_after_printing_with_a_plugin_import_still_hung(
    dists: Any, tmp_path: Any
) -> None:
    """The CLI lists the plugins and exits, the hung import left behind (a hang bound)."""
    dists.add("sof-forever", "import time\nwhile True:\n    time.sleep(0.05)\n",
              entry_name="forever")
    dists.add("sof-good", GOOD.format(name="GoodSkill", key="good"), entry_name="good")
    env = dists.env()
    env.update(SOF_PLUGINS_ONLY="forever,good", SOF_PLUGIN_IMPORT_TIMEOUT="1",
               SOF_CONFIG=str(tmp_path / "none.json"))
    done = subprocess.run([sys.executable, "-m", "sof_core.cli", "plugins"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "did not finish within 1 s" in done.stdout + done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert "loaded" in lines["good"] and "failed" in lines["forever"]


def test_plugins_that_wait_for_a_dependency_whose_import_hung_fail_at_once(
    dists: Any, release: threading.Event
) -> None:
    """Two plugins import one library whose import hangs: the first is given up on at its
    deadline; the second waits behind Python's import lock for the same library, and is
    skipped as soon as that is seen, not at a deadline of its own."""
    shared = "sof_test_heavylib"
    (dists.root / f"{shared}.py").write_text(
        "import builtins\nbuiltins.SOF_TEST_RELEASE.wait()\nREADY = True\n")
    dists.modules.append(shared)
    uses = f"import {shared}\n"
    first = dists.add("sof-aaa-first", uses + GOOD.format(name="FirstSkill", key="first"),
                      entry_name="first")
    second = dists.add("sof-bbb-second", uses + GOOD.format(name="SecondSkill", key="second"),
                       entry_name="second")
    dists.add("sof-zzz-good", GOOD.format(name="GoodSkill", key="good"), entry_name="good")
    started = time.monotonic()
    pm = only("first", "second", "good", plugin_import_timeout=3)
    waited = time.monotonic() - started
    assert "did not finish within 3 s" in (pm.records["first"].error or "")
    error = pm.records["second"].error or ""
    assert pm.records["second"].status == "failed" and pm.records["second"].error_type == (
        "PluginLoadError")
    assert f"importing {second!r} waits for {shared!r}, whose import hung" in error, error
    assert f"{shared}.py:2 (builtins.SOF_TEST_RELEASE.wait())" in error
    assert pm.records["good"].status == "loaded"
    assert waited < 5, "the second plugin waited out a deadline of its own (6 s)"  # hang bound
    assert {first, second, shared} <= set(hung_imports())
    # Once the library's import ends, both plugins load in a later load.
    release.set()
    for thread in [t for t in threading.enumerate() if t.name == "sof-plugin-import"]:
        thread.join(5)
    assert not {first, second, shared} & set(hung_imports())
    late = only("first", "second", plugin_import_timeout=30)
    assert {"FirstSkill", "SecondSkill"} <= set(late.registry.skill_names())


def test_a_host_process_exits_normally_with_a_plugin_import_still_hung(
    dists: Any, tmp_path: Any
) -> None:
    """A plain host (no ``os._exit``): the hung import's thread is a daemon, so the
    interpreter's normal exit does not wait for it (a hang bound)."""
    dists.add("sof-forever", "import time\nwhile True:\n    time.sleep(0.05)\n",
              entry_name="forever")
    script = textwrap.dedent("""
        from sof_core import PluginManager, SOFConfig
        pm = PluginManager(SOFConfig(plugins_only=["forever"], plugin_import_timeout=0.5))
        print(pm.load().records["forever"].status)
    """)
    env = dists.env()
    env.update(SOF_CONFIG=str(tmp_path / "none.json"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["failed"]


def test_plugins_loaded_while_a_host_module_is_imported_can_import_that_module(
    dists: Any, tmp_path: Any
) -> None:
    """A host package that loads plugins at import, and ships a plugin that imports the
    package: imported in another thread, the plugin would wait for the package's import,
    which waits for the plugin. Such loads import on the calling thread."""
    package = dists.root / "hostpkg"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        from sof_core import PluginManager, SOFConfig
        MANAGER = PluginManager(SOFConfig(plugins_only=["hostplug"],
                                          plugin_import_timeout=2)).load()
    """))
    (package / "skills.py").write_text(GOOD.format(name="HostSkill", key="host"))
    dists.add("hostplug", "import hostpkg\nfrom hostpkg.skills import *\n",
              entry_name="hostplug")
    script = ("import hostpkg; r = hostpkg.MANAGER.records['hostplug']; "
              "print(r.status, 'HostSkill' in hostpkg.MANAGER.registry, r.error)")
    env = dists.env()
    env.update(SOF_CONFIG=str(tmp_path / "none.json"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["loaded", "True"], done.stdout


def test_a_plugin_module_runs_in_the_loader_thread_not_the_callers(dists: Any) -> None:
    """What docs/authoring.md warns about: thread-bound objects made at import belong to
    the loader thread."""
    source = ("import threading\nIMPORTED_IN = threading.current_thread().name\n"
              + GOOD.format(name="WhereSkill", key="where"))
    module = dists.add("sof-where", source, entry_name="where")
    pm = only("where")
    assert pm.records["where"].status == "loaded"
    assert sys.modules[module].IMPORTED_IN == "sof-plugin-import"
    assert threading.current_thread().name != "sof-plugin-import"


def test_without_a_timeout_plugins_import_on_the_loading_thread(dists: Any) -> None:
    """``plugin_import_timeout = null``: the way back for a plugin that makes thread-bound
    objects at import (here a sqlite3 connection, used from the loading thread after)."""
    source = ("import sqlite3, threading\nIMPORTED_IN = threading.current_thread().name\n"
              "DB = sqlite3.connect(':memory:')\n"
              + GOOD.format(name="DbSkill", key="db"))
    module = dists.add("sof-db", source, entry_name="db")
    pm = only("db", plugin_import_timeout=None)
    assert pm.records["db"].status == "loaded"
    plugin = sys.modules[module]
    assert threading.current_thread().name == plugin.IMPORTED_IN
    assert plugin.DB.execute("select 1").fetchone() == (1,)  # same thread: usable


#: Imports at once; its registration hook hangs (a hook that lists tools from a server that
#: stopped answering) until the test sets ``RELEASE``.
HUNG_HOOK = GOOD.format(name="SlowSkill", key="slow").replace(
    "    return [SlowSkill]",
    "    import builtins\n    builtins.SOF_TEST_RELEASE.wait()\n    return [SlowSkill]")

HUNG_CONFIGURE = GOOD.format(name="ConfSkill", key="conf") + """

@hookimpl
def sof_configure(config):
    import builtins
    builtins.SOF_TEST_RELEASE.wait()
"""

SIGNAL_HOOK = GOOD.format(name="SigHookSkill", key="sighook").replace(
    "    return [SigHookSkill]",
    "    import signal\n    signal.signal(signal.SIGUSR2, lambda *a: None)\n"
    "    return [SigHookSkill]")


def test_a_plugin_whose_registration_hook_hangs_is_skipped_at_the_same_deadline(
    dists: Any, release: threading.Event
) -> None:
    """Before: the import had a deadline, its ``sof_register_skills()`` none: the host's
    start-up waited for it forever."""
    dists.add("sof-aaa-slowhook", HUNG_HOOK, entry_name="slowhook")
    dists.add("sof-zzz-good", GOOD.format(name="GoodSkill", key="good"), entry_name="good")
    started = time.monotonic()
    pm = only("slowhook", "good", plugin_import_timeout=0.5)
    assert time.monotonic() - started < 10, "the host waited for the hung hook"  # hang bound
    record = pm.records["slowhook"]
    assert record.status == "failed" and record.error_type == "PluginLoadError"
    assert ("its registration hooks (sof_register_skills()) and its skills' constructors did "
            "not return within 0.5 s") in (record.error or "")
    assert "SlowSkill" not in pm.registry
    assert pm.records["good"].status == "loaded" and "GoodSkill" in pm.registry
    release.set()  # the hook returns late: nothing of it reaches the registry
    time.sleep(0.2)
    assert "SlowSkill" not in pm.registry


def test_a_plugin_whose_configure_hook_hangs_is_unloaded_and_the_host_starts(
    dists: Any, release: threading.Event
) -> None:
    dists.add("sof-conf", HUNG_CONFIGURE, entry_name="conf")
    dists.add("sof-zzz-good", GOOD.format(name="GoodSkill", key="good"), entry_name="good")
    started = time.monotonic()
    pm = only("conf", "good", plugin_import_timeout=0.5)
    assert time.monotonic() - started < 10  # a hang bound
    record = pm.records["conf"]
    assert record.status == "failed"
    assert "its sof_configure() did not return within 0.5 s" in (record.error or "")
    assert "ConfSkill" not in pm.registry
    assert "GoodSkill" in pm.registry


#: Imports and registers at once; its skill's constructor hangs (it connects to a database
#: at construction, and the database does not answer) until the test sets ``RELEASE``.
HUNG_CONSTRUCTOR = GOOD.format(name="DbSkill", key="db").replace(
    "    def execute(self, uif):",
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        import builtins\n"
    "        builtins.SOF_TEST_RELEASE.wait()  # connect()\n"
    "    def execute(self, uif):")


def test_a_plugin_whose_skill_constructor_hangs_is_skipped_at_the_same_deadline(
    dists: Any, release: threading.Event
) -> None:
    """Before: the hooks had a deadline, the skills' constructors (called afterwards, in the
    loading thread) none: the host's start-up waited for them forever."""
    module = dists.add("sof-aaa-dbskill", HUNG_CONSTRUCTOR, entry_name="dbskill")
    dists.add("sof-zzz-good", GOOD.format(name="GoodSkill", key="good"), entry_name="good")
    started = time.monotonic()
    pm = only("dbskill", "good", plugin_import_timeout=0.5)
    assert time.monotonic() - started < 10, "the host waited for the constructor"  # hang bound
    record = pm.records["dbskill"]
    assert record.status == "failed" and record.error_type == "PluginLoadError"
    assert "its skills' constructors did not return within 0.5 s" in (record.error or "")
    # where it hangs: the plugin's own line, not only the innermost (threading's) one
    assert f"{module}.py:" in (record.error or "")
    assert "builtins.SOF_TEST_RELEASE.wait()  # connect()" in (record.error or "")
    assert "DbSkill" not in pm.registry
    assert pm.records["good"].status == "loaded" and "GoodSkill" in pm.registry
    release.set()
    time.sleep(0.2)
    assert "DbSkill" not in pm.registry


def test_a_skill_constructor_that_raises_is_still_named_in_the_error(dists: Any) -> None:
    raising = GOOD.format(name="BadInit", key="bad").replace(
        "    def execute(self, uif):",
        "    def __init__(self):\n        raise OSError('no database')\n"
        "    def execute(self, uif):")
    dists.add("sof-badinit", raising, entry_name="badinit")
    pm = only("badinit")
    record = pm.records["badinit"]
    assert record.status == "failed" and record.error_type == "SkillDefinitionError"
    assert "could not be instantiated with no arguments: OSError('no database')" in (
        record.error or "")


#: A skill whose constructor installs a signal handler: Python allows that on the main
#: thread only, so its construction is done again there.
SIGNAL_CONSTRUCTOR = GOOD.format(name="SigInitSkill", key="siginit").replace(
    "    def execute(self, uif):",
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        import signal\n"
    "        signal.signal(signal.SIGUSR2, lambda *a: None)\n"
    "    def execute(self, uif):")


@pytest.mark.parametrize(("source", "entry", "skill"), [
    (SIGNALS, "signals", "SignalSkill"),  # at import
    (SIGNAL_HOOK, "sighook", "SigHookSkill"),  # in sof_register_skills()
    (SIGNAL_CONSTRUCTOR, "siginit", "SigInitSkill"),  # in the skill's constructor
], ids=["import", "registration-hook", "skill-constructor"])
def test_plugin_code_that_needs_the_main_thread_still_loads(
    dists: Any, source: str, entry: str, skill: str
) -> None:
    """``signal.signal`` works only on the main thread: code that calls it while the plugin
    loads fails in the import thread, and is run again on the main thread."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGUSR1, signal.SIGUSR2)}
    try:
        dists.add(f"sof-{entry}", source, entry_name=entry)
        pm = only(entry)
        assert pm.records[entry].status == "loaded", pm.records[entry].error
        assert skill in pm.registry
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
