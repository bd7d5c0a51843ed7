"""The `serve` entry point: adds the `sof serve` command."""

from __future__ import annotations
