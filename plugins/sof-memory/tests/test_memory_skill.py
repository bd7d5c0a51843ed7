"""MemoryRetrievalSkill: its contract, its place in a plan, and how it picks a backend."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import importlib_metadata
import pytest
import sof_memory.plugin as memory_plugin
from sof_memory import (
    MemoryBackend,
    MemoryBackendError,
    MemoryDocument,
    MemoryFilters,
    MemoryHit,
    MemoryRetrievalSkill,
    SQLiteMemoryBackend,
    UnknownMemoryBackendError,
)
from sof_memory.backend import REQUIRED_METHODS
from sof_memory.importer import sample_corpus
from sof_memory.selection import select_backend

from sof_core import BaseSkillModule, CoordinatorEngine, PluginManager, SOFConfig, hookimpl
from sof_core.errors import ConfigError
from sof_core.testing import check_plugin_module, check_skill_contract, make_engine
from sof_core.uif import UIF

DEMO_QUERY = "When was the SAM memory system redesigned, and what does it store?"
RESULT_KEYS = {"id", "text", "source", "score", "created_at", "metadata"}


@pytest.fixture
def sample_store(backend: SQLiteMemoryBackend) -> SQLiteMemoryBackend:
    backend.add_many(sample_corpus().documents)
    return backend


class KeywordBackend:
    """A host's own store (think SAM's vector store), written only against the protocol.

    It returns plain dicts from ``search``, as a wrapper around another library would.
    """

    def __init__(self, name: str = "sam-vector") -> None:
        self.name = name
        self.docs: dict[str, dict[str, Any]] = {}
        self.searches: list[tuple[str, int, MemoryFilters | None]] = []

    def add(self, text: str, *, source: str = "", metadata: Mapping[str, Any] | None = None,
            id: str | None = None) -> str:
        doc_id = id or f"k{len(self.docs)}"
        self.docs[doc_id] = {"id": doc_id, "text": text, "source": source,
                             "metadata": dict(metadata or {})}
        return doc_id

    def add_many(self, documents: Iterable[MemoryDocument]) -> list[str]:
        return [self.add(d.text, source=d.source, metadata=d.metadata, id=d.id) for d in documents]

    def search(self, query: str, limit: int = 5,
               filters: MemoryFilters | None = None) -> Sequence[dict[str, Any]]:
        self.searches.append((query, limit, filters))
        words = set(query.lower().split())
        scored = [(len(words & set(d["text"].lower().split())), d) for d in self.docs.values()]
        ranked = sorted((pair for pair in scored if pair[0]), key=lambda pair: -pair[0])
        return [{**d, "score": s / len(words)} for s, d in ranked[:limit]]

    def stats(self) -> dict[str, Any]:
        return {"backend": self.name, "documents": len(self.docs)}

    def delete(self, ids: Iterable[str]) -> int:
        return sum(self.docs.pop(i, None) is not None for i in ids)

    def clear(self) -> None:
        self.docs.clear()


class HostPlugin:
    """Another plugin object (as SAM would register in code) offering its own backend."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    @hookimpl
    def sof_register_memory_backends(self) -> list[Any]:
        return [self.backend]


