"""Many queries through one engine, concurrently: ``run_batch`` and ``arun_batch``.

Each query is one run (``engine.run_query``), so a query that fails, or a plan that does not
validate, becomes an error on that item and never stops the batch. Results come back in
input order with a summary (count, errors, latency percentiles, throughput) for
``sof run --file queries.txt`` and for scripts. Each item's JSON is the run's JSON (schema
``sof.run/1``, ``ExecutionReport.to_dict``) plus the item's ``index``, ``latency_ms``,
``error`` and ``error_type``. Runs are independent, so the batch's
concurrency is separate from the executor's (which runs the skills *within* one run).

    from sof_core.execution.batch import run_batch, format_summary
    batch = run_batch(engine, ["What is SOF?", "Who wrote SAM?"])
    print(format_summary(batch.summary))
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sof_core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sof_core.execution.coordinator import CoordinatorEngine
    from sof_core.execution.report import ExecutionReport

#: The name and version of ``BatchResult.to_dict()`` (``sof run --file --json``).
BATCH_SCHEMA = "sof.batch/1"
#: Called after each query finishes, in the caller's thread: ``progress(done, total, item)``.
ProgressCallback = Callable[[int, int, "BatchItem"], None]


@dataclass
class BatchItem:
    """One query of a batch: its report, or the error that stopped it from running."""

    index: int
    query: str
    report: ExecutionReport | None = None
    error: str | None = None
    error_type: str | None = None
    latency: float = 0.0
    plan: list[str] = field(default_factory=list)
    problems: list[Any] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The run's status, or ``"invalid"`` (the plan failed validation) or ``"error"``
        when the query could not run at all."""
        if self.report is not None:
            return self.report.status
        return "invalid" if self.problems else "error"

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def to_dict(self) -> dict[str, Any]:
        """The run's JSON (``ExecutionReport.to_dict``, schema ``sof.run/1``) with the item's
        ``index``, ``latency_ms``, ``error`` and ``error_type``; a query that could not run
        has status ``invalid`` (its plan failed validation, see ``problems``) or ``error``."""
        report = self.report if self.report is not None else self._not_run()
        return {
            **report.to_dict(),
            "index": self.index,
            "latency_ms": round(self.latency * 1000, 3),
            "error": self.error,
            "error_type": self.error_type,
        }

    def _not_run(self) -> ExecutionReport:
        from sof_core.execution.report import ExecutionReport
        from sof_core.uif import UIF

        uif = UIF.model_construct(input_query=self.query)  # the query may be what was wrong
        return ExecutionReport.not_run(
            self.plan, uif, f"{self.error_type}: {self.error}", problems=self.problems,
            status="invalid" if self.problems else "error",
        )


@dataclass
class BatchSummary:
    """How the batch went; latencies are in seconds (``to_dict`` gives milliseconds)."""

    count: int
    succeeded: int
    errors: int
    statuses: dict[str, int]
    concurrency: int
    duration: float
    p50: float
    p95: float
    max: float
    mean: float

    @property
    def throughput(self) -> float:
        """Queries per second over the batch's wall time."""
        return self.count / self.duration if self.duration > 0 else 0.0

    def __getitem__(self, key: str) -> Any:
        """``summary["count"]``: the summary read as its JSON (``to_dict``), as a host
        reading ``sof run --file --json`` output would."""
        return self.to_dict()[key]

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "succeeded": self.succeeded,
            "errors": self.errors,
            "statuses": dict(self.statuses),
            "concurrency": self.concurrency,
            "duration_ms": round(self.duration * 1000, 3),
            "throughput_qps": round(self.throughput, 3),
            "latency_ms": {
                "p50": round(self.p50 * 1000, 3),
                "p95": round(self.p95 * 1000, 3),
                "max": round(self.max * 1000, 3),
                "mean": round(self.mean * 1000, 3),
            },
        }


