"""Isolation that holds: in-place changes to anything a skill did not declare as an output
never reach the UIF, and a skill that fails leaves the UIF exactly as it found it.

While a run goes, the UIF's containers are read-only to skills (changing one raises
``UndeclaredWriteError`` naming the key or field, before anything changed); a skill gets its
own copy of what it may change in place (a key it declares as input and output, a container
field it declares as output), and that copy is its write. Checked on every executor, the
remote replay included.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule
from sof_core.skills.views import ReadOnlyDict, ReadOnlyList, ReadOnlySet
from sof_core.testing import make_engine

_spec = importlib.util.spec_from_file_location(
    "_keys_test_helpers", Path(__file__).with_name("test_keys_named_like_uif_fields.py")
)
assert _spec is not None and _spec.loader is not None
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
CONFIGS = _helpers.CONFIGS
engine_for = _helpers.engine_for

# Compared before and after a failed skill: everything but the coordinator's own bookkeeping.
KEPT = ("intermediate_data", "user_context", "security_context", "source_documents",
        "final_response", "vetted_content", "confidence_score", "log_trace", "warnings",
        "skill_outputs", "active_profile", "requires_vetting")


def skill(name: str, body: Any, requires: Any = (), outputs: Any = (), **attrs: Any) -> type:
    return type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"test skill {name}",
        "required_inputs": list(requires), "output_keys": list(outputs),
        "max_execution_time": None, "execute": body, **attrs,
    })


def fresh_uif() -> UIF:
    return UIF(
        input_query="q",
        user_context={"prefs": {"lang": "en"}, "tags": ["a"]},
        security_context={"roles": ["reader"]},
        source_documents=["doc1"],
        intermediate_data={"docs": [{"id": 1, "score": 0.5}, {"id": 2, "score": 0.4}],
                           "meta": {"n": 1}},
    )


def make(self: Any, uif: UIF) -> UIF:
    """Values a host cannot pass (the UIF holds JSON data) but a skill may write."""
    uif.intermediate_data["labels"] = {"x", "y"}
    uif.intermediate_data["pair"] = (1, [2])
    return uif


def state(uif: UIF) -> dict[str, Any]:
    return copy.deepcopy({name: getattr(uif, name) for name in KEPT})


MUTATIONS = {
    "user_context[...] =": (lambda u: u.user_context.__setitem__("k", 1), "user_context"),
    "user_context nested": (lambda u: u.user_context["prefs"].update(lang="fr"),
                            "user_context"),
    "user_context list": (lambda u: u.user_context["tags"].append("b"), "user_context"),
    "security_context": (lambda u: u.security_context["roles"].append("admin"),
                         "security_context"),
    "source_documents.append": (lambda u: u.source_documents.append("doc2"),
                                "source_documents"),
    "source_documents +=": (lambda u: u.source_documents.__iadd__(["doc2"]),
                            "source_documents"),
    "execution_plan": (lambda u: u.execution_plan.append("Other"), "execution_plan"),
    "mark_skill_complete": (lambda u: u.mark_skill_complete("Mutate", 0.1), "executed_skills"),
    "read list .append": (lambda u: u.intermediate_data["docs"].append({"id": 2}), "docs"),
    "read list sort": (lambda u: u.intermediate_data["docs"].sort(key=lambda d: -d["id"]),
                       "docs"),
    "read list item": (lambda u: u.intermediate_data["docs"][0].__setitem__("score", 1),
                       "docs"),
    "read dict": (lambda u: u.intermediate_data["meta"].pop("n"), "meta"),
    "read set": (lambda u: u.intermediate_data["labels"].add("z"), "labels"),
    "items()": (lambda u: dict(u.intermediate_data.items())["docs"].clear(), "docs"),
    "list in a tuple": (lambda u: u.intermediate_data["pair"][1].append(3), "pair"),
}


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_an_in_place_change_to_something_not_declared_is_refused_and_changes_nothing(
    config: dict[str, Any], mutation: str
) -> None:
    change, key = MUTATIONS[mutation]

    def body(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["out"] = 1
        change(uif)
        return uif

    engine = engine_for([skill("Make", make, ["input_query"], ["labels", "pair"]),
                         skill("Mutate", body, ["docs", "meta", "labels", "pair"], ["out"])],
                        config)
    before = state(engine.execute_plan(["Make"], fresh_uif()).uif)
    report = engine.execute_plan(["Make", "Mutate"], fresh_uif())
    result = report.result("Mutate")
    if config["executor"] == "pickled" and mutation == "mark_skill_complete":
        # Far away, an appended executed_skills cannot be told from an assigned one; the
        # coordinator keeps it, so replaying it is refused all the same.
        assert result.error_type == "UndeclaredWriteError"
    else:
        assert result.status == "failed" and result.error_type == "UndeclaredWriteError"
        assert f"{key!r}" in result.error, result.error
    assert state(report.uif) == before
    assert report.uif.executed_skills == ["Make"]


@pytest.mark.parametrize("config", CONFIGS)
def test_a_key_declared_as_input_and_output_may_change_in_place_and_is_merged(
    config: dict[str, Any],
) -> None:
    def grow(self: Any, uif: UIF) -> UIF:
        docs = uif.intermediate_data["docs"]
        docs.append({"id": 2})
        docs[0]["score"] = 0.9
        assert uif.intermediate_data["docs"] is docs  # the same copy each time it is read
        return uif

    def count(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["n"] = len(uif.intermediate_data["docs"])
        return uif

    skills = [skill("Grow", grow, ["docs"], ["docs"]), skill("Count", count, ["docs"], ["n"])]
    uif = fresh_uif()
    original = uif.intermediate_data["docs"]
    report = engine_for(skills, config).execute_plan(["Grow", "Count"], uif)
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["docs"] == [
        {"id": 1, "score": 0.9}, {"id": 2, "score": 0.4}, {"id": 2}
    ]
    assert report.uif.intermediate_data["n"] == 3
    assert original == [{"id": 1, "score": 0.5}, {"id": 2, "score": 0.4}]  # the host's


@pytest.mark.parametrize("config", CONFIGS)
def test_a_container_field_declared_as_output_may_change_in_place_and_is_merged(
    config: dict[str, Any],
) -> None:
    def cite(self: Any, uif: UIF) -> UIF:
        uif.source_documents.append("doc2")
        uif.user_context["seen"] = True
        return uif

    def read(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["n"] = [list(uif.source_documents), dict(uif.user_context)]
        return uif

    skills = [skill("Cite", cite, ["input_query"], ["source_documents", "user_context"]),
              skill("Read", read, ["source_documents"], ["n"])]
    report = engine_for(skills, config).execute_plan(["Cite", "Read"], fresh_uif())
    assert report.status == "success", report.errors
    assert report.uif.source_documents == ["doc1", "doc2"]
    assert report.uif.user_context["seen"] is True
    assert report.uif.intermediate_data["n"][0] == ["doc1", "doc2"]
    assert report.uif.intermediate_data["n"][1]["seen"] is True


@pytest.mark.parametrize("config", CONFIGS)
def test_an_in_place_change_to_a_declared_field_is_validated(config: dict[str, Any]) -> None:
    def bad(self: Any, uif: UIF) -> UIF:
        uif.source_documents.append(42)  # type: ignore[arg-type]
        return uif

    uif = fresh_uif()
    before = state(uif)
    report = engine_for([skill("Bad", bad, ["input_query"], ["source_documents"])],
                        config).execute_plan(["Bad"], uif)
    result = report.result("Bad")
    assert result.status == "failed" and "source_documents" in result.error
    assert state(report.uif) == before


def fail_after_changes(how: str) -> Any:
    def body(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["docs"].append({"id": 99})  # its own input-and-output key
        uif.source_documents.append("doc9")  # a field it declares
        uif.final_response = "half done"
        uif.intermediate_data["out"] = "partial"
        uif.add_log_entry("working", "Fail")
        uif.add_warning("careful")
        uif.set_skill_output("Fail", {"k": 1})
        if how == "raise":
            raise RuntimeError("gave up")
        if how == "set_error":
            uif.set_error("gave up", "Fail")
        return uif
    return body


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("how", ["raise", "set_error"])
def test_a_skill_that_fails_leaves_the_uif_as_it_found_it(config: dict[str, Any],
                                                          how: str) -> None:
    uif = fresh_uif()
    before = state(uif)
    engine = engine_for([skill("Fail", fail_after_changes(how), ["docs"],
                               ["docs", "source_documents", "final_response", "out"])],
                        config)
    report = engine.execute_plan(["Fail"], uif)
    assert report.result("Fail").status == "failed"
    assert state(report.uif) == before
    assert report.uif.executed_skills == [] and report.uif.skill_timings == {}


def test_a_skill_that_times_out_leaves_the_uif_as_it_found_it_even_later() -> None:
    release = threading.Event()
    finished = threading.Event()

    def hang(self: Any, uif: UIF) -> UIF:
        docs = uif.intermediate_data["docs"]
        docs.append({"id": 99})
        release.wait(5)
        docs.append({"id": 100})  # after its timeout: must reach nothing either
        with contextlib.suppress(Exception):
            uif.user_context["late"] = True
        finished.set()
        return uif

    uif = fresh_uif()
    before = state(uif)
    engine = make_engine([skill("Hang", hang, ["docs"], ["docs"], max_execution_time=0.2)])
    report = engine.execute_plan(["Hang"], uif)
    assert report.result("Hang").status == "timeout"
    release.set()
    assert finished.wait(5)
    assert state(report.uif) == before


@pytest.mark.parametrize("config", CONFIGS)
def test_after_the_run_the_uif_holds_plain_containers_the_host_can_change(
    config: dict[str, Any],
) -> None:
    def produce(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["made"] = {"rows": [[1, 2]], "tags": {"t"}}
        return uif

    uif = fresh_uif()
    host_context, host_docs = uif.user_context, uif.intermediate_data["docs"]
    report = engine_for([skill("Produce", produce, ["input_query"], ["made"])],
                        config).execute_plan(["Produce"], uif)
    assert report.status == "success", report.errors
    final = report.uif
    assert final.user_context is host_context and final.intermediate_data["docs"] is host_docs
    for value in (final.user_context, final.security_context, final.source_documents,
                  final.execution_plan, final.executed_skills, final.skill_timings,
                  final.intermediate_data["made"], final.intermediate_data["made"]["rows"]):
        assert type(value) in (dict, list), type(value)
    assert type(final.intermediate_data["made"]["tags"]) is set
    final.user_context["after"] = 1
    final.intermediate_data["made"]["rows"].append([3])
    final.source_documents.append("doc3")
    assert final.executed_skills == ["Produce"] and set(final.skill_timings) == {"Produce"}


def _plain_all_through(value: Any) -> None:
    """Every container in ``value`` is a plain one the host may change."""
    assert type(value) not in (ReadOnlyList, ReadOnlyDict, ReadOnlySet), value
    if isinstance(value, dict):
        for item in value.values():
            _plain_all_through(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            _plain_all_through(item)


@pytest.mark.parametrize("config", CONFIGS)
def test_what_a_skill_passes_through_is_plain_after_the_run(config: dict[str, Any]) -> None:
    def passes(self: Any, uif: UIF) -> UIF:
        docs, meta = uif.intermediate_data["docs"], uif.intermediate_data["meta"]
        uif.intermediate_data["out"] = docs
        uif.intermediate_data["nested"] = {"d": docs, "t": (meta, 1), "ctx": uif.user_context,
                                           "plan": uif.execution_plan}
        uif.source_documents = docs[0]["tags"]
        return uif

    def changes(self: Any, uif: UIF) -> UIF:  # later in the run it is still read-only
        uif.intermediate_data["out"].append(1)
        return uif

    uif = fresh_uif()
    uif.intermediate_data["docs"][0]["tags"] = ["t"]
    passing = skill("Passes", passes, ["docs", "meta"], ["out", "nested", "source_documents"])
    report = engine_for([passing, skill("Changes", changes, ["out"], ["x"])],
                        config).execute_plan(["Passes", "Changes"], uif)
    assert report.status == "failure"
    assert report.errors == [  # named after the key it read, not the one it was copied from
        "Changes: UndeclaredWriteError: changed 'out' in place, which is not in its "
        "output_keys; change a copy (list(...), dict(...), copy.deepcopy(...)) or add 'out' "
        "to output_keys"]

    uif = fresh_uif()
    uif.intermediate_data["docs"][0]["tags"] = ["t"]
    report = engine_for([passing], config).execute_plan(["Passes"], uif)
    assert report.status == "success", report.errors
    final = report.uif
    for name in ("out", "nested"):
        _plain_all_through(final.intermediate_data[name])
    _plain_all_through(final.source_documents)
    final.intermediate_data["out"].append({"id": 3})
    final.intermediate_data["out"][0]["score"] = 0.9
    final.intermediate_data["nested"]["d"].clear()
    final.intermediate_data["nested"]["t"][0]["n"] = 2
    final.intermediate_data["nested"]["ctx"]["tags"].append("b")
    final.intermediate_data["nested"]["plan"].append("Other")
    final.source_documents.append("u")
    assert uif.intermediate_data["docs"][0] == {"id": 1, "score": 0.5, "tags": ["t"]}


@pytest.mark.parametrize("config", CONFIGS)
def test_a_skill_may_copy_what_it_reads_and_change_the_copy(config: dict[str, Any]) -> None:
    def rework(self: Any, uif: UIF) -> UIF:
        docs = uif.intermediate_data["docs"]
        mine = copy.deepcopy(docs)
        mine[0]["score"] = 1.0
        ranked = sorted(docs, key=lambda d: d["id"]) + list(uif.source_documents)
        context = dict(uif.user_context)
        context["extra"] = True
        json.dumps(docs)
        pickle.loads(pickle.dumps(uif.intermediate_data["meta"]))["n"] = 2
        assert uif.intermediate_data["docs"] is docs  # the same read-only copy at every read
        assert isinstance(docs, list) and isinstance(uif.user_context, dict)
        types.extend([type(docs).__name__, type(uif.user_context).__name__])
        for plain in (list(docs), docs.copy(), copy.deepcopy(docs), sorted(docs, key=str),
                      dict(uif.intermediate_data["meta"]), uif.user_context.copy()):
            assert type(plain) in (list, dict)
        docs.copy().append(1)
        uif.intermediate_data["out"] = [mine, len(ranked), sorted(context)]
        return uif

    types: list[str] = []
    report = engine_for([skill("Rework", rework, ["docs", "meta"], ["out"])],
                        config).execute_plan(["Rework"], fresh_uif())
    assert report.status == "success", report.errors
    if config["executor"] != "pickled":  # far away the skill works on plain copies
        assert types == ["ReadOnlyList", "ReadOnlyDict"]
    assert report.uif.intermediate_data["out"] == [
        [{"id": 1, "score": 1.0}, {"id": 2, "score": 0.4}], 3, ["extra", "prefs", "tags"]
    ]
    assert report.uif.intermediate_data["docs"] == [{"id": 1, "score": 0.5},
                                                    {"id": 2, "score": 0.4}]


class Counter:
    """Not a dict, list or set: cannot be made read-only, so readers get their own copy."""

    def __init__(self) -> None:
        self.n = 0


@pytest.mark.parametrize("config", CONFIGS)
def test_an_object_that_cannot_be_made_read_only_is_copied_for_each_reader(
    config: dict[str, Any],
) -> None:
    made: list[Counter] = []

    def produce(self: Any, uif: UIF) -> UIF:
        made.append(Counter())
        uif.intermediate_data["counter"] = made[0]
        return uif

    def bumper(out: str) -> Any:
        def bump(self: Any, uif: UIF) -> UIF:
            counter = uif.intermediate_data["counter"]
            counter.n += 1
            assert uif.intermediate_data["counter"] is counter  # its copy, each time
            uif.intermediate_data[out] = counter.n
            return uif
        return bump

    engine = engine_for([skill("Produce", produce, ["input_query"], ["counter"]),
                         skill("Bump", bumper("seen"), ["counter"], ["seen"]),
                         skill("Bump2", bumper("seen2"), ["counter"], ["seen2"])], config)
    report = engine.execute_plan(["Produce", "Bump", "Bump2"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["seen"] == 1
    assert report.uif.intermediate_data["seen2"] == 1
    stored = report.uif.intermediate_data["counter"]
    assert stored.n == 0
    if config["executor"] != "pickled":  # remote: the producer's object came back pickled
        assert stored is made[0]


@pytest.mark.parametrize("config", CONFIGS[:6])
def test_concurrent_readers_see_the_value_as_it_was_written(config: dict[str, Any]) -> None:
    barrier = threading.Barrier(2, timeout=5)
    concurrent = config["executor"] != "sequential"

    def spoil(self: Any, uif: UIF) -> UIF:
        if concurrent:
            barrier.wait()
        try:
            uif.intermediate_data["docs"].clear()
        finally:
            if concurrent:
                barrier.wait()
        return uif

    def read(self: Any, uif: UIF) -> UIF:
        if concurrent:
            barrier.wait()
            barrier.wait()
        uif.intermediate_data["seen"] = list(uif.intermediate_data["docs"])
        return uif

    engine = make_engine([skill("Spoil", spoil, ["docs"], ["a"]),
                          skill("Read", read, ["docs"], ["seen"])],
                         continue_on_skill_failure=True, **config)
    report = engine.execute_plan(["Spoil", "Read"], fresh_uif())
    assert report.result("Spoil").error_type == "UndeclaredWriteError"
    assert report.uif.intermediate_data["seen"] == [{"id": 1, "score": 0.5},
                                                    {"id": 2, "score": 0.4}]


class Handle:
    """An object deepcopy cannot copy (it holds a lock): handed to readers as it is."""

    def __init__(self) -> None:
        self.lock = threading.Lock()


@pytest.mark.parametrize("config", CONFIGS[:6])
def test_an_object_that_cannot_be_copied_is_handed_as_it_is(config: dict[str, Any]) -> None:
    handle = Handle()

    def use(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["same"] = uif.intermediate_data["handle"] is handle
        return uif

    def produce(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["handle"] = handle
        return uif

    engine = engine_for([skill("Produce", produce, ["input_query"], ["handle"]),
                         skill("Use", use, ["handle"], ["same"])], config)
    report = engine.execute_plan(["Produce", "Use"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["same"] is True


@pytest.mark.parametrize("config", CONFIGS)
def test_skills_see_the_coordinators_records_as_they_were_before_the_run(
    config: dict[str, Any],
) -> None:
    def first(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["a"] = 1
        return uif

    def second(self: Any, uif: UIF) -> UIF:
        uif.intermediate_data["seen"] = [list(uif.executed_skills), dict(uif.skill_timings),
                                         list(uif.execution_plan)]
        return uif

    engine = engine_for([skill("First", first, ["input_query"], ["a"]),
                         skill("Second", second, ["a"], ["seen"])], config)
    uif = UIF(input_query="q", executed_skills=["Earlier"], skill_timings={"Earlier": 0.5})
    report = engine.execute_plan(["First", "Second"], uif)
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["seen"] == [
        ["Earlier"], {"Earlier": 0.5}, ["First", "Second"]
    ]
    assert report.uif.executed_skills == ["Earlier", "First", "Second"]
    assert set(report.uif.skill_timings) == {"Earlier", "First", "Second"}
