"""The HTTP service under load: concurrent ``POST /v1/query`` over loopback.

``sof serve`` runs as its own process (the load generator must not share its interpreter),
with SOF enabled for every user (rollout 100 %) and the bundled default plan
(``MemoryRetrievalSkill`` then ``ResponseGenerationSkill``) over a SQLite memory of
generated notes. The client sends every query of a round at once (one connection each) and
times each answer. Figures: throughput, p50/p95/p99 latency, errors (any non-200 answer or
an answer without a response; must be none) and the server's resident memory growth from
after a warm-up of 50 queries to after the measured round.

Baseline, in the same run: the same queries through ``QueryRouter.route`` in this process
(same plan, same memory, as many threads as the server's ``max_concurrency``, all submitted
at once and timed from then, as the HTTP round is), so the ratio is what the HTTP layer
(parsing, uvicorn, the event loop, JSON, the run records) adds on top of SOF itself.

Scale: the issue's figure is 1,000 concurrent queries on a 10,000 document memory; that is
the full run. ``--quick`` uses 200 queries on 2,000 documents.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import Row, Section, Target

_WORDS = ("memory system store vector index sam redesign response profile vetting web "
          "search conflict passage answer query embedding cache plan skill graph sqlite "
          "rollout legacy latency metric alert budget server thread process").split()


def _notes(count: int) -> list[str]:
    rng = random.Random(13)
    return [" ".join(rng.choice(_WORDS) for _ in range(16)) for _ in range(count)]


def _queries(count: int) -> list[str]:
    rng = random.Random(29)
    return [f"what does the {rng.choice(_WORDS)} {rng.choice(_WORDS)} do?" for _ in range(count)]


def _fill_memory(path: Path, count: int) -> None:
    from sof_memory import MemoryDocument, SQLiteMemoryBackend

    store = SQLiteMemoryBackend(path)
    store.add_many(MemoryDocument(text, source=f"note-{i}") for i, text in enumerate(_notes(count)))
    store.close()


def _percentile(ordered: list[float], pct: float) -> float:
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _start_server(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "sof_core.cli", "serve", "--port", "0"],
                               env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               text=True)
    assert process.stderr is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if "listening on " in line:
            return process, line.split("listening on ")[1].split("/ ")[0]
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError("sof serve did not start")


async def _round(url: str, queries: list[str]) -> tuple[list[float], int, float]:
    import httpx

    limits = httpx.Limits(max_connections=len(queries), max_keepalive_connections=len(queries))
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        async def one(query: str, index: int) -> tuple[float, bool]:
            started = time.perf_counter()
            answer = await client.post("/v1/query", json={"query": query,
                                                          "user_id": f"user-{index}"})
            ok = answer.status_code == 200 and bool(answer.json().get("final_response"))
            return time.perf_counter() - started, ok

        started = time.perf_counter()
        results = await asyncio.gather(*(one(q, i) for i, q in enumerate(queries)))
        wall = time.perf_counter() - started
    return [r[0] for r in results], sum(1 for r in results if not r[1]), wall


def _in_process(queries: list[str], threads: int) -> tuple[list[float], int, float]:
    """The baseline: the router in this process, no HTTP."""
    from sof_core import CoordinatorEngine, QueryRouter
    from sof_core.config import get_sof_config_manager

    engine = CoordinatorEngine()
    router = QueryRouter(engine, lambda query, **context: "legacy", get_sof_config_manager())
    router.route("warm up", user_id="warm")

    started = 0.0

    def one(item: tuple[int, str]) -> tuple[float, bool]:
        result = router.route(item[1], user_id=f"user-{item[0]}")
        # from the moment all were submitted, like the HTTP round where all are sent at once
        return time.perf_counter() - started, result.ok and result.path == "sof"

    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        results = list(pool.map(one, enumerate(queries)))
        wall = time.perf_counter() - started
    engine.close()
    return [r[0] for r in results], sum(1 for r in results if not r[1]), wall


def run(quick: bool) -> Section:
    concurrent = 200 if quick else 1000
    documents = 2000 if quick else 10_000
    rounds = 1
    section = Section("serve", "HTTP service: concurrent POST /v1/query over loopback")
    section.notes.append(f"scale: {concurrent} concurrent queries ({rounds} measured round after "
                         f"a warm-up of 50), {documents} documents in memory"
                         + (" (--quick; the full run is 1,000 on 10,000)" if quick else ""))
    with tempfile.TemporaryDirectory(prefix="sof-bench-serve-") as tmp:
        folder = Path(tmp)
        config = folder / "sof.json"
        config.write_text(json.dumps({"use_sof_framework": True, "sof_rollout_percentage": 100,
                                      "planner": "static"}))
        memory = folder / "memory.db"
        _fill_memory(memory, documents)
        env = {**os.environ, "SOF_CONFIG": str(config), "SOF_MEMORY_PATH": str(memory),
               "XDG_CACHE_HOME": str(folder / "cache")}
        env.pop("SOF_ADMIN_TOKEN", None)
        os.environ.update({"SOF_CONFIG": str(config), "SOF_MEMORY_PATH": str(memory),
                           "XDG_CACHE_HOME": str(folder / "cache")})
        queries = _queries(concurrent)
        process, url = _start_server(env)
        try:
            asyncio.run(_round(url, queries[:50]))  # warm-up: caches, threads, connections
            before = _rss(process.pid)
            latencies: list[float] = []
            errors = 0
            wall = 0.0
            for _ in range(rounds):
                times, failed, seconds = asyncio.run(_round(url, queries))
                latencies += times
                errors += failed
                wall += seconds
            after = _rss(process.pid)
        finally:
            process.terminate()
            process.wait(30)
        base_times, base_errors, base_wall = _in_process(queries * rounds, 32)
    ordered = sorted(latencies)
    base_ordered = sorted(base_times)
    throughput = len(latencies) / wall
    base_throughput = len(base_times) / base_wall
    section.rows += [
        Row("throughput", throughput, "q/s", base_throughput, "router in-process, 32 threads"),
        Row("latency p50", _percentile(ordered, 50) * 1000, "ms",
            _percentile(base_ordered, 50) * 1000, "router in-process p50",
            note="all queries are sent at once: each latency includes waiting its turn "
            "(the baseline's too: timed from when all were submitted)"),
        Row("latency p95", _percentile(ordered, 95) * 1000, "ms",
            _percentile(base_ordered, 95) * 1000, "router in-process p95"),
        Row("latency p99", _percentile(ordered, 99) * 1000, "ms",
            _percentile(base_ordered, 99) * 1000, "router in-process p99"),
        Row("mean latency", statistics.fmean(latencies) * 1000, "ms",
            statistics.fmean(base_times) * 1000, "router in-process mean"),
        Row("errors", errors, "count", None, f"router in-process errors: {base_errors}"),
        Row("server memory growth", (after - before) / 2**20, "MiB", before / 2**20,
            "server RSS after warm-up",
            note=f"over {len(latencies)} queries; runs kept are bounded (recent_runs)"),
    ]
    section.targets += [
        Target("no errors under load", 0, "count", errors),
        Target("server memory growth over the measured round", 64, "MiB",
               (after - before) / 2**20),
    ]
    return section


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(json.dumps(run(quick).to_dict(), indent=2))
