"""The plan store: a plan's graph answers reused by the next process, never trusted blindly.

A second process compiling the same plan must not need networkx (its import cost more than
the rest of ``sof run``); an entry for other declarations, other code, or with content that
is not true of the graph is ignored and rebuilt; the store can be turned off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sof_core import BaseSkillModule, SOFConfig
from sof_core.graph import plan_store
from sof_core.graph.compile import compile_plan
from sof_core.testing import make_engine


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private user cache dir; the store lives in ``<it>/sof/plans``."""
    root = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(root))
    monkeypatch.delenv("SOF_PLAN_STORE", raising=False)
    return root / "sof" / "plans"


def entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.exists() else []


def chain(make_skill: Any, names: str = "ABC", **attrs: Any) -> list[type]:
    keys = ["input_query", *[f"k_{n}" for n in names]]
    return [make_skill(n, [keys[i]], [keys[i + 1]], **attrs) for i, n in enumerate(names)]


def facts(compiled: Any) -> tuple[Any, ...]:
    return (compiled.stages, compiled.order, [p.to_dict() for p in compiled.problems])


# --- across processes ---------------------------------------------------------------------

PROBE = textwrap.dedent(
    """
    import json, sys
    from sof_core import BaseSkillModule, CoordinatorEngine
    from sof_core.config import load_config

    def skill(name, reads, writes):
        def execute(self, uif):
            uif.intermediate_data[writes] = name
            return uif
        return type(name, (BaseSkillModule,), {
            "skill_name": name, "skill_description": "probe", "required_inputs": [reads],
            "output_keys": [writes], "max_execution_time": None, "execute": execute})

    engine = CoordinatorEngine(config=load_config(plugins_autoload=False))  # reads SOF_*
    engine.register_skills([skill("Fetch", "input_query", "docs"),
                            skill("Rank", "docs", "ranked"), skill("Answer", "ranked", "final")])
    compiled = engine.compile(["Answer", "Rank", "Fetch"])
    print(json.dumps({"networkx": "networkx" in sys.modules, "stages": compiled.stages,
                      "order": compiled.order, "ok": compiled.ok}))
    """
)


def probe(cache_root: Path, **env: str) -> dict[str, Any]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    environment.update(XDG_CACHE_HOME=str(cache_root), SOF_CONFIG=str(cache_root / "none.json"),
                       **env)
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            env=environment, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_second_process_compiles_the_same_plan_without_networkx(cache: Path) -> None:
    first = probe(cache.parent.parent)
    assert first["networkx"] is True and len(entries(cache)) == 1
    second = probe(cache.parent.parent)
    assert second["networkx"] is False
    assert (second["stages"], second["order"], second["ok"]) == (
        first["stages"], first["order"], True
    )
    assert second["order"] == ["Fetch", "Rank", "Answer"]


def test_sof_plan_store_0_turns_it_off(cache: Path) -> None:
    probe(cache.parent.parent, SOF_PLAN_STORE="0")
    assert entries(cache) == []
    assert probe(cache.parent.parent, SOF_PLAN_STORE="0")["networkx"] is True


