"""The seed's KPIs and alert thresholds as rows the page shows: target, value now, state.

KPIs (docs/operations.md): SOF's response time no worse than legacy's (p95), error rate
≤ 1 %, availability ≥ 99.9 % (requests answered, by either path). Alert thresholds: response
time > 10 s, error rate > 5 %, memory > 80 %, skill failure rate > 10 %. Thresholds and
their state come from the alert observer (``sof_serve.observe.alerts``) when it is
installed, else from the router's own alert windows; values the server measures itself
(availability, memory) fill what the source leaves out.
"""

from __future__ import annotations

import os
from typing import Any

#: The seed's alert thresholds, used where the alert source does not give one.
DEFAULT_THRESHOLDS = {"response_time": 10.0, "error_rate": 0.05, "memory": 0.80,
                      "skill_failure_rate": 0.10}
ALERT_LABELS = {"response_time": "Response time (p95)", "error_rate": "Error rate",
                "memory": "Memory", "skill_failure_rate": "Skill failure rate"}
UNITS = {"response_time": "s", "error_rate": "%", "memory": "%", "skill_failure_rate": "%"}


def memory_fraction() -> float | None:
    """This process's resident memory as a share of the machine's (Linux /proc; else None)."""
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
            rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            total = next(int(line.split()[1]) for line in meminfo
                         if line.startswith("MemTotal:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return rss / total if total else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def alert_rows(state: dict[str, Any], comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per alert threshold: ``kind``, ``label``, ``threshold``, ``value``, ``unit``,
    ``state`` (``ok``, ``alert``, ``warming`` while the window holds fewer than
    ``min_samples`` queries, or ``none`` while there is nothing to measure) and ``note``.

    A value and a sample count the alert source gives (the observer's, over its time
    window; ``None`` for an empty window) are the row's: the router's lifetime figures
    stand in only for what the source leaves out, so an emptied window never shows the
    lifetime rate as "now", judged "ok" beside a breaching value."""
    thresholds = _sof_only(state.get("thresholds") or {})
    values = _sof_only(state.get("values") or state.get("current") or {})
    active = {_kind(item) for item in state.get("active") or [] if _on_sof(item)}
    counts: dict[str, Any] = {}
    for item in state.get("alerts") or []:  # or one entry per alert: kind, threshold, value
        if not isinstance(item, dict) or "kind" not in item or not _on_sof(item):
            continue
        kind = _alias(str(item["kind"]).rpartition(":")[2])
        for key, into in (("threshold", thresholds), ("value", values)):
            if key in item and item[key] is not None:
                into.setdefault(kind, _scaled(kind, item[key], str(item["kind"])))
        if "samples" in item:
            counts.setdefault(kind, item["samples"])
        if item.get("active") is True or item.get("state") in ("alert", "active", "firing"):
            active.add(kind)
    measured = _measured(comparison)
    min_samples = _number(_plain(thresholds.get("min_samples")))
    rows = []
    for kind, default in DEFAULT_THRESHOLDS.items():
        threshold = _number(thresholds.get(kind)) or default
        value = _number(values[kind]) if kind in values else measured[kind][0]
        seen = _number(counts[kind]) if kind in counts else measured[kind][1]
        short = min_samples is not None and seen is not None and seen < min_samples
        note = ""
        if kind in active or (value is not None and value > threshold and not short):
            current = "alert"
        elif short:
            current = "warming"  # the window alerts only once it holds min_samples
            note = f"alerts from {min_samples:g} samples on ({seen:g} so far)"
        elif value is None:
            current = "none"
        else:
            current = "ok"
        rows.append({"kind": kind, "label": ALERT_LABELS[kind], "threshold": threshold,
                     "value": value, "unit": UNITS[kind], "state": current, "note": note})
    return rows


def _measured(comparison: dict[str, Any]) -> dict[str, tuple[float | None, float | None]]:
    """The router's lifetime (value, samples) per kind, for what the alert source leaves
    out; memory is this process's now, judged without samples."""
    sof = comparison["paths"]["sof"]
    p95 = sof["latency_ms"]["p95"]
    return {
        "response_time": (None if p95 is None else p95 / 1000, sof["count"]),
        "error_rate": (sof["error_rate"] if sof["count"] else None, sof["count"]),
        "memory": (memory_fraction(), None),
        "skill_failure_rate": (sof["skill_failure_rate"] if sof["skill_runs"] else None,
                               sof["skill_runs"]),
    }


def _alias(kind: str) -> str:
    """The observer's ``memory_percent`` is this module's ``memory`` (a fraction)."""
    return "memory" if kind == "memory_percent" else kind


def _scaled(kind: str, value: Any, given: str) -> Any:
    if given.endswith("memory_percent") and isinstance(value, (int, float)):
        return value / 100
    return value


def _on_sof(item: Any) -> bool:
    """Alerts of the SOF path (or of no path: process-wide, like memory)."""
    if isinstance(item, dict):
        path = item.get("path")
        return path in (None, "", "sof", "process")
    text = str(item)
    return ":" not in text or text.startswith(("sof:", "process:"))


def _sof_only(mapping: dict[str, Any]) -> dict[str, Any]:
    """``{"sof:error_rate": x, "legacy:error_rate": y, "memory_percent": z}`` as
    ``{"error_rate": x, "memory": z / 100}``: the SOF path's, by this module's kinds."""
    found: dict[str, Any] = {}
    for name, value in mapping.items():
        if not _on_sof(name):
            continue
        kind = _alias(name.rpartition(":")[2])
        found[kind] = _scaled(kind, _plain(value), name)
    return found


def _plain(value: Any) -> Any:
    """A threshold or value given as ``{"value": x}`` / ``{"threshold": x}`` or as ``x``."""
    if isinstance(value, dict):
        for key in ("threshold", "value", "limit"):
            if key in value:
                return value[key]
    return value


def _kind(item: Any) -> str:
    """``"sof:error_rate"``, ``"error_rate"`` or ``{"kind": ...}`` as the kind."""
    if isinstance(item, dict):
        return _alias(str(item.get("kind", "")))
    return _alias(str(item).rpartition(":")[2])


def kpi_rows(comparison: dict[str, Any], requests: int, answered: int) -> list[dict[str, Any]]:
    """The seed's KPIs: ``name``, ``target``, ``value`` (text), ``state``."""
    sof, legacy = comparison["paths"]["sof"], comparison["paths"]["legacy"]
    sof_p95, legacy_p95 = sof["latency_ms"]["p95"], legacy["latency_ms"]["p95"]
    rows = []
    if sof_p95 is None or legacy_p95 is None:
        rows.append({"name": "Response time", "target": "SOF p95 ≤ legacy p95",
                     "value": None, "state": "none"})
    else:
        rows.append({"name": "Response time", "target": "SOF p95 ≤ legacy p95",
                     "value": f"{sof_p95:.1f} ms vs {legacy_p95:.1f} ms",
                     "state": "ok" if sof_p95 <= legacy_p95 else "alert"})
    if sof["count"]:
        rows.append({"name": "Error rate", "target": "≤ 1 %",
                     "value": f"{sof['error_rate'] * 100:.2f} %",
                     "state": "ok" if sof["error_rate"] <= 0.01 else "alert"})
    else:
        rows.append({"name": "Error rate", "target": "≤ 1 %", "value": None, "state": "none"})
    if requests:
        share = answered / requests
        rows.append({"name": "Availability", "target": "≥ 99.9 %",
                     "value": f"{share * 100:.2f} %",
                     "state": "ok" if share >= 0.999 else "alert"})
    else:
        rows.append({"name": "Availability", "target": "≥ 99.9 %", "value": None,
                     "state": "none"})
    return rows