@dataclass
class BatchResult:
    """Every item in input order, plus the summary."""

    items: list[BatchItem] = field(default_factory=list)
    summary: BatchSummary | None = None

    @property
    def reports(self) -> list[ExecutionReport | None]:
        return [item.report for item in self.items]

    def to_dict(self) -> dict[str, Any]:
        """Schema ``sof.batch/1``: the summary, and each item as the run's JSON
        (``sof.run/1``, see ``BatchItem.to_dict``)."""
        return {
            "schema": BATCH_SCHEMA,
            "schema_version": 1,
            "summary": self.summary.to_dict() if self.summary else None,
            "items": [item.to_dict() for item in self.items],
        }


# --- running -----------------------------------------------------------------------------

#: ``arun_batch``'s default concurrency (``run_batch``'s is the engine's ``max_workers``).
ASYNC_CONCURRENCY = 256


def run_batch(
    engine: CoordinatorEngine,
    queries: Iterable[str],
    plan: Sequence[str] | None = None,
    *,
    concurrency: int | None = None,
    goal: Sequence[str] | None = None,
    executor: str | None = None,
    progress: ProgressCallback | None = None,
    include_optional: bool = False,
    prefer: Mapping[str, str] | None = None,
) -> BatchResult:
    """Run every query through ``engine`` with up to ``concurrency`` runs at once.

    By default as many as the engine's ``max_workers`` (64 unless configured): runs of
    I/O-bound skills spend their time waiting, so more of them at once means more done.

    ``plan`` (or ``goal``, resolved once as ``engine.resolve_goal`` with ``include_optional``
    and ``prefer``) applies to every query; by default each query gets the configured
    planner's plan.
    ``progress`` is called in this thread after each query finishes; if it raises, queries
    not yet started are cancelled and the exception propagates.
    """
    plan = _resolve_plan(engine, plan, goal, include_optional, prefer)
    items = [BatchItem(index, query, plan=list(plan or ()))
             for index, query in enumerate(_check(queries))]
    workers = _check_concurrency(concurrency, engine.config.max_workers)
    started = time.perf_counter()
    if items:
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=min(workers, len(items)), thread_name_prefix="sof-batch"
        )
        try:
            futures = [pool.submit(_run_one, engine, item, plan, executor) for item in items]
            for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
                item = future.result()
                if progress is not None:
                    progress(done, len(items), item)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return _finish(items, workers, time.perf_counter() - started)


async def arun_batch(
    engine: CoordinatorEngine,
    queries: Iterable[str],
    plan: Sequence[str] | None = None,
    *,
    concurrency: int | None = None,
    goal: Sequence[str] | None = None,
    executor: str | None = None,
    progress: ProgressCallback | None = None,
    include_optional: bool = False,
    prefer: Mapping[str, str] | None = None,
) -> BatchResult:
    """``run_batch`` for async hosts: each query is ``engine.arun_query`` (the same plan and
    adaptive choice as ``run_batch``'s ``run_query``, on this event loop).

    By default up to ``ASYNC_CONCURRENCY`` runs at once: an async run holds no thread while
    its skills await, so the limit is there only to bound memory and the load on backends.
    """
    plan = _resolve_plan(engine, plan, goal, include_optional, prefer)
    items = [BatchItem(index, query, plan=list(plan or ()))
             for index, query in enumerate(_check(queries))]
    workers = _check_concurrency(concurrency, ASYNC_CONCURRENCY)
    limit = asyncio.Semaphore(workers)
    done = 0
    started = time.perf_counter()

    async def one(item: BatchItem) -> None:
        nonlocal done
        async with limit:
            began = time.perf_counter()
            try:
                item.report = await engine.arun_query(item.query, plan, executor=executor)
                item.plan = item.plan or list(item.report.plan)
            except Exception as exc:
                _record_error(item, exc)
            item.latency = time.perf_counter() - began
        done += 1
        if progress is not None:
            progress(done, len(items), item)

    await asyncio.gather(*(one(item) for item in items))
    return _finish(items, workers, time.perf_counter() - started)


