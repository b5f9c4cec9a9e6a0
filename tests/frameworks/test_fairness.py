"""Issue 13: each framework at its best. Delegation coverage is measured per artifact (manifest) and per case
(JSON, terminal, HTML); the zoo's ExecuTorch export keeps every InceptionV3 op inside XNNPACK through exact
rewrites, and its outputs equal the eager model's. No test here asserts a latency."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.catalogs import float_entry, tflite_entry, write_catalog
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR, TORCH_DIR
from tests.helpers.zoo import has_module, needs_zoo, zoo_cli

pytestmark = pytest.mark.real


needs_executorch = pytest.mark.skipif(not has_module("executorch.exir"), reason="executorch not installed: "
                                      "pip install -e '.[executorch]' 'torch==2.13.0'")
needs_shared = pytest.mark.skipif(not IMAGENET_500.is_dir(), reason=f"shared images not found: {IMAGENET_500}")

INCEPTION_SIZE = 107  # small input (InceptionV3 needs >= 75): the same ops as at 299, a fraction of the time
# Ops that may stay outside XNNPACK in the zoo's .pte, with why. None today: every rewrite is exact (rewrites.py).
UNAVOIDABLE_OUTSIDE: dict[str, str] = {}


@pytest.fixture(scope="module")
def inception_pte(tmp_path_factory):
    if not has_module("executorch.exir"):
        pytest.skip("executorch not installed")
    out = tmp_path_factory.mktemp("fairzoo") / "zoo"
    r = zoo_cli("build", "--out", str(out), "--models", "inception_v3", "--weights", "random", "--variants",
                "pte,fp32", "--input-size", str(INCEPTION_SIZE), timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    return out, manifest


# ---------------------------------------------------------------------------------------------------------------
# the InceptionV3 export


@pytest.mark.zoo
@pytest.mark.slow
@needs_zoo
@needs_executorch
def test_inception_pte_runs_every_op_in_xnnpack_and_the_manifest_says_so(inception_pte):
    out, manifest = inception_pte
    entry = manifest["files"]["inception_v3/inception_v3.pte"]
    cov = entry["coverage"]
    assert cov["accelerator"] == "XNNPACK", cov
    assert set(cov["outside"]) <= set(UNAVOIDABLE_OUTSIDE), cov["outside"]
    assert cov["subgraphs"] == 1 and cov["delegated_ops"] == cov["total_ops"] > 100
    # the exact rewrites that made it so are recorded: nine branch pools and the input transform
    rewrites = entry["rewrites"]
    assert sum(n for what, n in rewrites.items() if what.startswith("aten.avg_pool2d")) == 9, rewrites
    assert any(what.startswith("inception transform_input") for what in rewrites), rewrites
    # and the file itself, read back the way a case reads it, agrees with the manifest
    from pytest_aiotbench.frameworks.coverage import executorch_coverage

    assert executorch_coverage(out / "inception_v3/inception_v3.pte") == cov
    # the TFLite of the same weights: its coverage is recorded too (whatever the converter made of the pools)
    tfl = manifest["files"]["inception_v3/inception_v3-fp32.tflite"]["coverage"]
    assert tfl["total_ops"] > 100 and tfl["accelerator"] == "XNNPACK"


@pytest.mark.zoo
@pytest.mark.slow
@needs_zoo
@needs_executorch
@needs_shared
def test_inception_pte_equals_eager_on_the_shared_images(inception_pte):
    """The rewritten .pte against the eager torchvision model, same weights, on all 500 shared images: top-1
    identical, logits within float tolerance (the maximum difference is printed for the README)."""
    import torch
    from executorch.runtime import Runtime

    from pytest_aiotbench.zoo.exporters import load_source

    out, manifest = inception_pte
    model = {**manifest["models"]["inception_v3"], "name": "inception_v3", "builder": "inception_v3"}
    net, _ = load_source({"weights": "random", "model": model,
                          "source_path": str(out / manifest["models"]["inception_v3"]["source"]["path"])})
    method = Runtime.get().load_program(str(out / "inception_v3/inception_v3.pte")).load_method("forward")
    from PIL import Image

    files = sorted(p for p in IMAGENET_500.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    assert len(files) >= 500
    mean, std = np.float32(model["mean"]), np.float32(model["std"])
    worst, worst_rel, agree, top1_eager = 0.0, 0.0, 0, Counter()
    torch.set_num_threads(1)
    for f in files[:500]:
        img = Image.open(f).convert("RGB").resize((INCEPTION_SIZE, INCEPTION_SIZE), Image.BILINEAR)
        x = torch.from_numpy(((np.asarray(img, np.float32) - mean) / std).transpose(2, 0, 1)[None].copy())
        with torch.no_grad():
            ref = net(x).numpy()[0]
        got = method.execute([x])[0].numpy()[0]
        worst = max(worst, float(np.abs(got - ref).max()))
        worst_rel = max(worst_rel, float(np.abs(got - ref).max() / np.abs(ref).max()))
        agree += int(np.argmax(got) == np.argmax(ref))
        top1_eager[int(np.argmax(ref))] += 1
    print(f"inception_v3 .pte vs eager on 500 images: top-1 agree {agree}/500, max |dlogit| {worst:.3g} "
          f"(relative {worst_rel:.2g}), {len(top1_eager)} distinct classes")
    assert len(top1_eager) > 5  # BatchNorm-re-estimated random weights: the images get different classes
    assert agree == 500
    assert worst_rel < 1e-3  # float32 reassociation across 94 convolutions, not a wrong op


# ---------------------------------------------------------------------------------------------------------------
# coverage in every case's JSON, and the flags


def _tiny_pte(path: Path, rewrite: bool) -> dict:
    """A small classifier with InceptionV3's padded branch pool, exported with or without the zoo's rewrites."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from pytest_aiotbench.zoo.rewrites import rewrite_exported

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8, 1000)

        def forward(self, x):
            y = torch.nn.functional.avg_pool2d(torch.relu(self.conv(x)), 3, 1, 1)  # count_include_pad=True
            return self.fc(torch.nn.functional.adaptive_avg_pool2d(y, 1).flatten(1))

    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    exported = torch.export.export(Net().eval(), (x,))
    counts: Counter = Counter()
    if rewrite:
        exported = rewrite_exported(exported, counts)
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    path.write_bytes(program.buffer)
    return dict(counts)