def test_sof_run_twice_the_second_without_networkx(tmp_path: Path, cache: Path) -> None:
    """The real CLI with the installed plugins: the second run's compile uses the store."""
    code = ("import sys; from sof_core.cli.main import main; code = main(sys.argv[1:]); "
            "print('networkx loaded:', 'networkx' in sys.modules); sys.exit(code)")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    environment.update(XDG_CACHE_HOME=str(cache.parent.parent), SOF_MEMORY_PATH=":memory:",
                       SOF_CONFIG=str(tmp_path / "none.json"))
    command = [sys.executable, "-c", code, "run", "What is SOF?", "--plan",
               "MemoryRetrievalSkill", "ResponseGenerationSkill"]
    runs = [subprocess.run(command, capture_output=True, text=True, env=environment,
                           timeout=120, check=False) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert "networkx loaded: True" in runs[0].stdout
    assert "networkx loaded: False" in runs[1].stdout
    assert runs[0].stdout.split("status:")[0] == runs[1].stdout.split("status:")[0]


# --- in one process: same answers, off switches ------------------------------------------


def test_the_stored_answers_are_the_computed_ones(cache: Path, make_skill: Any) -> None:
    engine = make_engine([*chain(make_skill), make_skill("Side", ["input_query"], ["side"])])
    plan = ["C", "Side", "B", "A"]
    fresh = compile_plan(plan, engine.registry, engine.config)
    stored = compile_plan(plan, engine.registry, engine.config)
    off = compile_plan(plan, engine.registry, engine.config.model_copy(update={"plan_store": False}))
    assert facts(fresh) == facts(stored) == facts(off)
    assert len(entries(cache)) == 1


def test_a_cycle_reads_the_same_from_the_store(cache: Path, make_skill: Any) -> None:
    engine = make_engine([make_skill("P", ["q_in"], ["p_out"]), make_skill("Q", ["p_out"], ["q_in"])])
    first = compile_plan(["P", "Q"], engine.registry, engine.config)
    again = compile_plan(["P", "Q"], engine.registry, engine.config)
    assert not first.ok and facts(first) == facts(again)
    assert "cycle: P -[p_out]-> Q; Q -[q_in]-> P" in str(again.problems[0])


def test_no_entry_without_the_plan_cache_or_with_the_store_off(cache: Path,
                                                               make_skill: Any) -> None:
    for settings_ in ({"enable_plan_cache": False}, {"plan_store": False}):
        engine = make_engine(chain(make_skill), **settings_)
        assert engine.compile(["A", "B", "C"]).ok
    assert entries(cache) == []


def test_a_plan_larger_than_the_limit_is_not_stored(cache: Path, make_skill: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_store, "MAX_SKILLS", 2)
    engine = make_engine(chain(make_skill))
    assert engine.compile(["A", "B", "C"]).ok and entries(cache) == []
    assert engine.compile(["A", "B"]).ok and len(entries(cache)) == 1


def test_other_declarations_are_another_entry(cache: Path, make_skill: Any) -> None:
    one = make_engine([make_skill("A", ["input_query"], ["x"]), make_skill("B", ["x"], ["y"])])
    two = make_engine([make_skill("A", ["input_query"], ["x"]), make_skill("B", ["input_query"], ["y"])])
    assert one.compile(["B", "A"]).stages == (("A",), ("B",))
    assert two.compile(["B", "A"]).stages == (("B", "A"),)  # not the first plan's answer
    assert len(entries(cache)) == 2


def test_plan_order_written_keeps_an_optional_reader_where_it_is_listed(
    cache: Path, make_skill: Any
) -> None:
    reader = make_skill("Reader", ["input_query"], ["r"], optional=["x"])
    maker = make_skill("Maker", ["input_query"], ["x"])
    needy = make_skill("Needy", ["x"], ["n"])
    by_deps = make_engine([reader, maker, needy], executor="sequential")
    written = make_engine([reader, maker, needy], executor="sequential", plan_order="written")
    for _ in range(2):  # computed, then read from the store: each mode its own entry
        assert by_deps.compile(["Reader", "Maker"]).order == ("Maker", "Reader")
        assert written.compile(["Reader", "Maker"]).order == ("Reader", "Maker")
        # a required input still orders the plan
        assert written.compile(["Needy", "Maker"]).order == ("Maker", "Needy")
        by_deps, written = (make_engine([reader, maker, needy], executor="sequential"),
                            make_engine([reader, maker, needy], executor="sequential",
                                        plan_order="written"))
    assert len(entries(cache)) == 3
    from sof_core import UIF

    report = written.execute_plan(["Reader", "Maker"], UIF(input_query="q"))
    assert report.status == "success" and report.uif.executed_skills == ["Reader", "Maker"]


def test_an_unwritable_store_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             make_skill: Any) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache dir should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    engine = make_engine(chain(make_skill))
    assert engine.compile(["C", "B", "A"]).order == ("A", "B", "C")


# --- bad entries are ignored and rebuilt --------------------------------------------------


def _entry(cache: Path) -> tuple[Path, dict[str, Any]]:
    (path,) = entries(cache)
    return path, json.loads(path.read_text())


