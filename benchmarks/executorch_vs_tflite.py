"""Why a fully delegated ExecuTorch program can be slower than TFLite on the same XNNPACK: one run that separates
the harness's share from the runtime's (issue 13).

    python benchmarks/executorch_vs_tflite.py --zoo models/zoo [--model resnet50] [--rounds 5] [--calls 3]

Measured, each as a ratio within this run (interleaved rounds, so machine load hits both sides alike):
1. the zoo model: ExecuTorch ``.pte`` / TFLite fp32 through the plugin's sessions, at 1 and 2 threads;
2. threads: the thread count each runtime really uses (ExecuTorch's process-wide threadpool, TFLite's num_threads);
3. the Python binding's cost per call: a one-op program (1x8 add) timed through the same ``execute`` path;
4. the kernels alone: one 3x3 convolution (256 -> 256 channels, 56x56, 1.85 GFLOP, ResNet50's heaviest shape)
   exported to both formats from the same weights: if ExecuTorch's XNNPACK is slower on one conv, the gap is the
   runtime build's kernels, not the export or the harness.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_aiotbench.frameworks import PrepareOptions, get_framework  # noqa: E402


def interleaved(fns: dict, rounds: int, calls: int, warmup: int = 2) -> dict[str, float]:
    """Median ms per call of each zero-argument callable, rounds rotated so drift hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    order = list(fns)
    for r in range(rounds):
        for k in order[r % len(order):] + order[:r % len(order)]:
            fn = fns[k]
            for _ in range(calls):
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def sessions(zoo: Path, model: str, threads: int):
    manifest = json.loads((zoo / "manifest.json").read_text())
    out = {}
    for variant, framework in (("pte", "executorch"), ("fp32", "tflite")):
        key = next(k for k, e in manifest["files"].items() if e["model"] == model and e["variant"] == variant)
        entry = manifest["files"][key]
        s = get_framework(framework).prepare(str(zoo / key), PrepareOptions(threads=threads))
        size = entry["input"]["size"]
        shape = (1, 3, size, size) if entry["layout"] == "NCHW" else (1, size, size, 3)
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        out[variant] = (s, x)
    return out


def export_pair(net, x, folder: Path, name: str) -> tuple[Path, Path]:
    """The same torch module as .pte (XNNPACK) and .tflite (litert-torch, NHWC IO)."""
    import litert_torch
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    pte, tfl = folder / f"{name}.pte", folder / f"{name}.tflite"
    program = to_edge_transform_and_lower(torch.export.export(net, (x,)), partitioner=[XnnpackPartitioner()])
    pte.write_bytes(program.to_executorch().buffer)
    nhwc = litert_torch.to_channel_last_io(net, args=[0])
    litert_torch.convert(nhwc, (x.permute(0, 2, 3, 1).contiguous(),)).export(str(tfl))
    return pte, tfl


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", type=Path, default=REPO / "models" / "zoo")
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--other-pte", type=Path, default=None,
                    help="another .pte of the same model (e.g. exported without the zoo's rewrites), timed alongside")
    ap.add_argument("--only-model", action="store_true", help="skip the one-op and one-conv measurements")
    a = ap.parse_args(argv)
    report = {}
    import os

    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    # 1 + 2: the zoo model at 1 and 2 threads
    for threads in (1, 2):
        s = sessions(a.zoo, a.model, threads)
        if a.other_pte:
            other = get_framework("executorch").prepare(str(a.other_pte), PrepareOptions(threads=threads))
            s["other"] = (other, s["pte"][1])
        from executorch.extension.pybindings import portable_lib

        et_threads = portable_lib._threadpool_get_thread_count()
        ms = interleaved({k: (lambda s=sess, x=x: s.infer(x)) for k, (sess, x) in s.items()}, a.rounds, a.calls)
        report[f"model_{threads}t"] = {"executorch_ms": ms["pte"], "tflite_ms": ms["fp32"],
                                       "ratio": ms["pte"] / ms["fp32"], "executorch_threadpool": et_threads,
                                       "tflite_threads": s["fp32"][0].info["threads"]}
        if "other" in ms:
            report[f"model_{threads}t"].update(other_pte_ms=ms["other"], other_ratio=ms["other"] / ms["fp32"])
            print(f"  {a.other_pte.name}: {ms['other']:.1f} ms, ratio to TFLite {ms['other'] / ms['fp32']:.2f}")
        print(f"{a.model} {threads} thread(s): ExecuTorch {ms['pte']:.1f} ms, TFLite {ms['fp32']:.1f} ms, "
              f"ratio {ms['pte'] / ms['fp32']:.2f} (ExecuTorch threadpool: {et_threads} thread(s))", flush=True)
        for sess, _ in s.values():
            sess.close()
    if a.only_model:
        print(json.dumps(report, indent=1))
        return 0
    # 3 + 4: one-op and one-conv programs, same weights in both formats
    import torch

    torch.manual_seed(0)

    class Add(torch.nn.Module):
        def forward(self, x):
            return x + 1.0

    conv = torch.nn.Conv2d(256, 256, 3, padding=1).eval()
    with tempfile.TemporaryDirectory(prefix="et-vs-tfl-") as tmp:
        tmp = Path(tmp)
        add_pte, add_tfl = export_pair(Add().eval(), torch.randn(1, 8, 1, 1), tmp, "add")
        conv_pte, conv_tfl = export_pair(conv, torch.randn(1, 256, 56, 56), tmp, "conv")
        for name, (pte, tfl), shape in (("one add (binding cost per call)", (add_pte, add_tfl), (1, 8, 1, 1)),
                                        ("one 3x3 conv 256->256 @56x56", (conv_pte, conv_tfl), (1, 256, 56, 56))):
            et = get_framework("executorch").prepare(str(pte), PrepareOptions(threads=1))
            tf = get_framework("tflite").prepare(str(tfl), PrepareOptions(threads=1))
            x_nchw = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
            x_nhwc = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
            calls = 200 if "add" in name else a.calls
            ms = interleaved({"et": lambda: et.infer(x_nchw), "tf": lambda: tf.infer(x_nhwc)}, a.rounds, calls)
            report[name] = {"executorch_ms": ms["et"], "tflite_ms": ms["tf"], "ratio": ms["et"] / ms["tf"]}
            unit, scale = ("us", 1e3) if "add" in name else ("ms", 1)
            print(f"{name}: ExecuTorch {ms['et'] * scale:.1f} {unit}, TFLite {ms['tf'] * scale:.1f} {unit}, "
                  f"ratio {ms['et'] / ms['tf']:.2f}", flush=True)
            et.close()
            tf.close()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
