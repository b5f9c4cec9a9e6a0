"""Harness overhead: the plugin's mean latency for a 0.5 ms model divided by a bare LiteRT invoke() loop over the
same inputs and thread count, measured in one run (alternating, so drift hits both sides alike).

    python benchmarks/harness_overhead.py [--images 500] [--repeats 3] [--threads 1]

Prints one line per repeat and the ratios; the target is <= 1.03 on the mean.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.helpers.shared import SHARED  # noqa: E402 (the one place the shared folder is looked up)
MODEL = SHARED / "models" / "tflite" / "mobilenet_v1_0.25_128_quant.tflite"
DATASET = SHARED / "data" / "imagenet-val-500"
CATALOG = f"""
[[model]]
name = "mobilenet_v1_025"
framework = "tflite"
quant = "int8"
file = "{MODEL}"
input_size = 128
resize = 146
mean = [127.5, 127.5, 127.5]
std = [127.5, 127.5, 127.5]
num_classes = 1001
background = true
"""


def plugin_run(tmp: Path, images: int, threads: int, warmup: int) -> dict:
    (tmp / "catalog.toml").write_text(CATALOG)
    report = tmp / "report.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
         f"--aiotbench-catalog={tmp / 'catalog.toml'}", f"--aiotbench-dataset={DATASET}",
         f"--aiotbench-images={images}", f"--aiotbench-threads={threads}", f"--aiotbench-warmup={warmup}",
         f"--aiotbench-json={report}", f"--aiotbench-cache={tmp / 'cache'}"],
        cwd=tmp, check=True, capture_output=True)
    return json.loads(report.read_text())["cases"][0]


def bare_loop(inputs: list[np.ndarray], threads: int, warmup: int) -> list[float]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(MODEL), num_threads=threads)
    interp.allocate_tensors()
    index = interp.get_input_details()[0]["index"]
    for i in range(warmup):
        interp.set_tensor(index, inputs[i % len(inputs)])
        interp.invoke()
    latencies = []
    for x in inputs:
        interp.set_tensor(index, x)
        start = time.perf_counter()
        interp.invoke()
        latencies.append(time.perf_counter() - start)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    if not MODEL.is_file():
        print(f"harness_overhead: {MODEL} not found (set AIOTBENCH_SHARED)", file=sys.stderr)
        return 2
    from pytest_aiotbench.inputs.dataset import open_dataset
    from pytest_aiotbench.inputs.preprocess import PixelCache, PreprocessSpec

    spec = PreprocessSpec(128, 146)
    pixels = open_dataset(DATASET, args.images).pixels(spec, PixelCache(None))
    inputs = [pixels[i : i + 1] for i in range(len(pixels))]  # raw uint8: this model's input is the pixel scale
    plugin_means, bare_means, plugin_medians, bare_medians = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            case = plugin_run(Path(tmp), args.images, args.threads, args.warmup)
            bare = np.asarray(bare_loop(inputs, args.threads, args.warmup)) * 1e3
            plugin_means.append(case["latency_ms"]["mean"])
            plugin_medians.append(case["latency_ms"]["median"])
            bare_means.append(float(bare.mean()))
            bare_medians.append(float(np.median(bare)))
            print(f"repeat {repeat + 1}: plugin mean {plugin_means[-1]:.4f} ms, median {plugin_medians[-1]:.4f} ms | "
                  f"bare invoke() mean {bare_means[-1]:.4f} ms, median {bare_medians[-1]:.4f} ms")
    mean_ratio = statistics.median(plugin_means) / statistics.median(bare_means)
    median_ratio = statistics.median(plugin_medians) / statistics.median(bare_medians)
    print(f"overhead ratio (plugin / bare invoke loop), {args.images} images, {args.threads} thread(s): "
          f"mean {mean_ratio:.3f}, median {median_ratio:.3f} (target <= 1.03)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