def _tamper(data: dict[str, Any], how: str) -> bytes:
    if how == "garbage":
        return b"\x00\xff not json"
    if how == "truncated":
        return json.dumps(data).encode()[:40]
    changed = json.loads(json.dumps(data))
    if how == "consumer first":
        changed["order"] = list(reversed(changed["order"]))
    elif how == "one stage":
        changed["stages"] = [changed["order"]]
    elif how == "missing skill":
        changed["order"] = changed["order"][:-1]
    elif how == "invented cycle":
        changed["cycles"] = [["A", "C", "A"]]
        changed["stages"] = changed["order"] = []
    elif how == "other material":
        changed["material"] = changed["material"].replace('"A"', '"Z"')
    elif how == "other format":
        changed["format"] = 999
    elif how == "wrong types":
        changed["stages"] = {"A": 1}
    return json.dumps(changed).encode()


TAMPERING = ["garbage", "truncated", "consumer first", "one stage", "missing skill",
             "invented cycle", "other material", "other format", "wrong types"]


def test_an_entry_true_of_the_graph_but_not_what_compiling_gives_is_ignored(
        cache: Path, make_skill: Any) -> None:
    # Four independent skills: any order and any stage order respects the (absent) edges.
    # An entry with them reversed passed the old check, and the run then started with the
    # last skill and reported the stage in reverse: now it must be exactly the compiled one.
    classes = [make_skill(f"P{i}", ["input_query"], [f"p{i}"]) for i in range(1, 5)]
    engine = make_engine(classes)
    plan = ["P1", "P2", "P3", "P4"]
    good = facts(compile_plan(plan, engine.registry, engine.config))
    path, data = _entry(cache)
    forged = dict(data, stages=[list(reversed(plan))], order=list(reversed(plan)))
    path.write_text(json.dumps(forged))
    assert facts(compile_plan(plan, engine.registry, engine.config)) == good
    assert json.loads(path.read_text()) == data
    report = engine.execute_plan(plan, __import__("sof_core").UIF(input_query="q"))
    assert [r.skill for r in report.results] == plan


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("what", ["fifo", "dev zero", "directory"])
def test_something_else_in_an_entrys_place_is_ignored_without_hanging(
        cache: Path, make_skill: Any, what: str) -> None:
    # A FIFO hung compile() for good (it was read like a file); a link to /dev/zero raised
    # MemoryError out of it. What is in an entry's place is read only if it is a regular
    # file of a sane size.
    import threading

    engine = make_engine(chain(make_skill))
    plan = ["C", "B", "A"]
    good = facts(compile_plan(plan, engine.registry, engine.config))
    (path,) = entries(cache)
    path.unlink()
    if what == "fifo":
        os.mkfifo(path)
    elif what == "dev zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    got: list[Any] = []
    worker = threading.Thread(target=lambda: got.append(
        facts(compile_plan(plan, engine.registry, engine.config))), daemon=True)
    worker.start()
    worker.join(20)  # a hang bound, not a speed figure
    assert got == [good]


@pytest.mark.parametrize("how", TAMPERING)
def test_a_bad_entry_is_ignored_and_rebuilt(cache: Path, make_skill: Any, how: str) -> None:
    engine = make_engine(chain(make_skill))
    plan = ["C", "B", "A"]
    good = facts(compile_plan(plan, engine.registry, engine.config))
    path, data = _entry(cache)
    path.write_bytes(_tamper(data, how))
    assert facts(compile_plan(plan, engine.registry, engine.config)) == good
    assert json.loads(path.read_text()) == data  # rewritten with the true answers


CYCLE_TAMPERING: dict[str, Any] = {
    "one cycle of two": lambda cycles: cycles[:1],
    "a cycle twice": lambda cycles: [cycles[0], cycles[0]],
    "cycles swapped": lambda cycles: list(reversed(cycles)),
    "started elsewhere": lambda cycles: [["Q", "P", "Q"], cycles[1]],
    "across two groups": lambda cycles: [cycles[0] + cycles[1][1:], cycles[1]],
}


