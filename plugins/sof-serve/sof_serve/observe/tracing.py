"""OpenTelemetry spans per run and per skill, when the ``otel`` extra is installed.

Spans are made when a run ends (``sof_after_plan``), from its final report: one ``sof.run``
span and a child ``sof.skill`` span per skill with attributes ``skill``, ``plugin``,
``stage``, ``status``, ``attempts``. Building them from the report keeps parent links right
although skills run on other threads, and costs nothing while a run is in flight. Start
times are placed on the run's time axis: a stage starts when the slowest skill of the stage
before it ended. Without opentelemetry installed every call here is a no-op.
"""

from __future__ import annotations

import sys
import time
from typing import Any

TRACER_NAME = "sof"
#: A provider to use instead of OpenTelemetry's global one (tests, or a host's own).
_provider: Any = None


def set_tracer_provider(provider: Any) -> None:
    """Send SOF's spans to ``provider`` (None: back to OpenTelemetry's global provider)."""
    global _provider
    _provider = provider


def _otel_trace() -> Any:
    """``opentelemetry.trace``, or None without the extra. Imported on first need, not with
    the plugin: every ``sof`` command loads the plugin, few export spans."""
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - exercised only without the extra
        return None
    return trace


def _global_provider_set(trace: Any) -> bool:
    """Whether the host installed a real tracer provider (OpenTelemetry's default is a
    proxy that makes no-op spans until one is set)."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def available() -> bool:
    return _otel_trace() is not None


def emitting() -> bool:
    """Whether ``record_run`` would make spans now (then a span processor may export them
    before it returns, so the observer is not called inline: ``observe/plugin.py``)."""
    if _provider is not None:
        return available()
    otel = sys.modules.get("opentelemetry.trace")
    return otel is not None and _global_provider_set(otel)


def record_run(report: Any, tracer_provider: Any = None) -> None:
    """Emit the spans of one finished ``ExecutionReport``."""
    provider = tracer_provider or _provider
    if provider is None:
        # A global provider can only have been set through opentelemetry.trace: while no one
        # has imported it, nobody collects spans (and building no-op ones would only cost).
        otel = sys.modules.get("opentelemetry.trace")
        if otel is None or not _global_provider_set(otel):
            return
    else:
        otel = _otel_trace()
        if otel is None:
            return
    tracer = otel.get_tracer(TRACER_NAME, tracer_provider=provider)
    end_ns = time.time_ns()
    duration_ns = int(max(0.0, float(report.duration)) * 1e9)
    start_ns = end_ns - duration_ns
    status = str(report.status)
    run = tracer.start_span("sof.run", start_time=start_ns, attributes={
        "sof.plan": ",".join(report.plan),
        "sof.status": status,
        "status": status,
        "sof.skills": len(report.results),
        "sof.planner": str((getattr(report, "planning", None) or {}).get("planner", "")),
    })
    if status not in ("success", "partial"):
        run.set_status(otel.Status(otel.StatusCode.ERROR, "; ".join(report.errors)[:500]))
    context = otel.set_span_in_context(run)
    longest: dict[int, float] = {}  # one pass: the slowest skill of each stage
    for r in report.results:
        if r.duration > longest.get(r.stage, -1.0):
            longest[r.stage] = r.duration
    stage_start: dict[int, int] = {}
    offset = start_ns
    for stage in sorted(longest):
        stage_start[stage] = offset
        offset += int(max(0.0, longest[stage]) * 1e9)
    for result in report.results:
        begin = min(stage_start.get(result.stage, start_ns), end_ns)
        finish = min(begin + int(result.duration * 1e9), end_ns)
        span = tracer.start_span("sof.skill", context=context, start_time=begin, attributes={
            "skill": result.skill,
            "plugin": result.plugin or "",
            "stage": result.stage,
            "status": str(result.status),
            "attempts": result.attempts,
        })
        if result.status in ("failed", "timeout"):
            span.set_status(otel.Status(otel.StatusCode.ERROR, result.error or ""))
        span.end(end_time=max(begin, finish))
    run.end(end_time=end_ns)


__all__ = ["TRACER_NAME", "available", "record_run", "set_tracer_provider"]
