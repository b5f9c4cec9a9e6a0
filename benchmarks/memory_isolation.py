"""Why the host measures each case's memory in a fresh process, and how its figures compare to an independent one.

    python benchmarks/memory_isolation.py

For the shared MobileNets (int8 TFLite files and their float ONNX/TorchScript ports), in one run:

1. fresh: the plugin's probe (``run.memory.measure_fresh``: a fresh process imports the runtime, reads VmRSS,
   prepares the model, infers 5 times, reads VmHWM);
2. independent: tests/helpers/memory_independent.py (the runtime's own API, no plugin code) for TFLite and ONNX;
3. in-process: the same probe readings taken in THIS process, the cases one after another, twice round (what
   measuring inside the pytest process would report: a case after others shares their runtime pages and heap).

Prints prepare/peak MB per case and the ratios the README quotes: int8 / fp32 peak (ours and independent), ours /
independent, and in-process / fresh for the cases that came after others.
"""

from __future__ import annotations

import dataclasses
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.helpers.shared import TFLITE_DIR, TORCH_DIR  # noqa: E402 (the one place the shared folder is looked up)

from pytest_aiotbench.frameworks import get_framework  # noqa: E402
from pytest_aiotbench.frameworks.base import PrepareOptions  # noqa: E402
from pytest_aiotbench.inputs.preprocess import PreprocessSpec, to_model_inputs  # noqa: E402
from pytest_aiotbench.run import memory  # noqa: E402

CASES = [  # (label, framework, file, input size, layout, independent kind)
    ("mnv2 onnx fp32", "onnxruntime", TORCH_DIR / "mobilenet_v2_1.0_224.onnx", 224, "NCHW", "onnx"),
    ("mnv2 tflite int8", "tflite", TFLITE_DIR / "mobilenet_v2_1.0_224_quant.tflite", 224, "NHWC", "tflite"),
    ("mnv2 torchscript fp32", "pytorch-mobile", TORCH_DIR / "mobilenet_v2_1.0_224.pt", 224, "NCHW", None),
    ("mnv1-0.5 onnx fp32", "onnxruntime", TORCH_DIR / "mobilenet_v1_0.5_160.onnx", 160, "NCHW", "onnx"),
    ("mnv1-0.5 tflite int8", "tflite", TFLITE_DIR / "mobilenet_v1_0.5_160_quant.tflite", 160, "NHWC", "tflite"),
]


def _spec(size: int, layout: str) -> PreprocessSpec:
    return PreprocessSpec(size, 0, "RGB", layout, (127.5,) * 3, (127.5,) * 3)


def in_process(framework: str, model: Path, spec: PreprocessSpec) -> dict:
    fw = get_framework(framework)
    memory.import_runtime(fw)
    probe = memory.Probe()
    probe.start()
    session = fw.prepare(str(model), PrepareOptions(threads=1))
    probe.prepared()
    x = to_model_inputs(np.zeros((1, spec.input_size, spec.input_size, 3), np.uint8), spec, session.input, "x")[0]
    probe.loop_start(held=int(x.nbytes))
    for _ in range(memory.PEAK_INFERENCES):
        session.infer(x)
    probe.loop_end()
    session.close()
    del session
    return probe.figures()


def independent(kind: str, model: Path, size: int) -> tuple[float, float]:
    out = subprocess.run([sys.executable, str(REPO / "tests" / "helpers" / "memory_independent.py"), kind,
                          str(model), str(size)], capture_output=True, text=True, check=True).stdout
    prepare, peak = (float(v) for v in out.split()[-2:])
    return prepare, peak


def main() -> int:
    fresh, indep, seconds = {}, {}, []
    for label, framework, model, size, layout, kind in CASES:
        start = time.perf_counter()
        fresh[label] = memory.measure_fresh(framework, str(model), 1, {}, dataclasses.asdict(_spec(size, layout)))
        seconds.append(time.perf_counter() - start)
        if kind:
            indep[label] = independent(kind, model, size)
    rounds = [[in_process(fw, model, _spec(size, layout)) for _, fw, model, size, layout, _ in CASES]
              for _ in range(2)]
    print(f"{'case':24s} {'fresh prep/peak MB':>20s} {'independent':>14s} {'in-process 1st':>16s} "
          f"{'in-process 2nd':>16s}")
    for i, (label, *_rest) in enumerate(CASES):
        f = fresh[label]
        ind = indep.get(label)
        first, second = rounds[0][i], rounds[1][i]
        print(f"{label:24s} {f['prepare_mb']:9.1f} {f['peak_mb']:9.1f} "
              f"{(f'{ind[0]:6.1f} {ind[1]:6.1f}' if ind else '-'):>14s} "
              f"{first['prepare_mb']:7.1f} {first['peak_mb']:7.1f}  {second['prepare_mb']:7.1f} "
              f"{second['peak_mb']:7.1f}")
    print()
    for int8, fp32 in (("mnv2 tflite int8", "mnv2 onnx fp32"), ("mnv1-0.5 tflite int8", "mnv1-0.5 onnx fp32")):
        print(f"int8/fp32 peak {int8.split()[0]}: ours {fresh[int8]['peak_mb'] / fresh[fp32]['peak_mb']:.3f}, "
              f"independent {indep[int8][1] / indep[fp32][1]:.3f}")
    agreement = [fresh[label]["peak_mb"] / indep[label][1] for label in indep]
    print(f"ours / independent peak: {min(agreement):.3f} .. {max(agreement):.3f}")
    later = [rounds[1][i]["peak_mb"] / fresh[label]["peak_mb"] for i, (label, *_r) in enumerate(CASES)]
    print("in-process (second round, after every case ran once) / fresh peak: "
          + ", ".join(f"{label} {ratio:.2f}" for (label, *_r), ratio in zip(CASES, later)))
    print(f"fresh probe: {statistics.median(seconds):.2f} s per case (median; process start, runtime import, "
          "prepare, 5 inferences)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