@pytest.mark.parametrize("how", sorted(CYCLE_TAMPERING))
def test_stored_cycles_that_are_real_edges_but_not_the_plans_cycles_are_ignored(
        cache: Path, make_skill: Any, how: str) -> None:
    # Two independent cycles (P <-> Q, R <-> S): an entry naming only one of them was
    # trusted (each stored cycle followed real edges), and the plan's error named one cycle.
    engine = make_engine([make_skill("P", ["q_in"], ["p_out"]), make_skill("Q", ["p_out"], ["q_in"]),
                          make_skill("R", ["s_in"], ["r_out"]), make_skill("S", ["r_out"], ["s_in"])])
    plan = ["P", "Q", "R", "S"]
    good = facts(compile_plan(plan, engine.registry, engine.config))
    assert len(good[2]) == 2  # both cycles named
    path, data = _entry(cache)
    path.write_text(json.dumps(dict(data, cycles=CYCLE_TAMPERING[how](data["cycles"]))))
    assert facts(compile_plan(plan, engine.registry, engine.config)) == good
    assert json.loads(path.read_text()) == data  # rewritten with the true answers


def test_no_temporary_files_are_left_behind(cache: Path, make_skill: Any) -> None:
    classes = [make_skill(f"S{i}", ["input_query"], [f"s{i}"]) for i in range(20)]
    engine = make_engine(classes)
    for i in range(20):
        engine.compile([f"S{i}"])
    assert len(entries(cache)) == 20
    assert [p.name for p in cache.iterdir() if p.name.startswith(".tmp-")] == []


def test_the_store_lives_in_the_user_cache_dir(cache: Path) -> None:
    assert plan_store.store_dir() == cache


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG base dirs: Linux")
def test_a_relative_xdg_dir_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The XDG spec: relative values are invalid and ignored. Before, the cache (and the
    # config file) went wherever the process was started.
    from sof_core._paths import cache_dir, config_file

    monkeypatch.delenv("SOF_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no SAM config/sof_config.json here
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative-cache")
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative-config")
    assert cache_dir() == tmp_path / "home" / ".cache" / "sof"
    assert config_file() == tmp_path / "home" / ".config" / "sof" / "config.json"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "abs"))
    assert cache_dir() == tmp_path / "abs" / "sof"


# --- property: whatever the graph, store and networkx agree --------------------------------

KEYS = [f"k{i}" for i in range(6)]


@st.composite
def declarations(draw: Any) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=1, max_value=7))
    skills = []
    for index in range(count):
        outputs = [f"o{index}", *draw(st.lists(st.sampled_from(KEYS), max_size=1))]
        pool = [f"o{j}" for j in range(count) if j != index] + KEYS + ["input_query"]
        inputs = draw(st.lists(st.sampled_from(pool), max_size=3, unique=True))
        skills.append({"name": f"S{index}", "inputs": [k for k in inputs if k not in outputs],
                       "outputs": outputs, "parallel": draw(st.booleans())})
    return skills


@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(defs=declarations(), data=st.data())
def test_stored_answers_equal_fresh_ones_for_any_graph(
    defs: list[dict[str, Any]], data: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "property-cache"))

    def execute(self: Any, uif: Any) -> Any:
        return uif

    classes = [type(d["name"], (BaseSkillModule,), {
        "skill_name": d["name"], "skill_description": "generated",
        "required_inputs": d["inputs"], "output_keys": d["outputs"],
        "can_run_parallel": d["parallel"], "max_execution_time": None, "execute": execute,
    }) for d in defs]
    engine = make_engine(classes)
    plan = data.draw(st.permutations([d["name"] for d in defs]))
    off = SOFConfig(plugins_autoload=False, plan_store=False)
    expected = facts(compile_plan(plan, engine.registry, off))
    assert facts(compile_plan(plan, engine.registry, engine.config)) == expected  # miss
    assert facts(compile_plan(plan, engine.registry, engine.config)) == expected  # hit
    # The store's own check recomputes the answers without networkx: they must be the
    # very ones networkx gives (else every entry would be refused, or a wrong one taken).
    specs = [engine.registry.skill(name).spec for name in plan]
    producers, edges = plan_store.dependency_edges(specs)
    computed = plan_store._compute(specs, producers, edges)
    if not computed.cycles:
        assert plan_store._answers(specs, edges) == (computed.order, computed.stages)
        plan_store._check(specs, edges, (), computed.stages, computed.order)


def test_without_a_home_directory_plans_still_compile(monkeypatch: pytest.MonkeyPatch,
                                                      make_skill: Any) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    engine = make_engine(chain(make_skill))
    assert engine.compile(["C", "B", "A"]).order == ("A", "B", "C")
