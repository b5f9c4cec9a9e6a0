"""``BenchmarkTiming.record`` feeds latencies measured on a device into pytest-benchmark through its one private
call (``_make_stats``): checked end to end against the installed pytest-benchmark, in a real pytest run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LATENCIES = [0.004, 0.0035, 0.005, 0.0042, 0.0039, 0.0061, 0.0037]

TEST_FILE = f"""
from pytest_aiotbench.run.timing import BenchmarkTiming

def test_device_latencies(benchmark):
    BenchmarkTiming(benchmark).record({LATENCIES!r})
"""


def test_recorded_latencies_are_pytest_benchmarks_own_stats(tmp_path):
    (tmp_path / "test_record.py").write_text(TEST_FILE)
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           f"--benchmark-json={out}", "--benchmark-save-data", "test_record.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    stats = json.loads(out.read_text())["benchmarks"][0]["stats"]
    assert stats["data"] == LATENCIES and stats["rounds"] == len(LATENCIES)
    assert stats["min"] == min(LATENCIES) and stats["max"] == max(LATENCIES)
    assert stats["mean"] == pytest.approx(sum(LATENCIES) / len(LATENCIES))
