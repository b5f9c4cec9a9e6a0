"""What the installed plugin costs a pytest run that does not use it (issue 17: at most 50 ms).

A tiny project (two test functions) is collected with ``pytest --co -q`` with the plugin and with it switched off
(``-p no:aiotbench``), alternately, many times; the cost is the median of the paired differences (pairs taken
back to back, so machine load drifts cancel). Every other installed plugin loads in both runs.

    python benchmarks/plugin_cost.py [--repeats 40] [--budget-ms 50]

Exit 1 when the median difference exceeds the budget. Also prints the modules the plugin imports in such a run
that it should not (numpy, Pillow, runtimes, the plugin's own heavy modules).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("numpy", "PIL", "torch", "matplotlib", "paramiko", "adbutils", "onnxruntime", "ai_edge_litert",
         "tflite_runtime", "executorch", "pytest_aiotbench.plugin.state", "pytest_aiotbench.plugin.gate",
         "pytest_aiotbench.inputs.catalog", "pytest_aiotbench.inputs.dataset", "pytest_aiotbench.frameworks")
OFF = ["-p", "no:aiotbench", "-p", "no:aiotbench_gate"]  # the second: installs made when the gate had its own entry


def _run(project: Path, extra: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *extra],
                          cwd=project, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"pytest failed ({proc.returncode}): {proc.stdout[-500:]}{proc.stderr[-500:]}")
    return elapsed


def heavy_imports(project: Path) -> list[str]:
    """Heavy modules in sys.modules after a plain run, with only this plugin and pytest-benchmark loaded (other
    installed plugins may import numpy themselves)."""
    probe = ("import sys\n"
             f"HEAVY = {HEAVY!r}\n"
             "def test_probe():\n"
             "    print('HEAVY=' + ','.join(sorted(m for m in HEAVY if m in sys.modules)))\n")
    (project / "test_probe.py").write_text(probe)
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                               "-p", "pytest_aiotbench.plugin", "-p", "pytest_benchmark.plugin", "test_probe.py"],
                              cwd=project, capture_output=True, text=True,
                              env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    finally:
        (project / "test_probe.py").unlink()
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("HEAVY=")), None)
    if line is None:
        raise SystemExit(f"probe run failed: {proc.stdout[-500:]}{proc.stderr[-500:]}")
    return [m for m in line.removeprefix("HEAVY=").split(",") if m]


def measure(repeats: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "test_tiny.py").write_text("def test_a():\n    pass\n\n\ndef test_b():\n    pass\n")
        _run(project, []), _run(project, OFF)  # warm the OS file cache
        diffs, on, off = [], [], []
        for i in range(repeats):
            if i % 2:  # alternate which goes first
                b = _run(project, OFF)
                a = _run(project, [])
            else:
                a = _run(project, [])
                b = _run(project, OFF)
            on.append(a), off.append(b), diffs.append(a - b)
        heavy = heavy_imports(project)
    if heavy:
        print(f"plugin imports heavy modules in a run that does not use it: {', '.join(heavy)}")
    print(f"fastest of each: with plugin {min(on) * 1e3:.0f} ms, without {min(off) * 1e3:.0f} ms "
          f"(difference {(min(on) - min(off)) * 1e3:+.1f} ms; least disturbed by other load)")
    return statistics.median(diffs), statistics.median(on), statistics.median(off)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--budget-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    cost, on, off = measure(args.repeats)
    print(f"pytest --co -q, tiny project, {args.repeats} pairs: with plugin {on * 1e3:.0f} ms, "
          f"-p no:aiotbench {off * 1e3:.0f} ms, median paired difference {cost * 1e3:+.1f} ms "
          f"(budget {args.budget_ms:.0f} ms)")
    return 0 if cost * 1e3 <= args.budget_ms else 1


if __name__ == "__main__":
    sys.exit(main())