def _run_one(
    engine: CoordinatorEngine, item: BatchItem, plan: list[str] | None, executor: str | None
) -> BatchItem:
    began = time.perf_counter()
    try:
        item.report = engine.run_query(item.query, plan, executor=executor)
        item.plan = item.plan or list(item.report.plan)
    except Exception as exc:  # one query that cannot run must not stop the batch
        _record_error(item, exc)
    item.latency = time.perf_counter() - began
    return item


def _record_error(item: BatchItem, exc: Exception) -> None:
    item.error = str(exc) or type(exc).__name__
    item.error_type = type(exc).__name__
    item.problems = list(getattr(exc, "problems", None) or ())


def _check(queries: Iterable[str]) -> list[str]:
    if isinstance(queries, str):
        raise ConfigError(
            "queries must be a list of strings, not one string; wrap it: [query]",
            key="queries",
        )
    checked = list(queries)
    for index, query in enumerate(checked):
        if not isinstance(query, str):
            raise ConfigError(
                f"query #{index} is {type(query).__name__}, not str", key="queries"
            )
    return checked


def _check_concurrency(concurrency: int | None, default: int) -> int:
    if concurrency is None:
        return default
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(
            f"concurrency must be a whole number >= 1, got {concurrency!r}", key="concurrency"
        )
    return concurrency


def _resolve_plan(
    engine: CoordinatorEngine,
    plan: Sequence[str] | None,
    goal: Sequence[str] | None,
    include_optional: bool,
    prefer: Mapping[str, str] | None,
) -> list[str] | None:
    """The one plan every query runs (resolved once, not per query); None: each query is
    planned by the configured planner (``engine.planning``), as ``run_query`` plans it."""
    if goal is not None:
        from sof_core.execution.coordinator import goal_plan

        return goal_plan(engine, goal, include_optional=include_optional, prefer=prefer)
    return None if plan is None else list(plan)


def _finish(items: list[BatchItem], concurrency: int, duration: float) -> BatchResult:
    latencies = sorted(item.latency for item in items)
    statuses = Counter(item.status for item in items)
    summary = BatchSummary(
        count=len(items),
        succeeded=statuses.get("success", 0),
        errors=len(items) - statuses.get("success", 0),
        statuses=dict(sorted(statuses.items())),
        concurrency=concurrency,
        duration=duration,
        p50=percentile(latencies, 50),
        p95=percentile(latencies, 95),
        max=latencies[-1] if latencies else 0.0,
        mean=sum(latencies) / len(latencies) if latencies else 0.0,
    )
    return BatchResult(items, summary)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# --- input and output --------------------------------------------------------------------


#: The most ``read_queries`` and ``parse_queries`` read (64 MiB): far more than any real
#: query file, and a bound for endless input (``sof run - < /dev/zero``, a device).
MAX_QUERY_BYTES = 64 * 1024 * 1024
_CHUNK = 64 * 1024


def read_queries(path: str | Path) -> list[str]:
    """Queries from a text file, one per line; blank lines and ``#`` comments are skipped.

    The file must be UTF-8 text of at most ``MAX_QUERY_BYTES``: it is read piece by piece
    and refused (``ConfigError`` naming the file) at its first NUL byte, its first byte
    that is not UTF-8 or the first byte past the limit, so a device (``/dev/zero``,
    ``/dev/urandom``) is refused at once; a FIFO, ``/dev/stdin`` or a shell's process
    substitution is read like a file.
    """
    file = Path(path)
    try:
        with open(file, "rb") as stream:
            return parse_queries(stream, f"query file {file}")
    except FileNotFoundError:
        raise ConfigError(f"query file {file} does not exist", key="file") from None
    except IsADirectoryError:
        raise ConfigError(f"query file {file} is a directory, not a file", key="file") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot read query file {file}: {reason}", key="file") from exc


