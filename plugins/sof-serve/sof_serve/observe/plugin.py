"""The `monitor` entry point: the metrics, tracing and alert observers."""

from __future__ import annotations
