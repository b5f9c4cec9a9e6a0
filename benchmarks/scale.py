"""Peak memory and wall per image against the dataset's size (issue 19): one case per run, in a child process.

    python benchmarks/scale.py [--sizes 1000,5000,10000] [--cases int8-128,fp32-224] [--workdir DIR] [--tree DIR]

The datasets are unique copies of the 500 shared images (a JPEG comment per copy: the pixel cache keys by
sha256), the size-N set being the first N of one pool, in a temporary folder. The pixel cache is filled first
(one decode of the largest set per geometry), so every measured run is a warm-cache run. Each run is
``pytest --aiotbench`` in its own child process over one case; the child reports its own peak resident size
(``getrusage(RUSAGE_SELF).ru_maxrss``: the decode workers, if any, are not in it) and its wall time. ``--tree``
runs another checkout's code (e.g. the code before streaming, from ``git archive``) on the same data.

Prints one markdown table: images, peak RSS (MB), wall per image (ms), Σ timed inference per image (ms),
harness wall ÷ Σ timed inference, top-1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.helpers.catalogs import float_entry, tflite_entry, write_catalog  # noqa: E402
from tests.helpers.copies import unique_copies  # noqa: E402
from tests.helpers.shared import TFLITE_DIR, TORCH_DIR  # noqa: E402

CASES = {
    "int8-128": tflite_entry("mobilenet_v1_0.25_128", TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite", 128),
    "fp32-224": float_entry("mobilenet_v2_1.0_224", "onnxruntime", TORCH_DIR / "mobilenet_v2_1.0_224.onnx", 224),
}

CHILD = """
import json, resource, sys, time
import pytest
start = time.perf_counter()
code = pytest.main(sys.argv[2:])
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as fh:
    json.dump({"code": int(code), "wall_s": wall,
               "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, fh)
"""

WARM = """
import sys
from pathlib import Path
from pytest_aiotbench.inputs.dataset import open_dataset
from pytest_aiotbench.inputs.preprocess import PixelCache, PreprocessSpec
spec = PreprocessSpec.from_entry({"input_size": int(sys.argv[3]), "resize": int(sys.argv[4])})
cache = PixelCache(Path(sys.argv[2]))
for _ in open_dataset(sys.argv[1]).crops(spec, cache):
    pass
print(f"cache: {cache.hits} hits, {cache.misses} decoded")
"""


def subset(pool: Path, root: Path, n: int) -> Path:
    """``root``: the first n images of the pool (its labels.csv cut, the images through a symlink)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(pool / "labels.csv", newline="") as fh:
        lines = fh.read().splitlines()[: n + 1]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    if not (root / "img").exists():
        (root / "img").symlink_to(pool / "img")
    return root


def run_session(work: Path, name: str, data: Path, cache: Path, env: dict, extra: tuple[str, ...] = (),
                tag: str = "") -> tuple[dict, dict]:
    """One ``pytest --aiotbench`` child over the case: (its exit code, wall and peak RSS; the case's report entry)."""
    run_dir = Path(tempfile.mkdtemp(dir=work, prefix=f"run-{tag or name}-"))
    catalog = write_catalog(run_dir / "catalog.toml", [{**CASES[name], "min_top1": 0.0}])
    report, out = run_dir / "report.json", run_dir / "child.json"
    args = ["--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider", "-q", f"--aiotbench-catalog={catalog}",
            f"--aiotbench-dataset={data}", f"--aiotbench-json={report}", f"--aiotbench-cache={cache}", *extra]
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out), *args], cwd=run_dir, env=env,
                          capture_output=True, text=True)
    child = json.loads(out.read_text()) if out.exists() else {"code": proc.returncode}
    if child["code"] != 0:
        raise SystemExit(f"{Path(sys.argv[0]).stem}: {tag or name} on {data.name} failed (exit {child['code']}):\n"
                         f"{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    case = json.loads(report.read_text())["cases"][0]
    shutil.rmtree(run_dir, ignore_errors=True)
    return child, case


def run_case(work: Path, name: str, data: Path, cache: Path, env: dict) -> dict:
    child, case = run_session(work, name, data, cache, env)
    timed_s = sum(case["per_image"]["latency_ms"]) / 1e3
    return {"images": case["images"], "maxrss_mb": child["maxrss_mb"], "wall_s": child["wall_s"],
            "timed_s": timed_s, "top1": case["top1"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--workdir", type=Path, help="where the datasets and the cache go (default: a temp folder)")
    parser.add_argument("--tree", type=Path, help="run this checkout's pytest_aiotbench instead of this one")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    names = [n.strip() for n in args.cases.split(",")]
    for name in names:
        if name not in CASES:
            raise SystemExit(f"scale: unknown case {name!r} (known: {', '.join(CASES)})")
        if not Path(CASES[name]["file"]).is_file():
            raise SystemExit(f"scale: {CASES[name]['file']} not found (set AIOTBENCH_SHARED)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="aiotbench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    tree = (args.tree or REPO).resolve()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(REPO)])}
    try:
        pool = unique_copies(work / "pool", sizes[-1])
        cache = work / "cache"
        for name in names:  # warm the cache once per geometry, on the largest set (every core)
            entry = CASES[name]
            warm = subprocess.run([sys.executable, "-c", WARM, str(pool), str(cache), str(entry["input_size"]),
                                   str(entry["resize"])], env={**os.environ, "PYTHONPATH": str(REPO)},
                                  capture_output=True, text=True, check=True)
            print(f"{name}: {warm.stdout.strip()}", flush=True)
        print(f"\ncode: {tree}\n")
        print("| case | images | peak RSS MB | wall ms/image | timed ms/image | wall ÷ timed | top-1 |")
        print("|---|---|---|---|---|---|---|")
        for name in names:
            first = None
            for n in sizes:
                r = run_case(work, name, subset(pool, work / f"n{n}", n), cache, env)
                first = first or r
                print(f"| {name} | {n} | {r['maxrss_mb']:.0f} ({r['maxrss_mb'] / first['maxrss_mb']:.2f}x) | "
                      f"{r['wall_s'] / n * 1e3:.3f} | {r['timed_s'] / n * 1e3:.3f} | {r['wall_s'] / r['timed_s']:.2f} | "
                      f"{r['top1']:.4f} |", flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