class CitingResponder(BaseSkillModule):
    """A downstream skill reading memory_results the way ResponseGenerationSkill does."""

    skill_name = "CitingResponder"
    skill_description = "Answers from the first memory and cites every source."
    required_inputs = {"memory_results": list}
    optional_inputs = ["source_documents"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        results = uif.intermediate_data["memory_results"]
        best = results[0]["text"] if results else "I have no memory of that."
        uif.final_response = f"{best} [sources: {', '.join(uif.source_documents)}]"
        return uif


def engine_with(*plugins: tuple[str, object], **settings: Any) -> CoordinatorEngine:
    """A real engine whose plugins are loaded and configured as entry points would be."""
    config = SOFConfig(plugins_autoload=False, plugin_settings={"memory": settings})
    manager = PluginManager(config)
    for name, plugin in plugins:
        assert manager.register(plugin, name=name).status == "loaded"
    return CoordinatorEngine(manager, config)  # loads: calls every sof_configure


# --- the contract ------------------------------------------------------------------------


def test_the_skill_declares_what_downstream_skills_rely_on() -> None:
    meta = MemoryRetrievalSkill().get_metadata()
    assert meta["name"] == "MemoryRetrievalSkill"
    assert meta["required_inputs"] == ["input_query"]
    assert meta["optional_inputs"] == ["user_context", "active_profile"]
    assert meta["output_keys"] == ["memory_results", "source_documents"]
    assert meta["types"]["memory_results"] == "list"


def test_the_skill_keeps_the_contract_and_writes_ranked_results(
    sample_store: SQLiteMemoryBackend,
) -> None:
    report = check_skill_contract(MemoryRetrievalSkill(backend=sample_store), query=DEMO_QUERY)
    results = report.uif.intermediate_data["memory_results"]
    assert 2 <= len(results) <= 5
    assert all(set(r) == RESULT_KEYS for r in results)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert "redesigned in" in results[0]["text"]
    expected_sources = list(dict.fromkeys(r["source"] for r in results))
    assert report.uif.source_documents == expected_sources
    assert len(set(report.uif.source_documents)) == len(report.uif.source_documents)


def test_an_empty_store_gives_empty_results_not_an_error(backend: SQLiteMemoryBackend) -> None:
    report = check_skill_contract(MemoryRetrievalSkill(backend=backend), query="anything?")
    assert report.uif.intermediate_data["memory_results"] == []
    assert report.uif.source_documents == []


def test_an_empty_store_warns_and_says_how_to_fill_it(backend: SQLiteMemoryBackend) -> None:
    report = check_skill_contract(MemoryRetrievalSkill(backend=backend), query="anything?")
    (warning,) = report.uif.warnings
    assert "holds no documents" in warning
    assert backend.name in warning
    assert "sof memory import --sample" in warning


def test_a_store_with_no_match_does_not_warn(filled: SQLiteMemoryBackend) -> None:
    report = check_skill_contract(MemoryRetrievalSkill(backend=filled), query="zebra quasar")
    assert report.uif.intermediate_data["memory_results"] == []
    assert report.uif.warnings == []


def test_a_store_whose_stats_fail_gets_no_hint_and_the_search_stands() -> None:
    class NoStats(KeywordBackend):
        def stats(self) -> dict[str, Any]:
            raise RuntimeError("stats are not kept here")

    report = check_skill_contract(MemoryRetrievalSkill(backend=NoStats()), query="anything?")
    assert report.status == "success"
    assert report.uif.warnings == []


def test_the_plugin_module_passes_the_plugin_contract() -> None:
    provided = check_plugin_module("memory", memory_plugin)
    assert "MemoryRetrievalSkill" in provided
    assert "sqlite" in provided


def test_the_distribution_declares_the_memory_entry_point() -> None:
    (ep,) = [e for e in importlib_metadata.entry_points(group="sof.plugins") if e.name == "memory"]
    assert ep.value == "sof_memory.plugin"
    assert ep.dist is not None and ep.dist.metadata["Name"] == "sof-memory"


# --- in a plan ---------------------------------------------------------------------------


def test_a_downstream_skill_reads_memory_results_in_a_real_plan(
    sample_store: SQLiteMemoryBackend,
) -> None:
    engine = make_engine([MemoryRetrievalSkill(backend=sample_store), CitingResponder])
    plan = ["MemoryRetrievalSkill", "CitingResponder"]
    assert engine.validate_plan(plan) == []
    report = engine.run_query(DEMO_QUERY, plan)
    assert report.status == "success", report.errors
    assert report.stages == [["MemoryRetrievalSkill"], ["CitingResponder"]]
    assert "redesigned in" in (report.final_response or "")
    assert "release-notes/sam-2.0.md" in (report.final_response or "")
    assert any("memories from backend 'sqlite'" in line for line in report.uif.log_trace)


def test_goal_planning_finds_the_skill_for_memory_results(
    sample_store: SQLiteMemoryBackend,
) -> None:
    engine = make_engine([MemoryRetrievalSkill(backend=sample_store)])
    assert engine.resolve_goal(["memory_results"]) == ["MemoryRetrievalSkill"]


def test_user_context_sources_and_tags_narrow_the_search(
    sample_store: SQLiteMemoryBackend,
) -> None:
    engine = make_engine([MemoryRetrievalSkill(backend=sample_store)])
    only = engine.run_query(DEMO_QUERY, ["MemoryRetrievalSkill"],
                            user_context={"sources": ["sam-wiki/memory-history.md"]})
    assert only.uif.source_documents == ["sam-wiki/memory-history.md"]
    tagged = engine.run_query(DEMO_QUERY, ["MemoryRetrievalSkill"],
                              user_context={"tags": "release"})
    assert tagged.uif.source_documents == ["release-notes/sam-2.0.md"]


def test_a_specific_profile_hides_other_profiles_documents(
    sample_store: SQLiteMemoryBackend,
) -> None:
    engine = make_engine([MemoryRetrievalSkill(backend=sample_store)])
    query = "profile answers memory sources"

    def profiles(active: str) -> set[Any]:
        report = engine.run_query(query, ["MemoryRetrievalSkill"], active_profile=active)
        return {r["metadata"].get("profile") for r in report.uif.intermediate_data["memory_results"]}

    assert profiles("general") >= {"researcher", "business"}
    assert profiles("business") <= {"business", None} and "business" in profiles("business")


def test_a_malformed_user_context_is_a_skill_error_naming_the_key(
    sample_store: SQLiteMemoryBackend,
) -> None:
    engine = make_engine([MemoryRetrievalSkill(backend=sample_store)])
    report = engine.run_query(DEMO_QUERY, ["MemoryRetrievalSkill"], user_context={"sources": 7})
    assert report.status == "failure"
    assert "user_context['sources']" in " ".join(report.errors)
    assert "MemoryRetrievalSkill" in " ".join(report.errors)


def test_the_limit_comes_from_the_constructor_or_settings(sample_store: SQLiteMemoryBackend) -> None:
    report = check_skill_contract(MemoryRetrievalSkill(backend=sample_store, limit=2), query=DEMO_QUERY)
    assert len(report.uif.intermediate_data["memory_results"]) == 2
    skill = MemoryRetrievalSkill(backend=sample_store)
    skill.configure({"limit": 0}, None)
    with pytest.raises(ConfigError, match=r"plugin_settings\.memory\.limit"):
        _ = skill.limit


# --- choosing the backend ----------------------------------------------------------------


def test_by_default_the_embedded_store_at_the_configured_path_is_used(tmp_path: Path) -> None:
    db = tmp_path / "configured.db"
    engine = engine_with(("memory", memory_plugin), path=str(db))
    store = engine.registry.component("memory_backends", "sqlite").obj
    assert store.path == str(db)
    store.add_many(sample_corpus().documents)
    report = engine.run_query(DEMO_QUERY, ["MemoryRetrievalSkill"])
    assert report.status == "success", report.errors
    assert "release-notes/sam-2.0.md" in report.uif.source_documents
    assert db.exists()
    store.close()


def test_a_host_backend_registered_by_another_plugin_is_used_when_named() -> None:
    host = KeywordBackend("sam-vector")
    host.add("SAM keeps knowledge capsules", source="capsules")
    host.add("unrelated", source="other")
    engine = engine_with(("memory", memory_plugin), ("sam-host", HostPlugin(host)),
                         backend="sam-vector")
    report = engine.run_query("knowledge capsules", ["MemoryRetrievalSkill"],
                              user_context={"tags": ["x"]}, active_profile="researcher")
    assert report.status == "success", report.errors
    results = report.uif.intermediate_data["memory_results"]
    assert [r["source"] for r in results] == ["capsules"]
    assert set(results[0]) == RESULT_KEYS  # dicts from the host are normalised
    query, limit, filters = host.searches[-1]
    assert (query, limit) == ("knowledge capsules", 5)
    assert filters == MemoryFilters(tags=("x",), profile="researcher")


def test_an_unknown_backend_name_fails_the_run_naming_it_and_the_installed_ones() -> None:
    engine = engine_with(("memory", memory_plugin), ("sam-host", HostPlugin(KeywordBackend())),
                         backend="pinecone")
    report = engine.run_query(DEMO_QUERY, ["MemoryRetrievalSkill"])
    assert report.status == "failure"
    message = " ".join(report.errors)
    assert "'pinecone'" in message
    assert "['sam-vector', 'sqlite']" in message
    assert "plugin_settings.memory.backend" in message


def test_select_backend_raises_a_typed_config_error() -> None:
    with pytest.raises(UnknownMemoryBackendError) as info:
        select_backend({"backend": "nope"}, None)
    assert isinstance(info.value, ConfigError)
    assert info.value.installed == ["sqlite"]


def test_a_backend_registered_after_loading_is_picked_up() -> None:
    engine = engine_with(("memory", memory_plugin), backend="late")
    assert engine.run_query("capsules", ["MemoryRetrievalSkill"]).status == "failure"
    late = KeywordBackend("late")
    late.add("capsules arrive late", source="late-source")
    assert engine.plugins.register(HostPlugin(late), name="late-host").status == "loaded"
    report = engine.run_query("capsules", ["MemoryRetrievalSkill"])
    assert report.status == "success", report.errors
    assert report.uif.source_documents == ["late-source"]


def test_replacing_the_named_backend_takes_effect_on_the_next_run() -> None:
    first, second = KeywordBackend("swap"), KeywordBackend("swap")
    first.add("capsules in the first store", source="first")
    second.add("capsules in the second store", source="second")
    engine = engine_with(("memory", memory_plugin), ("host", HostPlugin(first)), backend="swap")
    assert engine.run_query("capsules", ["MemoryRetrievalSkill"]).uif.source_documents == ["first"]
    engine.plugins.unregister("host")
    assert engine.plugins.register(HostPlugin(second), name="host").status == "loaded"
    assert engine.run_query("capsules", ["MemoryRetrievalSkill"]).uif.source_documents == ["second"]


def test_a_backend_without_the_protocol_methods_is_rejected_by_name() -> None:
    class Hollow:
        name = "hollow"

    engine = engine_with(("memory", memory_plugin), ("bad-host", HostPlugin(Hollow())),
                         backend="hollow")
    report = engine.run_query("x", ["MemoryRetrievalSkill"])
    assert report.status == "failure"
    assert "'hollow'" in " ".join(report.errors) and "bad-host" in " ".join(report.errors)


def test_a_failing_backend_becomes_a_skill_error_naming_the_backend() -> None:
    class Broken(KeywordBackend):
        def search(self, query: str, limit: int = 5,
                   filters: MemoryFilters | None = None) -> Sequence[dict[str, Any]]:
            raise RuntimeError("vector index offline")

    engine = make_engine([MemoryRetrievalSkill(backend=Broken("flaky"))])
    report = engine.run_query("anything", ["MemoryRetrievalSkill"])
    assert report.status == "failure"
    assert "memory backend 'flaky'" in " ".join(report.errors)
    assert "vector index offline" in " ".join(report.errors)


def test_a_backend_returning_junk_is_reported() -> None:
    class Junk(KeywordBackend):
        def search(self, query: str, limit: int = 5,
                   filters: MemoryFilters | None = None) -> Sequence[Any]:
            return [42]

    report = make_engine([MemoryRetrievalSkill(backend=Junk("junk"))]).run_query(
        "anything", ["MemoryRetrievalSkill"]
    )
    assert report.status == "failure"
    assert "MemoryHit objects or dicts" in " ".join(report.errors)


def test_without_a_registry_the_skill_uses_sof_memory_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "env.db"
    monkeypatch.setenv("SOF_MEMORY_PATH", str(db))
    seed = SQLiteMemoryBackend(db)
    seed.add("the environment chose this file", source="env")
    seed.close()
    report = check_skill_contract(MemoryRetrievalSkill, query="environment file")
    assert report.uif.source_documents == ["env"]


def test_skill_pickles_with_its_settings_for_remote_executors(tmp_path) -> None:
    """Executors such as sof-dask ship skills to workers: the copy finds the same store."""
    import pickle

    from sof_memory.skill import MemoryRetrievalSkill
    from sof_memory.sqlite_backend import SQLiteMemoryBackend

    from sof_core import UIF
    from sof_core.testing import make_engine

    path = tmp_path / "shipped.db"
    SQLiteMemoryBackend(str(path)).add("Dask runs skills on a cluster.", source="dask.md")
    skill = MemoryRetrievalSkill()
    skill.configure({"path": str(path)}, None)
    copy = pickle.loads(pickle.dumps(skill))
    engine = make_engine([copy])
    report = engine.execute_plan(["MemoryRetrievalSkill"], UIF(input_query="Where do skills run on Dask?"))
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["memory_results"][0]["source"] == "dask.md"


def test_a_shipped_skill_opens_the_store_the_hosts_environment_chose(tmp_path, monkeypatch):
    """A Dask worker started before the host set SOF_MEMORY_PATH (or an isolated worker's
    clean environment) does not see it: before, the copy opened the default store there
    and answered "nothing in memory"."""
    import pickle
    import subprocess
    import sys

    from sof_memory.skill import MemoryRetrievalSkill
    from sof_memory.sqlite_backend import SQLiteMemoryBackend

    path = tmp_path / "host-env.db"
    SQLiteMemoryBackend(str(path)).add("Workers read the host's store.", source="host.md")
    monkeypatch.setenv("SOF_MEMORY_PATH", str(path))
    sent = pickle.dumps(MemoryRetrievalSkill())
    code = ("import pickle, sys\nfrom sof_core import UIF\n"
            "skill = pickle.loads(sys.stdin.buffer.read())\n"
            "uif = skill.execute(UIF(input_query='Which store do workers read?'))\n"
            "print(uif.intermediate_data['memory_results'][0]['source'])\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "SOF_MEMORY_PATH"}
    env["XDG_DATA_HOME"] = str(tmp_path / "worker-data")  # its own default store: empty
    done = subprocess.run([sys.executable, "-c", code], input=sent, env=env,
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == "host.md"


# --- the protocol holds exactly the required methods --------------------------------------


class MinimalStore:
    """A host store with the four required methods only: no ``delete``, ``clear`` or ``name``."""

    def __init__(self) -> None:
        self.docs: list[MemoryDocument] = []

    def add(self, text: str, *, source: str = "", metadata: Mapping[str, Any] | None = None,
            id: str | None = None) -> str:
        doc = MemoryDocument(text=text, source=source, metadata=dict(metadata or {}), id=id)
        self.docs.append(doc)
        return doc.resolved_id()

    def add_many(self, documents: Iterable[MemoryDocument]) -> list[str]:
        return [self.add(d.text, source=d.source, metadata=d.metadata, id=d.id) for d in documents]

    def search(self, query: str, limit: int = 5,
               filters: MemoryFilters | None = None) -> Sequence[MemoryHit]:
        words = set(query.lower().split())
        return [
            MemoryHit(id=d.resolved_id(), text=d.text, source=d.source, score=1.0,
                      created_at="2026-01-05T10:00:00+00:00")
            for d in self.docs if words & set(d.text.lower().split())
        ][:limit]

    def stats(self) -> dict[str, Any]:
        return {"documents": len(self.docs)}


def test_a_store_with_only_the_required_methods_is_a_memory_backend() -> None:
    assert isinstance(MinimalStore(), MemoryBackend)
    assert set(REQUIRED_METHODS) == {"add", "add_many", "search", "stats"}


@pytest.mark.parametrize("missing", REQUIRED_METHODS)
def test_a_store_lacking_a_required_method_is_not_a_memory_backend(missing: str) -> None:
    lacking = type("Lacking", (), {
        m: getattr(MinimalStore, m) for m in REQUIRED_METHODS if m != missing
    })
    assert not isinstance(lacking(), MemoryBackend)


@pytest.mark.parametrize("missing", REQUIRED_METHODS)
def test_a_store_lacking_a_required_method_is_refused_when_passed_to_the_skill(
    missing: str
) -> None:
    # As a registered backend is: at once, naming what is missing (not an AttributeError
    # out of the first query that needs it).
    lacking = type("Lacking", (), {
        m: getattr(MinimalStore, m) for m in REQUIRED_METHODS if m != missing
    })
    with pytest.raises(MemoryBackendError, match=rf"'Lacking'.*lacks \['{missing}'\]"):
        MemoryRetrievalSkill(backend=lacking())


def test_the_skill_runs_on_a_store_with_only_the_required_methods() -> None:
    store = MinimalStore()
    store.add("SAM keeps knowledge capsules", source="capsules")
    store.add("unrelated text", source="other")

    report = check_skill_contract(MemoryRetrievalSkill(backend=store), query="knowledge capsules")

    results = report.uif.intermediate_data["memory_results"]
    assert [r["source"] for r in results] == ["capsules"]
    assert report.uif.source_documents == ["capsules"]
    assert any("backend 'MinimalStore'" in line for line in report.uif.log_trace)


def test_a_registered_store_with_only_the_required_methods_is_used_by_name() -> None:
    named = type("NamedMinimalStore", (MinimalStore,), {"name": "minimal"})()
    named.add("capsules live in the minimal store", source="minimal-source")
    engine = engine_with(("memory", memory_plugin), ("host", HostPlugin(named)),
                         backend="minimal")

    report = engine.run_query("capsules", ["MemoryRetrievalSkill"])

    assert report.status == "success", report.errors
    assert report.uif.source_documents == ["minimal-source"]


def test_registering_a_store_needs_a_name_although_the_protocol_does_not() -> None:
    config = SOFConfig(plugins_autoload=False)
    manager = PluginManager(config)
    result = manager.register(HostPlugin(MinimalStore()), name="nameless-host")
    assert result.status != "loaded"
    assert "no string 'name'" in str(result.error)
