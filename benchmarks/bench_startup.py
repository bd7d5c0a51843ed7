"""Start-up: ``import sof_core``, ``sof --help``/``--version`` and plugin discovery.

Every figure is a fresh interpreter (best of k), compared with the interpreter doing the
baseline work only: bare ``python -c pass``, or importing pydantic + networkx + pluggy.
Discovery uses real ``.dist-info`` folders (METADATA + entry_points.txt) generated in a
temporary folder on ``PYTHONPATH``, timed inside the child so interpreter start is excluded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import Row, Section, Target

PLUGIN_SOURCE = '''\
from sof_core import BaseSkillModule, hookimpl


class BenchSkill{i}(BaseSkillModule):
    skill_name = "BenchSkill{i}"
    skill_description = "benchmark plugin skill {i}"
    output_keys = ["bench_{i}"]

    def execute(self, uif):
        uif.intermediate_data["bench_{i}"] = {i}
        return uif


@hookimpl
def sof_register_skills():
    return [BenchSkill{i}]
'''

DISCOVER = textwrap.dedent(
    """
    import json, sys, time
    names = sys.argv[1].split(",") if sys.argv[1] else []
    from sof_core.config import SOFConfig
    from sof_core.plugins import PluginManager
    manager = PluginManager(SOFConfig(plugins_only=names or ["-none-"]))
    started = time.perf_counter()
    records = manager.discover()
    discovered = time.perf_counter() - started
    manager = PluginManager(SOFConfig(plugins_only=names or ["-none-"]))
    started = time.perf_counter()
    manager.load()
    loaded = time.perf_counter() - started
    ok = sum(1 for r in manager.records.values() if r.status == "loaded" and r.name in names)
    print(json.dumps({"discover": discovered, "load": loaded, "found": len(records), "ok": ok}))
    """
)


def _wall(command: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        best = min(best, time.perf_counter() - started)
    return best


def _sof_command() -> list[str]:
    """The real console script next to this interpreter (not a shim), else ``-m``."""
    script = Path(sys.executable).parent / "sof"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "sof_core.cli"]


def _write_plugins(root: Path, count: int) -> list[str]:
    names = []
    for i in range(count):
        name = f"sof-bench-plugin-{i}"
        module = f"sof_bench_plugin_{i}"
        (root / f"{module}.py").write_text(PLUGIN_SOURCE.format(i=i))
        info = root / f"{module}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
            "Requires-Dist: sof-core>=0.1,<0.2\n"
        )
        (info / "entry_points.txt").write_text(f"[sof.plugins]\nbench{i} = {module}\n")
        names.append(f"bench{i}")
    return names


def _discovery(count: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="sof-bench-plugins-") as tmp:
        names = _write_plugins(Path(tmp), count)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tmp, env.get("PYTHONPATH")]))
        env["SOF_CONFIG"] = str(Path(tmp) / "no-config.json")
        best: dict[str, float] = {}
        for _ in range(repeat):
            proc = subprocess.run([sys.executable, "-c", DISCOVER, ",".join(names)],
                                  check=True, capture_output=True, text=True, env=env)
            data = json.loads(proc.stdout)
            if data["ok"] != count:
                raise RuntimeError(f"only {data['ok']} of {count} generated plugins loaded")
            for key in ("discover", "load"):
                best[key] = min(best.get(key, float("inf")), data[key])
        return best


def run(quick: bool) -> Section:
    section = Section("startup", "Start-up: imports, CLI and plugin discovery")
    repeat = 3 if quick else 9
    python = sys.executable
    bare = _wall([python, "-c", "pass"], repeat)
    deps = _wall([python, "-c", "import pydantic, networkx, pluggy"], repeat)
    core = _wall([python, "-c", "import sof_core"], repeat)
    section.rows.append(Row("import sof_core", core * 1e3, "ms", deps * 1e3,
                            "import pydantic+networkx+pluggy",
                            f"{(core - bare) * 1e3:.0f} ms above bare python"))
    full = _wall([python, "-c", "from sof_core import UIF, BaseSkillModule, CoordinatorEngine"],
                 repeat)
    section.rows.append(Row("import UIF, BaseSkillModule, CoordinatorEngine", full * 1e3, "ms",
                            deps * 1e3, "import pydantic+networkx+pluggy",
                            "what a host that runs plans imports (networkx still lazy)"))
    # The stricter reading: everything a host that routes queries imports, networkx included,
    # against the dependencies as the core uses them (pydantic's BaseModel is lazy to import,
    # so `import pydantic` alone understates what any pydantic user pays).
    used = _wall([python, "-c", "import networkx, pluggy, importlib_metadata, "
                  "packaging.requirements; from pydantic import BaseModel, Field"], repeat)
    whole = _wall([python, "-c", "import sof_core.execution.coordinator, sof_core.graph.build, "
                   "sof_core.plugins, sof_core.routing.router"], repeat)
    section.rows.append(Row("import every module a host uses", whole * 1e3, "ms", used * 1e3,
                            "the dependencies as used",
                            "coordinator, graph, plugins, router; networkx included"))
    sof = _sof_command()
    help_time = _wall([*sof, "--help"], repeat)
    version_time = _wall([*sof, "--version"], repeat)
    # `sof --help` lists the commands installed plugins add, so it loads them: its baseline is
    # loading the installed plugins in a bare interpreter (what any host pays at start-up).
    plugins_time = _wall([python, "-c", "from sof_core.config import load_config; "
                          "from sof_core.plugins import PluginManager; "
                          "PluginManager(load_config()).load()"], repeat)
    section.rows.append(Row("sof --help", help_time * 1e3, "ms", plugins_time * 1e3,
                            "load the installed plugins", "lists plugin commands"))
    section.rows.append(Row("sof --version", version_time * 1e3, "ms", bare * 1e3, "bare python"))
    counts = (1, 50) if quick else (1, 50, 200)
    empty = _discovery(0, repeat)
    found: dict[int, dict[str, float]] = {}
    for count in counts:
        found[count] = timing = _discovery(count, 3 if quick else 5)
        section.rows.append(Row(f"discover {count} plugin distributions (no import)",
                                timing["discover"] * 1e3, "ms", empty["discover"] * 1e3,
                                "discover with none added"))
        section.rows.append(Row(f"load {count} plugins (import + register)",
                                timing["load"] * 1e3, "ms", empty["load"] * 1e3,
                                "load with none added",
                                f"{(timing['load'] - empty['load']) / count * 1e3:.2f} ms/plugin"))
    section.targets.append(Target("import sof_core above pydantic+networkx+pluggy", 30.0, "ms",
                                  (core - deps) * 1e3))
    section.targets.append(Target("host modules above the dependencies as used", 30.0, "ms",
                                  (whole - used) * 1e3))
    section.targets.append(Target("sof --help above loading the installed plugins", 100.0, "ms",
                                  (help_time - plugins_time) * 1e3))
    section.targets.append(Target("sof --version above bare python", 100.0, "ms",
                                  (version_time - bare) * 1e3))
    section.targets.append(Target("discover 200 plugins without importing", 300.0, "ms",
                                  found[200]["discover"] * 1e3 if 200 in found else None))
    section.notes.append(f"CLI measured as {' '.join(sof)}")
    return section
