"""The benchmark scripts stay runnable (their figures are printed by them, never asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_throughput_benchmark_prints_its_table() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--sizes", "smoke",
                             "--steps", "1", "--repeats", "1", "--warmup", "1", "--threads", "1",
                             "--precisions", "fp32"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| smoke |")]
    assert [row.split("|")[2].strip() for row in rows] == ["nerf", "nelf"]
    assert all(len(row.split("|")) == 14 for row in rows)
