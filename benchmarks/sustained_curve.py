"""Sustained curve on this machine: the plugin in sustained mode (``--aiotbench-sustain``) on one or two shared
models, one run; prints each case's per-window median/p90 latency, temperature and clock ("not exposed" where
the machine has none) and the last-window / first-window ratio, and writes the HTML report with the curve.

    python benchmarks/sustained_curve.py [--duration 60s] [--images 100] [--out DIR] [-k EXPR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.helpers.shared import SHARED  # noqa: E402 (the one place the shared folder is looked up)

DATASET = SHARED / "data" / "imagenet-val-500"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="60s")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("-k", default="0.25_128 and tflite", help="cases of models/shared.toml (pytest -k)")
    parser.add_argument("--out", type=Path, help="folder for report.json and report.html (default: a temp dir)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="aiotbench-sustained-"))
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--aiotbench", "--aiotbench-suite=none", "-p", "no:cacheprovider",
         f"--aiotbench-catalog={REPO / 'models' / 'shared.toml'}", f"--aiotbench-dataset={DATASET}",
         f"--aiotbench-images={args.images}", "--aiotbench-min-top1=0", f"--aiotbench-sustain={args.duration}",
         "-k", args.k, f"--aiotbench-json={out / 'report.json'}", f"--aiotbench-html={out / 'report.html'}",
         "--aiotbench-cache=none"], cwd=out, check=True, capture_output=True)
    report = json.loads((out / "report.json").read_text())
    for case in report["cases"]:
        curve, cond = case["sustained"], case["conditions"]
        print(f"{case['id']}: {curve['images']} images in {curve['duration_s']:.0f} s ({curve['cycles']} passes "
              f"over {case['images']} images), cold mean {case['latency_ms']['mean']:.3f} ms; "
              f"clock {cond['cpu_khz'] if isinstance(cond['cpu_khz'], str) else 'sampled'}, "
              f"temperature {cond['temp_c'] if isinstance(cond['temp_c'], str) else 'sampled'}")
        for w in curve["windows"]:
            print(f"  {w['start_s']:7.1f} s  {w['images']:6d} images  median {w['median_ms']:.3f} ms  "
                  f"p90 {w['p90_ms']:.3f} ms  temp {w['temp_c']}  clock {w['cpu_khz']}")
        print(f"  last/first window median: {curve['last_first_ratio']}  (validity: "
              f"{'VALID' if case['validity']['valid'] else ', '.join(case['validity']['reasons'])[:160]})")
    print(f"report: {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