def _imagenet_entry(name: str, file: Path) -> dict:
    return {"name": name, "framework": "executorch", "quant": "fp32", "file": str(file), "input_size": 32,
            "resize": 36, "layout": "NCHW", "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
            "num_classes": 1000, "background": False}


@pytest.mark.zoo
@pytest.mark.slow
@needs_executorch
@needs_shared
def test_every_framework_case_carries_its_coverage_and_gaps_are_flagged(tmp_path, run_aiotbench):
    assert _tiny_pte(tmp_path / "pooled.pte", rewrite=False) == {}
    assert _tiny_pte(tmp_path / "rewritten.pte", rewrite=True)
    catalog = write_catalog(tmp_path / "catalog.toml", [
        tflite_entry("mnv1_quant", TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite", 128),
        tflite_entry("mnv1_nodelegate", TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite", 128,
                     options={"delegate": "none"}),
        float_entry("mnv1_ort", "onnxruntime", TORCH_DIR / "mobilenet_v1_0.25_128.onnx", 128),
        float_entry("mnv1_torch", "pytorch-mobile", TORCH_DIR / "mobilenet_v1_0.25_128.pt", 128),
        _imagenet_entry("pooled", tmp_path / "pooled.pte"),
        _imagenet_entry("rewritten", tmp_path / "rewritten.pte"),
    ])
    html = tmp_path / "report.html"
    run = run_aiotbench("--aiotbench-images=8", "--aiotbench-warmup=1", f"--aiotbench-html={html}",
                        catalogs=[catalog], dataset=IMAGENET_500)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    cases = {c["model"]: c for c in run.report["cases"]}
    assert set(cases) == {"mnv1_quant", "mnv1_nodelegate", "mnv1_ort", "mnv1_torch", "pooled", "rewritten"}
    for c in cases.values():
        cov = c["runtime"]["coverage"]
        assert {"accelerator", "total_ops", "delegated_ops", "outside", "complete"} <= set(cov), c["id"]
    # ExecuTorch: the padded pool falls out of XNNPACK onto the portable kernels unless rewritten
    pooled, rewritten = cases["pooled"]["runtime"]["coverage"], cases["rewritten"]["runtime"]["coverage"]
    assert pooled["outside"] == {"aten::avg_pool2d.out": 1} and pooled["subgraphs"] == 2
    assert rewritten["outside"] == {} and rewritten["complete"] and rewritten["subgraphs"] == 1
    kinds = rewritten["delegated_kinds"]
    assert kinds.get("XNNStaticConstantPad") == 1 and kinds.get("XNNAvgPooling2d") == 1, kinds
    assert "XNNAvgPooling2d" not in pooled["delegated_kinds"]
    # TFLite: with XNNPACK every op is counted once, inside or outside; without it none is inside
    quant, off = cases["mnv1_quant"]["runtime"]["coverage"], cases["mnv1_nodelegate"]["runtime"]["coverage"]
    assert quant["accelerator"] == "XNNPACK" and quant["delegated_ops"] + quant["outside_ops"] == quant["total_ops"]
    assert off["accelerator"] is None and off["delegated_ops"] == 0 and off["outside_ops"] == off["total_ops"]
    # ONNX Runtime: every node on the CPU provider, as its profiler says
    ort_cov = cases["mnv1_ort"]["runtime"]["coverage"]
    assert ort_cov["providers"] == {"CPUExecutionProvider": ort_cov["total_ops"]} and ort_cov["complete"]
    # the terminal and the HTML flag the gap next to the number
    flags = [line.strip() for line in run.stdout.splitlines() if line.strip().startswith("! ")]
    assert "! pooled-executorch-fp32: 1 ops outside XNNPACK (aten::avg_pool2d.out x1)" in flags, flags
    assert not [f for f in flags if "rewritten" in f or "mnv1_ort" in f], flags
    assert [f for f in flags if "mnv1_nodelegate" in f and "XNNPACK turned off" in f], flags
    page = html.read_text()
    assert "coverage-gap" in page and "1 ops outside XNNPACK" in page


# ---------------------------------------------------------------------------------------------------------------
# fast: the readers on the shared models, no export


@pytest.mark.skipif(not (TFLITE_DIR / "mobilenet_v2_1.0_224_quant.tflite").is_file(), reason="shared models not found")
def test_tflite_coverage_counts_every_node_once_with_and_without_xnnpack():
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from pytest_aiotbench.frameworks.coverage import describe_gap, tflite_coverage

    model = str(TFLITE_DIR / "mobilenet_v2_1.0_224_quant.tflite")
    on = Interpreter(model_path=model, num_threads=1)
    on.allocate_tensors()
    off = Interpreter(model_path=model, num_threads=1,
                      experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    off.allocate_tensors()
    with_xnnpack, without = tflite_coverage(on), tflite_coverage(off, "none")
    assert with_xnnpack["total_ops"] == without["total_ops"] == 66  # the model's own nodes, DELEGATE nodes apart
    assert with_xnnpack["delegated_ops"] + with_xnnpack["outside_ops"] == with_xnnpack["total_ops"]
    assert with_xnnpack["delegated_ops"] > 60 and with_xnnpack["subgraphs"] >= 1
    assert without["delegated_ops"] == 0 and without["outside_ops"] == 66 and not without["complete"]
    assert "XNNPACK turned off" in describe_gap(without)
    # FLOPs from filter and output shapes: MobileNetV2 at 224 is 0.30 G multiply-adds, all of them in XNNPACK
    assert with_xnnpack["flops"] == without["flops"] and 0.55e9 < with_xnnpack["flops"] < 0.65e9
    assert with_xnnpack["delegated_flops_share"] == 1.0 and without["delegated_flops_share"] == 0.0


def test_a_file_the_reader_does_not_know_is_reported_not_raised(tmp_path):
    from pytest_aiotbench.frameworks.coverage import collect, describe_gap, executorch_coverage

    bogus = tmp_path / "bogus.pte"
    bogus.write_bytes(b"\x08\x00\x00\x00ET12" + b"\xff" * 24)
    cov = collect(lambda: executorch_coverage(bogus))
    assert cov["error"] and cov["complete"] is False
    assert describe_gap(cov).startswith("coverage unknown (")


def test_max_pool_after_relu_becomes_zero_pad_and_is_bit_identical():
    torch = pytest.importorskip("torch")
    from pytest_aiotbench.zoo.rewrites import rewrite_max_pool_after_relu

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(3, 2, 1),
                              torch.nn.Conv2d(8, 8, 1), torch.nn.MaxPool2d(3, 2, 1)).eval()  # 2nd: input may be < 0
    x = torch.randn(2, 3, 33, 33)
    with torch.no_grad():
        before = net(x)
    counts: Counter = Counter()
    rewrite_max_pool_after_relu(net, counts)
    with torch.no_grad():
        after = net(x)
    assert sum(counts.values()) == 1
    assert isinstance(net[2], torch.nn.Sequential) and isinstance(net[4], torch.nn.MaxPool2d)
    assert torch.equal(before, after)
