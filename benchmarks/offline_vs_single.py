"""Offline (throughput) vs single-stream images/s on this machine, in one run (issue 21 item 5).

    python benchmarks/offline_vs_single.py [--images 200] [--rounds 3] [--batch 8]

For each shared model, through the plugin's own ``targets.host.execute`` (the same path as a case): single-stream
images/s (1 / mean per-image latency, as a case reports it) and offline images/s (images / wall time from first
submission to last answer) with 1 session (the scheduling overhead: ~1.0 expected), with as many sessions as the
cores hold, and with batches where the model allows. Rounds are interleaved and their order rotated, so machine
load hits every variant alike; the figures are the medians of the rounds, as ratios to single-stream. Every
variant's answers are checked equal to single-stream's (the accuracy is then identical, exactly).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_aiotbench.inputs.dataset import open_dataset  # noqa: E402
from pytest_aiotbench.frameworks.base import PrepareOptions  # noqa: E402
from pytest_aiotbench.inputs.preprocess import PixelCache, PreprocessSpec  # noqa: E402
from pytest_aiotbench.frameworks.base import usable_cores  # noqa: E402
from pytest_aiotbench.run.offline import auto_sessions  # noqa: E402
from pytest_aiotbench.verdicts.score import accuracy  # noqa: E402
from pytest_aiotbench.targets.base import Job  # noqa: E402
from pytest_aiotbench.targets.host import execute  # noqa: E402
from pytest_aiotbench.run.timing import PerfCounterTiming  # noqa: E402

SHARED = Path(os.environ.get("AIOTBENCH_SHARED") or REPO.parent / "shared")
MODELS = [  # (label, file, framework, input size, layout)
    ("mobilenet_v1_0.25_128 tflite int8", "models/tflite/mobilenet_v1_0.25_128_quant.tflite", "tflite", 128, "NHWC"),
    ("mobilenet_v2_1.0_224 tflite int8", "models/tflite/mobilenet_v2_1.0_224_quant.tflite", "tflite", 224, "NHWC"),
    ("mobilenet_v1_0.25_128 onnx fp32", "models/torch/mobilenet_v1_0.25_128.onnx", "onnxruntime", 128, "NCHW"),
    ("mobilenet_v2_1.0_224 onnx fp32", "models/torch/mobilenet_v2_1.0_224.onnx", "onnxruntime", 224, "NCHW"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    ds = open_dataset(SHARED / "data" / "imagenet-val-500", limit=args.images)
    sessions = auto_sessions(1)
    print(f"{args.images} shared images, {args.rounds} interleaved rounds, 1 thread per session, "
          f"{usable_cores()} cores -> {sessions} sessions; load average {os.getloadavg()[0]:.1f}")
    print(f"{'model':36} {'single img/s':>12} {'off 1x1':>8} {f'off {sessions}x1':>8} "
          f"{f'off {sessions}x{args.batch}':>9}  batch note")
    for label, rel, framework, size, layout in MODELS:
        spec = PreprocessSpec(size, round(size / 0.875), mean=(127.5,) * 3, std=(127.5,) * 3, layout=layout)
        job = Job(case_id=label, framework=framework, model_file=SHARED / rel, options=PrepareOptions(threads=1),
                  pixels=ds.pixels(spec, PixelCache(None)), preprocess=spec, warmup=5, num_classes=1001,
                  background=True)
        variants = {"single": job, "1x1": replace(job, scenario="offline", sessions=1),
                    "Nx1": replace(job, scenario="offline", sessions=sessions),
                    "NxB": replace(job, scenario="offline", sessions=sessions, batch=args.batch)}
        rates: dict[str, list[float]] = {k: [] for k in variants}
        answers, note = {}, ""
        order = list(variants)
        for r in range(args.rounds):
            for key in order[r % len(order):] + order[:r % len(order)]:
                m = execute(variants[key], PerfCounterTiming())
                rates[key].append(m.offline["images_per_s"] if m.offline else 1 / np.mean(m.latencies_s))
                answers[key] = m.topk
                if m.offline and m.offline.get("batch_note"):
                    note = f"batch {args.batch} refused: batch 1 used"
        same = all(np.array_equal(answers[k], answers["single"]) for k in answers)
        top1 = accuracy(answers["single"], ds.labels, 1)
        med = {k: statistics.median(v) for k, v in rates.items()}
        print(f"{label:36} {med['single']:12.1f} {med['1x1'] / med['single']:8.2f} {med['Nx1'] / med['single']:8.2f} "
              f"{med['NxB'] / med['single']:9.2f}  {note or '-'}; answers {'identical' if same else 'DIFFER'}, "
              f"top-1 {top1:.3f}")
    print(f"ratios: offline images/s / single-stream images/s; load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
