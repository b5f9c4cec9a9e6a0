"""Collection time of a large catalog (issue 19): 40 models x 6 variants (TFLite int8/fp32/fp16/dynamic, ONNX
Runtime, PyTorch Mobile) x 2 input geometries = 480 cases, against a one-case catalog (pytest's and the
plugin's fixed start-up), each ``pytest --aiotbench --collect-only -q`` in a fresh process, best of --repeats.

    python benchmarks/collect_scale.py [--models 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.helpers.catalogs import write_catalog  # noqa: E402
from tests.helpers.shared import TFLITE_DIR, TORCH_DIR  # noqa: E402

VARIANTS = [("tflite", "int8", TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"),
            ("tflite", "fp32", TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"),
            ("tflite", "fp16", TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"),
            ("tflite", "dynamic", TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"),
            ("onnxruntime", "fp32", TORCH_DIR / "mobilenet_v1_0.25_128.onnx"),
            ("pytorch-mobile", "fp32", TORCH_DIR / "mobilenet_v1_0.25_128.pt")]


def catalog(path: Path, models: int) -> int:
    entries = []
    for m in range(models):
        for size in (128, 224):
            for framework, quant, file in VARIANTS:
                entries.append({"name": f"model{m:02d}_{size}", "framework": framework, "quant": quant,
                                "file": str(file), "input_size": size, "num_classes": 1001, "background": True,
                                "min_top1": 0.0})
    write_catalog(path, entries)
    return len(entries)


def collect(tmp: Path, cat: Path, repeats: int) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "--aiotbench", "--aiotbench-no-builtin", "-q",
                               "-p", "no:cacheprovider", "--collect-only", f"--aiotbench-catalog={cat}"],
                              cwd=tmp, capture_output=True, text=True)
        best = min(best, time.perf_counter() - start)
        out = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
        if proc.returncode != 0:
            raise SystemExit(f"collect_scale: exit {proc.returncode}: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return best, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one = write_catalog(tmp / "one.toml", [{"name": "m", "framework": "tflite", "quant": "int8",
                                                 "file": str(VARIANTS[0][2]), "input_size": 128}])
        n = catalog(tmp / "many.toml", args.models)
        t1, s1 = collect(tmp, one, args.repeats)
        tn, sn = collect(tmp, tmp / "many.toml", args.repeats)
    print(f"1 case: {t1:.2f} s ({s1})")
    print(f"{n} cases: {tn:.2f} s ({sn}); {(tn - t1) / (n - 1) * 1e3:.2f} ms per extra case (target: <= 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
