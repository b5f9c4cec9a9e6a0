"""The zoo's ExecuTorch export (with its exact XNNPACK rewrites) against the eager model, same weights, on the 500
shared images: top-1 agreement, max |logit difference|, ops outside XNNPACK and the rewrites applied.

    python benchmarks/rewrite_equivalence.py [--images 500] [--zoo models/zoo --random inception_v3,mnasnet,...]

Real weights: the shared MobileNetV2 TorchScript (TF-slim port) and SqueezeNet 1.0 (Deep Compression) state dict.
``--random`` adds zoo models built with random weights (BatchNorm re-estimated), read from ``<zoo>/.sources``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("AIOTBENCH_SHARED", REPO.parent / "shared"))
IMAGES = SHARED / "data" / "imagenet-val-500"


def export_pte(net, x, out: Path) -> dict:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from pytest_aiotbench.frameworks.coverage import executorch_coverage
    from pytest_aiotbench.zoo.rewrites import rewrite_exported, rewrite_module

    counts: Counter = Counter()
    if not isinstance(net, torch.jit.ScriptModule):
        import copy

        net = copy.deepcopy(net)  # the caller's eager model stays the unrewritten reference
        rewrite_module(net, counts)
    else:
        from torch._export.converter import TS2EPConverter

        net = TS2EPConverter(net, (x,)).convert().module()
    exported = rewrite_exported(torch.export.export(net, (x,)), counts)
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    out.write_bytes(program.buffer)
    return {"rewrites": dict(counts), "coverage": executorch_coverage(out)}


def compare(name: str, net, size: int, resize: int, mean, std, images: int, tmp: Path) -> dict:
    import torch
    from executorch.runtime import Runtime
    from PIL import Image

    torch.set_num_threads(1)
    files = sorted(p for p in IMAGES.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))[:images]
    x0 = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        net(x0)
    facts = export_pte(net, x0, tmp / f"{name}.pte")
    method = Runtime.get().load_program(str(tmp / f"{name}.pte")).load_method("forward")
    worst, agree, classes = 0.0, 0, set()
    for f in files:
        img = Image.open(f).convert("RGB").resize((resize, resize), Image.BILINEAR)
        off = (resize - size) // 2
        px = np.asarray(img, np.float32)[off:off + size, off:off + size]
        x = torch.from_numpy(((px - np.float32(mean)) / np.float32(std)).transpose(2, 0, 1)[None].copy())
        with torch.no_grad():
            ref = net(x).numpy().reshape(-1)
        got = method.execute([x])[0].numpy().reshape(-1)
        worst = max(worst, float(np.abs(got - ref).max()))
        agree += int(np.argmax(got) == np.argmax(ref))
        classes.add(int(np.argmax(ref)))
    cov = facts["coverage"]
    row = {"model": name, "images": len(files), "top1_agree": agree, "max_abs_dlogit": worst,
           "distinct_top1": len(classes), "outside": cov["outside"], "delegated_ops": cov["delegated_ops"],
           "subgraphs": cov["subgraphs"], "rewrites": facts["rewrites"]}
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--zoo", type=Path, default=REPO / "models" / "zoo")
    ap.add_argument("--random", default="", help="zoo models with random weights to add (from <zoo>/.sources)")
    a = ap.parse_args(argv)
    import torch

    from pytest_aiotbench.zoo.torchvision_compat import import_torchvision

    tv = import_torchvision()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rewrite-eq-") as tmp:
        tmp = Path(tmp)
        mnv2 = torch.jit.load(str(SHARED / "models/torch/mobilenet_v2_1.0_224.pt"), map_location="cpu").eval()
        rows.append(compare("mobilenet_v2 (shared, real)", mnv2, 224, 256, [127.5] * 3, [127.5] * 3, a.images, tmp))
        sq = tv.models.squeezenet1_0(weights=None)
        sq.load_state_dict(torch.load(str(SHARED / "models/squeezenet/squeezenet1_0_dc.pth"), map_location="cpu"))
        rows.append(compare("squeezenet1_0 (shared, real)", sq.eval(), 227, 227, [123.0, 117.0, 104.0], [1.0] * 3,
                            a.images, tmp))
        if a.random:
            from pytest_aiotbench.zoo import MODELS
            from pytest_aiotbench.zoo.build import _model_dict
            from pytest_aiotbench.zoo.exporters import load_source

            for name in a.random.split(","):
                m = _model_dict(MODELS[name], None)
                src = a.zoo / ".sources" / f"{name}-random-{m['input_size']}.pt"
                net, _ = load_source({"weights": "random", "model": m, "source_path": str(src)})
                rows.append(compare(f"{name} (random, BN re-estimated)", net, m["input_size"], m["resize"],
                                    m["mean"], m["std"], a.images, tmp))
    print("\n| model | images | top-1 identical | max abs dlogit | ops outside XNNPACK | rewrites |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        rw = "; ".join(f"{k.split(' ->')[0]} x{v}" for k, v in r["rewrites"].items()) or "none needed"
        print(f"| {r['model']} | {r['images']} | {r['top1_agree']}/{r['images']} | {r['max_abs_dlogit']:.2g} | "
              f"{sum(r['outside'].values())} | {rw} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
