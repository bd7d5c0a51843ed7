"""The benchmark suite runs end to end (``--quick``) and writes a complete JSON report.

Timings are never asserted here: benchmarks inform, they do not gate the test suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = {"overhead", "fanout", "graph", "registration", "startup", "throughput", "legacy",
            "isolation", "planning", "serve", "observers"}


@pytest.mark.slow
def test_quick_benchmark_run_writes_every_section(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--output", str(output)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads(output.read_text())
    assert set(results["sections"]) == SECTIONS
    assert results["meta"]["quick"] is True
    calls = results["meta"]["python_call_ns"]  # the machine's speed, at the start and end
    assert calls["start"] > 0 and calls["end"] > 0
    assert "a no-op Python call took" in proc.stdout
    for name, section in results["sections"].items():
        assert not section.get("error"), (name, section.get("error"), section.get("detail"))
        assert section["rows"], f"section {name} reported no figures"
        for row in section["rows"]:
            assert isinstance(row["value"], (int, float)), row
            assert row["baseline"] is None or row["ratio"] is not None, row
        for target in section["targets"]:
            assert target["verdict"] in ("PASS", "FAIL", "SKIP"), target
    assert "Targets" in proc.stdout
