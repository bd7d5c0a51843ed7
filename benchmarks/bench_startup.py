"""Start-up: ``import sof_core``, ``sof --help``/``--version``, plugin discovery, and a
whole ``sof run`` of the README's demo query.

Every figure is a fresh interpreter (best of k), compared with the interpreter doing the
baseline work only: bare ``python -c pass``, or importing pydantic + networkx + pluggy.
Each command runs once untimed first (a warm machine: bytecode written, files in the page
cache), and every child runs with ``PYTHONDONTWRITEBYTECODE`` removed from its environment:
with it set, as on some CI machines, nothing is ever cached and every import compiles its
source again. Discovery uses real ``.dist-info`` folders (METADATA + entry_points.txt)
generated in a temporary folder on ``PYTHONPATH``, timed inside the child so interpreter
start is excluded.

The demo is the README's: ``sof memory import --sample`` into a fresh data dir, then
``sof run "When was the SAM memory system redesigned, and what does it store?"`` with the
installed plugins. It is timed with the plan store warm (the untimed first run fills it, as
any earlier run of the same plan would) and, for comparison, with ``SOF_PLAN_STORE=0``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import Row, Section, Target, best_of_interleaved

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


DEMO_QUERY = "When was the SAM memory system redesigned, and what does it store?"
#: What the demo rows and their target allow for a whole ``sof run`` (issue 10, item 7).
DEMO_TARGET_MS = 150.0
#: The plugins whose skills the demo's plan runs (memory, conflict detection, response).
DEMO_PLUGINS = "memory,conflict,response"


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without ``PYTHONDONTWRITEBYTECODE`` (see the module docstring)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra or {})
    return env


def _timed(command: list[str], repeat: int, env: dict[str, str] | None = None
           ) -> tuple[float, float]:
    """Best wall and best CPU (user + system) seconds of ``command``, after one warm-up."""
    env = env if env is not None else _environment()
    subprocess.run(command, check=True, capture_output=True, env=env)
    wall = cpu = float("inf")
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        wall = min(wall, time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = min(cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, cpu


def _wall(command: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    return _timed(command, repeat, env)[0]


def _walls_in_turn(commands: list[list[str]], repeat: int) -> list[float]:
    """Best wall seconds of each command, their runs taken in turn (``best_of_interleaved``,
    as the overhead section's rows): rows compared with each other share the machine's
    spells, so a slowdown between two blocks of runs cannot make one look slower."""
    env = _environment()
    for command in commands:
        subprocess.run(command, check=True, capture_output=True, env=env)

    def run(batch: list[list[str]]) -> None:
        subprocess.run(batch[0], check=True, capture_output=True, env=env)

    best = best_of_interleaved(
        {str(index): (lambda command=command: [command], run)
         for index, command in enumerate(commands)}, repeat)
    return [best[str(index)] for index in range(len(commands))]


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
        env = _environment()
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


def _demo(section: Section, sof: list[str], bare: float, bare_cpu: float, repeat: int
          ) -> float | None:
    """The README's demo as a whole process; None when the memory plugin is missing."""
    with tempfile.TemporaryDirectory(prefix="sof-bench-demo-") as tmp:
        root = Path(tmp)
        env = _environment({"XDG_DATA_HOME": str(root / "data"),
                            "XDG_CACHE_HOME": str(root / "cache"),
                            "SOF_CONFIG": str(root / "no-config.json")})
        for key in [k for k in env if k.startswith("SOF_") and k != "SOF_CONFIG"]:
            del env[key]
        seeded = subprocess.run([*sof, "memory", "import", "--sample"], capture_output=True,
                                text=True, env=env, check=False)
        if seeded.returncode != 0:
            section.notes.append("demo rows skipped: `sof memory import --sample` failed "
                                 f"({(seeded.stderr or seeded.stdout).strip()[-200:]})")
            return None
        command = [*sof, "run", DEMO_QUERY]
        answer = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        if "status: success" not in answer.stdout:
            section.notes.append("demo rows skipped: the demo query did not succeed")
            return None
        warm, warm_cpu = _timed(command, repeat, env)  # the warm-up run fills the plan store
        section.rows.append(Row("sof run <README demo query>, whole process", warm * 1e3, "ms",
                                bare * 1e3, "bare python",
                                f"plan store warm; cpu {warm_cpu * 1e3:.0f} ms against "
                                f"{bare_cpu * 1e3:.0f} ms"))
        cold, cold_cpu = _timed(command, repeat, {**env, "SOF_PLAN_STORE": "0"})
        section.rows.append(Row("same, SOF_PLAN_STORE=0 (graph built, networkx imported)",
                                cold * 1e3, "ms", bare * 1e3, "bare python",
                                f"cpu {cold_cpu * 1e3:.0f} ms"))
        # Every installed plugin is imported by every run; this row shows what is left with
        # only the three whose skills the demo's plan runs (an operator's allow-list).
        only = {**env, "SOF_PLUGINS_ONLY": DEMO_PLUGINS}
        if "status: success" in subprocess.run(command, capture_output=True, text=True,
                                                env=only, check=True).stdout:
            lean, lean_cpu = _timed(command, repeat, only)
            section.rows.append(Row(f"same, SOF_PLUGINS_ONLY={DEMO_PLUGINS} (labelled: not "
                                    "the default)", lean * 1e3, "ms", bare * 1e3,
                                    "bare python", f"cpu {lean_cpu * 1e3:.0f} ms"))
        return warm


def run(quick: bool) -> Section:
    section = Section("startup", "Start-up: imports, CLI and plugin discovery")
    repeat = 1 if quick else 9
    python = sys.executable
    bare, bare_cpu = _timed([python, "-c", "pass"], repeat)
    deps, core = _walls_in_turn([[python, "-c", "import pydantic, networkx, pluggy"],
                                 [python, "-c", "import sof_core"]], repeat)
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
    used, whole = _walls_in_turn([
        [python, "-c", "import networkx, pluggy, importlib_metadata, packaging.requirements; "
         "from pydantic import BaseModel, Field"],
        [python, "-c", "import sof_core.execution.coordinator, sof_core.graph.build, "
         "sof_core.plugins, sof_core.routing.router"],
    ], repeat)
    section.rows.append(Row("import every module a host uses", whole * 1e3, "ms", used * 1e3,
                            "the dependencies as used",
                            "coordinator, graph, plugins, router; networkx included"))
    sof = _sof_command()
    version_time = _wall([*sof, "--version"], repeat)
    # `sof --help` lists the commands installed plugins add, so it loads them: its baseline is
    # loading the installed plugins in a bare interpreter (what any host pays at start-up).
    help_time, plugins_time = _walls_in_turn([
        [*sof, "--help"],
        [python, "-c", "from sof_core.config import load_config; "
         "from sof_core.plugins import PluginManager; PluginManager(load_config()).load()"],
    ], repeat)
    section.rows.append(Row("sof --help", help_time * 1e3, "ms", plugins_time * 1e3,
                            "load the installed plugins", "lists plugin commands"))
    section.rows.append(Row("sof --version", version_time * 1e3, "ms", bare * 1e3, "bare python"))
    demo = _demo(section, sof, bare, bare_cpu, repeat)
    counts = (1, 50) if quick else (1, 50, 200)
    empty = _discovery(0, repeat)
    found: dict[int, dict[str, float]] = {}
    for count in counts:
        found[count] = timing = _discovery(count, 1 if quick else 5)
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
    # Issue 5's form of the --help promise; the row above is the fairer one since --help
    # lists the commands installed plugins add (it loads them).
    section.targets.append(Target("sof --help above bare python", 100.0, "ms",
                                  (help_time - bare) * 1e3))
    section.targets.append(Target("discover 200 plugins without importing", 300.0, "ms",
                                  found[200]["discover"] * 1e3 if 200 in found else None))
    section.targets.append(Target("sof run <README demo query>, whole process",
                                  DEMO_TARGET_MS, "ms", None if demo is None else demo * 1e3))
    section.notes.append(f"CLI measured as {' '.join(sof)}")
    section.notes.append("children run without PYTHONDONTWRITEBYTECODE, each command once "
                         "untimed first (warm bytecode and page cache)")
    section.notes.append("rows compared with each other (the import rows and their baselines, "
                         "--help and plugin loading) take their runs in turn")
    return section
