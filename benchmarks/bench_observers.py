"""Overhead of sof-serve's metrics and tracing observers per skill, against no observers.

The same chain of no-op skills runs on three engines that differ only in the observers
registered: none (the baseline), the Prometheus metrics observer (``sof_after_plan`` of the
``monitor`` plugin, OpenTelemetry off), and metrics plus tracing
(the whole ``monitor`` plugin with an OpenTelemetry SDK provider exporting to memory, so
every span is really built and exported). Executor ``sequential`` with no timeouts, as in
bench_overhead's tuned rows, so the observers' cost is not hidden under thread hand-offs.
Rows are microseconds per skill; ratios are against the engine with no observers.
"""

from __future__ import annotations

from typing import Any

from _common import Row, Section, Target, best_of_batches, chain

from sof_core import UIF, hookimpl, inline_observer
from sof_core.testing import make_engine

N = 20


class MetricsOnly:
    """The monitor plugin's metric hook without its tracing (the recorded runs are folded
    into the Prometheus series every ``TALLY_AT`` runs, inside the timed batches). Called
    inline, as the monitor's is while it makes no spans; with spans it is called in the
    engine's observer pool (a hand-off per run, in the tracing row)."""

    @hookimpl
    @inline_observer
    def sof_after_plan(self, report: Any) -> None:
        from sof_serve.observe.plugin import record_metrics

        record_metrics(report)


def _per_skill(plugins: list[tuple[str, object]], repeat: int, runs: int) -> float:
    classes = chain(N)
    engine = make_engine(classes, plugins=plugins, executor="sequential", skill_timeout=None,
                         total_timeout=None)
    plan = [c.skill_name for c in classes]
    report = engine.execute_plan(plan, UIF(input_query="warm-up"))
    assert report.status == "success", report.errors

    def uifs() -> list[UIF]:
        return [UIF(input_query="benchmark") for _ in range(runs)]

    def consume(batch: list[UIF]) -> None:
        for uif in batch:
            engine.execute_plan(plan, uif)

    seconds = best_of_batches(uifs, consume, repeat)
    engine.close()
    return seconds / N


def run(quick: bool) -> Section:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from sof_serve.observe import plugin as monitor_plugin
    from sof_serve.observe import tracing

    section = Section("observers", f"Metrics and tracing observers per skill (chain of {N})")
    repeat, runs = (3, 50) if quick else (7, 200)
    none = _per_skill([], repeat, runs)
    metrics = _per_skill([("metrics", MetricsOnly())], repeat, runs)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.set_tracer_provider(provider)
    try:
        both = _per_skill([("monitor", monitor_plugin)], repeat, runs)
        spans = len(exporter.get_finished_spans())
    finally:
        tracing.set_tracer_provider(None)
        provider.shutdown()
    assert spans >= runs * (N + 1), f"expected spans for every run and skill, got {spans}"
    section.rows.append(Row("no observers: per skill", none * 1e6, "us", none * 1e6,
                            "no observers"))
    section.rows.append(Row("Prometheus metrics observer: per skill", metrics * 1e6, "us",
                            none * 1e6, "no observers",
                            f"adds {(metrics - none) * 1e6:.2f} us/skill"))
    section.rows.append(Row("metrics + OpenTelemetry spans (SDK, in-memory export): per skill",
                            both * 1e6, "us", none * 1e6, "no observers",
                            f"adds {(both - none) * 1e6:.2f} us/skill; {spans} spans exported"))
    # Against a real query (milliseconds: retrieval, an LLM call) these are negligible; the
    # limits say "tens of microseconds per skill", not a ratio of a no-op chain.
    section.targets.append(Target("metrics observer: added per skill", 25.0, "us",
                                  (metrics - none) * 1e6))
    section.targets.append(Target("metrics + tracing observers: added per skill", 100.0, "us",
                                  (both - none) * 1e6))
    section.notes.append(f"sequential executor, no timeouts; best of {repeat} batches of "
                         f"{runs} runs, GC paused")
    return section
