"""Framework fairness: for each zoo model, each fp32 framework's latency (TFLite, ONNX Runtime, PyTorch Mobile,
ExecuTorch, ncnn, MNN, OpenVINO) divided by the fastest framework's on that
model, in one run, with the delegation coverage of each artifact beside it.

    python benchmarks/framework_fairness.py --zoo models/zoo [--models resnet50,inception_v3] [--rounds 8]
        [--calls 3] [--threads 1] [--json out.json]

All artifacts of one model come from the same weights (the zoo's manifest says so). Each is prepared through the
plugin's own framework sessions (what a benchmark case times), then timed in interleaved rounds: every round runs
``--calls`` inferences per framework, in a rotated order, so drift from other load on the machine hits every
framework alike; the figure is the median over all calls. The input is one fixed random tensor of the model's shape
(fp32 latency does not depend on pixel values). Ratios are what to read; absolute milliseconds move with load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_aiotbench.frameworks import FrameworkUnavailable, PrepareOptions, get_framework  # noqa: E402
from pytest_aiotbench.frameworks.coverage import collect, describe_gap  # noqa: E402

# the fp32 artifact of each framework (same weights, same precision): variant -> column label
FP32_VARIANTS = {"fp32": "TFLite fp32", "onnx": "ONNX Runtime", "ptl": "PyTorch Mobile", "pte": "ExecuTorch",
                 "ncnn": "ncnn", "mnn": "MNN", "openvino": "OpenVINO"}


def load_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def prepare_all(zoo: Path, manifest: dict, model: str, threads: int) -> dict:
    sessions = {}
    for key, entry in sorted(manifest["files"].items()):
        if entry.get("model") != model or entry.get("variant") not in FP32_VARIANTS:
            continue
        framework = get_framework(entry["framework"])
        try:
            session = framework.prepare(str(zoo / key), PrepareOptions(threads=threads))
        except FrameworkUnavailable as exc:  # e.g. built elsewhere, runtime missing here: a column of "-"
            print(f"# {model} {FP32_VARIANTS[entry['variant']]}: skipped: {exc}", flush=True)
            continue
        x = np.random.default_rng(0).standard_normal(_shape(entry)).astype(np.float32)
        session.infer(x)  # first inference (weight packing, allocation): never timed
        sessions[entry["variant"]] = (session, x, entry)
    return sessions


def _shape(entry: dict) -> tuple[int, ...]:
    size = entry["input"]["size"]
    return (1, 3, size, size) if entry["layout"] == "NCHW" else (1, size, size, 3)


def time_interleaved(sessions: dict, rounds: int, calls: int, warmup: int) -> dict[str, list[float]]:
    for session, x, _ in sessions.values():
        for _ in range(warmup):
            session.infer(x)
    times: dict[str, list[float]] = {v: [] for v in sessions}
    order = list(sessions)
    for r in range(rounds):
        rotated = order[r % len(order):] + order[:r % len(order)]
        for variant in rotated:
            session, x, _ = sessions[variant]
            infer = session.infer
            for _ in range(calls):
                t0 = time.perf_counter()
                infer(x)
                times[variant].append(time.perf_counter() - t0)
    return times


def coverage_text(cov: dict) -> str:
    gap = describe_gap(cov)
    if gap:
        return gap
    if cov.get("accelerator") == "CPUExecutionProvider":
        return f"all {cov['total_ops']} nodes on the CPU provider (MLAS)"
    if cov.get("runtime_precisions"):  # OpenVINO: the precision its nodes really ran in
        ran = ", ".join(f"{p} x{n}" for p, n in cov["runtime_precisions"].items())
        return f"all {cov['total_ops']} ops on {cov['accelerator']} (nodes ran in {ran})"
    return f"all {cov['total_ops']} ops in {cov['accelerator']}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", type=Path, default=REPO / "models" / "zoo")
    ap.add_argument("--models", default=None)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    manifest = json.loads((a.zoo / "manifest.json").read_text())
    models = a.models.split(",") if a.models else sorted(manifest["models"])
    print(f"# framework fairness, {a.threads} thread(s), {a.rounds} interleaved rounds x {a.calls} calls; "
          f"start: {load_load()}", flush=True)
    results = {}
    for model in models:
        sessions = prepare_all(a.zoo, manifest, model, a.threads)
        if not sessions:
            continue
        times = time_interleaved(sessions, a.rounds, a.calls, a.warmup)
        medians = {v: statistics.median(t) * 1e3 for v, t in times.items()}
        fastest = min(medians.values())
        rows = {}
        for variant, (session, _, entry) in sessions.items():
            cov = collect(session.coverage)
            rows[variant] = {"median_ms": round(medians[variant], 2), "ratio": round(medians[variant] / fastest, 2),
                             "coverage": cov, "coverage_text": coverage_text(cov),
                             "weights": entry.get("weights"), "rewrites": entry.get("rewrites")}
            session.close()
        results[model] = rows
        line = ", ".join(f"{FP32_VARIANTS[v]} {r['median_ms']:.1f} ms (x{r['ratio']:.2f})" for v, r in rows.items())
        print(f"{model}: {line}", flush=True)
    print(f"# end: {load_load()}\n")
    columns = [v for v in FP32_VARIANTS if any(v in rows for rows in results.values())]
    print("| model | " + " | ".join(FP32_VARIANTS[v] for v in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for model, rows in results.items():
        cells = [f"{rows[v]['ratio']:.2f} ({rows[v]['median_ms']:.0f} ms)" if v in rows else "-" for v in columns]
        print(f"| {model} | " + " | ".join(cells) + " |")
    print("\nCoverage:")
    for model, rows in results.items():
        for v, r in rows.items():
            print(f"  {model} {FP32_VARIANTS[v]}: {r['coverage_text']}")
    if a.json:
        a.json.write_text(json.dumps({"threads": a.threads, "rounds": a.rounds, "calls": a.calls,
                                      "results": results}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
