"""Harness overhead: the plugin's mean latency for a 0.5 ms model divided by a bare LiteRT loop over the same
inputs and thread count, measured in one run (alternating plugin run and bare loop, so drift hits both alike).

    python benchmarks/harness_overhead.py [--images 500] [--repeats 9] [--threads 1]

The bare loop is what an application does for one image, written straight against LiteRT: set_tensor(),
invoke(), get_tensor() — the same three calls the plugin's infer() makes, so the ratio is what the harness adds
(pytest-benchmark's round, the adapter's method call, keeping the answer). invoke() alone is timed in the same loop
and shown beside it. Then the harness's own cost per image, measured without the model's noise: the plugin's timed
round (``run.timing.BenchmarkTiming`` inside pytest-benchmark) around an infer() that returns at once, minus a bare
perf_counter loop around the same function, in microseconds and as a share of the real model's bare mean.
Prints one line per repeat; the ratio is the median over repeats of plugin mean / bare mean
(each repeat's pair ran back to back); the target is <= 1.03.
"""

from __future__ import annotations

import argparse
import json
import os
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


def bare_loop(inputs: list[np.ndarray], threads: int, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image seconds of (set_tensor + invoke + get_tensor, invoke alone)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(MODEL), num_threads=threads)
    interp.allocate_tensors()
    index = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    set_tensor, invoke, get_tensor, clock = interp.set_tensor, interp.invoke, interp.get_tensor, time.perf_counter
    for i in range(warmup):
        set_tensor(index, inputs[i % len(inputs)])
        invoke()
        get_tensor(out)
    app, invoke_only, answers = [], [], []
    for x in inputs:
        t0 = clock()
        set_tensor(index, x)
        t1 = clock()
        invoke()
        t2 = clock()
        answers.append(get_tensor(out)[0])
        t3 = clock()
        app.append(t3 - t0)
        invoke_only.append(t2 - t1)
    return np.asarray(app), np.asarray(invoke_only)


NOOP_TEST = """
import json, os, sys
import numpy as np
from pytest_aiotbench.run.timing import BenchmarkTiming

def test_noop_rounds(benchmark):
    inputs = [np.zeros((1, 128, 128, 3), np.uint8)] * int(os.environ["NOOP_IMAGES"])
    answer = np.zeros(1001, np.uint8)
    _, latencies = BenchmarkTiming(benchmark).time_each(lambda x: answer, inputs, 10)
    with open(os.environ["NOOP_OUT"], "w") as out:
        json.dump(list(latencies), out)
"""


def noop_costs(tmp: Path, images: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image seconds of (the plugin's timed round, a bare loop) around an infer() that does nothing."""
    (tmp / "test_noop.py").write_text(NOOP_TEST)
    out = tmp / "noop.json"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp / "test_noop.py")],
                   cwd=tmp, check=True, capture_output=True,
                   env={**os.environ, "NOOP_IMAGES": str(images), "NOOP_OUT": str(out)})
    plugin = np.asarray(json.loads(out.read_text()))
    answer, x, clock = np.zeros(1001, np.uint8), np.zeros((1, 128, 128, 3), np.uint8), time.perf_counter
    infer = lambda x: answer  # noqa: E731 (the same shape of call as the plugin's)
    bare = []
    for _ in range(images):
        start = clock()
        infer(x)
        bare.append(clock() - start)
    return plugin, np.asarray(bare)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=9)
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
    ratios, median_ratios, invoke_ratios = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            case = plugin_run(Path(tmp), args.images, args.threads, args.warmup)
            app, invoke_only = (s * 1e3 for s in bare_loop(inputs, args.threads, args.warmup))
            plugin_mean = case["latency_ms"]["mean"]
            ratios.append(plugin_mean / app.mean())
            median_ratios.append(case["latency_ms"]["median"] / np.median(app))
            invoke_ratios.append(plugin_mean / invoke_only.mean())
            print(f"repeat {repeat + 1}: plugin mean {plugin_mean:.4f} ms (median {case['latency_ms']['median']:.4f}) | "
                  f"bare set+invoke+get mean {app.mean():.4f} ms (median {np.median(app):.4f}), invoke() alone "
                  f"{invoke_only.mean():.4f} ms | ratio {ratios[-1]:.3f}")
        plugin_noop, bare_noop = (s * 1e6 for s in noop_costs(Path(tmp), 20_000))
    cost_us = plugin_noop.mean() - bare_noop.mean()
    print(f"harness cost per image (no-op infer, 20,000 rounds): plugin mean {plugin_noop.mean():.2f} us (median "
          f"{np.median(plugin_noop):.2f}), bare loop {bare_noop.mean():.2f} us (median {np.median(bare_noop):.2f}): "
          f"{cost_us:.2f} us = {cost_us / (app.mean() * 1e3) * 100:.2f} % of the bare model loop's mean")
    print(f"overhead ratio (plugin / bare loop), {args.images} images, {args.threads} thread(s), {args.repeats} "
          f"repeats: median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}; target "
          f"<= 1.03); of the medians {statistics.median(median_ratios):.3f}; plugin mean against invoke() alone "
          f"{statistics.median(invoke_ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