def parse_queries(data: bytes | BinaryIO, source: str = "input") -> list[str]:
    """Queries from UTF-8 text (bytes, or a binary stream read to its end), one per line;
    blank lines and ``#`` comments are skipped.

    A NUL byte, invalid UTF-8 or more than ``MAX_QUERY_BYTES`` raises ``ConfigError``
    naming ``source``; a stream is read in pieces and given up at the first of them, never
    read whole first.
    """
    text = _decode(_pieces(data), source)
    queries = [line.strip() for line in text.splitlines()]
    return [q for q in queries if q and not q.startswith("#")]


def _pieces(data: bytes | BinaryIO) -> Iterator[bytes]:
    """``data`` in pieces of at most ``_CHUNK`` bytes, and at most one byte past the limit
    (enough to tell that there is more)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)[: MAX_QUERY_BYTES + 1]
        for start in range(0, len(view), _CHUNK):
            yield bytes(view[start : start + _CHUNK])
        return
    total = 0
    while total <= MAX_QUERY_BYTES:
        piece = data.read(min(_CHUNK, MAX_QUERY_BYTES + 1 - total))
        if not piece:
            return
        total += len(piece)
        yield piece


def _decode(pieces: Iterable[bytes], source: str) -> str:
    """The text of ``pieces``, decoded as it comes (a BOM is dropped); ``ConfigError`` at
    the first NUL byte, the first byte that is not UTF-8, or past ``MAX_QUERY_BYTES``."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    parts: list[str] = []
    offset = 0  # bytes before this piece
    for piece in pieces:
        if offset + len(piece) > MAX_QUERY_BYTES:
            raise ConfigError(
                f"{source} is larger than {MAX_QUERY_BYTES // (1024 * 1024)} MiB, the most "
                "read as queries; split it into several files", key="file")
        if b"\0" in piece:
            raise ConfigError(f"{source} is binary, not text; give UTF-8 text with one query "
                              "per line", key="file")
        try:
            parts.append(decoder.decode(piece))
        except UnicodeDecodeError as exc:
            raise _not_utf8(source, exc, offset + len(piece)) from None
        offset += len(piece)
    try:
        parts.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:  # the input ends inside a character
        raise _not_utf8(source, exc, offset) from None
    return "".join(parts)


def _not_utf8(source: str, exc: UnicodeDecodeError, end: int) -> ConfigError:
    """The error for bytes that are not UTF-8; ``end``: the input's offset where the bytes
    the decoder failed on (those it held back and the piece) end."""
    at = end - len(exc.object) + exc.start
    return ConfigError(
        f"{source} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {at}); "
        "save it as UTF-8",
        key="file",
    )


def format_summary(summary: BatchSummary | None) -> str:
    """One human line per fact, e.g. for the end of ``sof run --file``."""
    if summary is None:
        return "no batch summary"
    lines = [
        f"count {summary.count} quer{'y' if summary.count == 1 else 'ies'}: "
        f"{summary.succeeded} succeeded, {summary.errors} "
        f"error{'' if summary.errors == 1 else 's'} "
        f"({', '.join(f'{k} {v}' for k, v in summary.statuses.items()) or 'none'})",
        f"latency p50 {summary.p50 * 1000:.1f} ms, p95 {summary.p95 * 1000:.1f} ms, "
        f"max {summary.max * 1000:.1f} ms",
        f"wall {summary.duration:.2f} s at concurrency {summary.concurrency} "
        f"({summary.throughput:.1f} queries/s)",
    ]
    return "\n".join(lines)


__all__ = [
    "BATCH_SCHEMA",
    "MAX_QUERY_BYTES",
    "BatchItem",
    "BatchResult",
    "BatchSummary",
    "ProgressCallback",
    "arun_batch",
    "format_summary",
    "parse_queries",
    "percentile",
    "read_queries",
    "run_batch",
]
