"""A second real architecture end to end (issue 11): SqueezeNet 1.0 with real ImageNet weights from
``<shared>/models/squeezenet`` (0.724 / 0.920 on the shared 500 images, computed independently, see its README).

``aiotbench zoo build --models squeezenet --weights squeezenet1_0_dc.pth --arch squeezenet1_0`` (your own state_dict
for a known architecture, its preprocessing given on the command line: RGB, ``x - [123, 117, 104]``, std 1, straight
resize to 227) into every variant, and the same weights as TorchScript (``--from-torchscript squeezenet1_0_dc.pt``)
into the float ones; then the plugin measures all of them on the 500 shared images. Tolerances from the issue: float
within 0.002 of 0.724, fp16 0.006, dynamic 0.015, full int8 0.03 (calibrated on ``<shared>/data/samples``, disjoint
from the evaluation images). Both builds and the run happen once per module: ~1 min of export, ~2 min of measuring.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from pytest_aiotbench.zoo import DEFAULT_VARIANTS
from tests.helpers.shared import REPO, SQUEEZENET_DIR
from tests.helpers.zoo import EVAL_SET, SAMPLES, missing_zoo_deps, needs_zoo, zoo_cli

pytestmark = pytest.mark.zoo

PTH = SQUEEZENET_DIR / "squeezenet1_0_dc.pth"
PT = SQUEEZENET_DIR / "squeezenet1_0_dc.pt"
REFERENCE_TOP1, REFERENCE_TOP5 = 0.724, 0.920
PREPROCESS = ("--input-size", "227", "--resize", "0", "--mean", "123,117,104", "--std", "1")
TOLERANCE = {"pytorch-mobile-fp32": 0.002, "onnxruntime-fp32": 0.002, "tflite-fp32": 0.002, "tflite-fp16": 0.006,
             "tflite-dynamic": 0.015, "tflite-int8": 0.03}
TS_VARIANTS = ("ptl", "onnx", "fp32")


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    missing = missing_zoo_deps()
    if missing:
        pytest.skip(f"zoo extra not installed (missing {', '.join(missing)}): pip install -e '.[zoo]'")
    for p in (PTH, PT, EVAL_SET, SAMPLES):
        if not p.exists():
            pytest.skip(f"shared data not found: {p} (set AIOTBENCH_SHARED)")
    work = tmp_path_factory.mktemp("squeezenet")
    out = work / "zoo"
    common = ("--out", str(out), "--calibration", str(SAMPLES), "--exclude", str(EVAL_SET), *PREPROCESS,
              "--reference-top1", str(REFERENCE_TOP1), "--reference-top5", str(REFERENCE_TOP5))
    r = zoo_cli("build", "--models", "squeezenet", "--weights", str(PTH), "--arch", "squeezenet1_0",
                "--variants", ",".join(DEFAULT_VARIANTS), *common)
    assert r.returncode == 0, r.stderr[-4000:]
    r = zoo_cli("build", "--from-torchscript", str(PT), "--name", "squeezenet1_0_ts",
                "--variants", ",".join(TS_VARIANTS), *common)
    assert r.returncode == 0, r.stderr[-4000:]
    report = work / "run.json"
    run = subprocess.run([sys.executable, "-m", "pytest", "--aiotbench", "--aiotbench-no-builtin",
                          f"--aiotbench-catalog={out / 'catalog.toml'}", f"--aiotbench-dataset={EVAL_SET}",
                          f"--aiotbench-json={report}", "--aiotbench-warmup", "2", "--benchmark-disable",
                          "-p", "no:cacheprovider", "-q"], capture_output=True, text=True, cwd=str(work),
                         timeout=1800, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert report.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    return out, run, json.loads(report.read_text())


@pytest.mark.slow
@pytest.mark.real
def test_every_variant_matches_the_reference_accuracy(measured):
    _, run, report = measured
    cases = {c["id"]: c for c in report["cases"]}
    summary = "\n".join(f"{i}: top1={c['top1']} top5={c['top5']} {c['status']} {c['reason'] or ''}"
                        for i, c in sorted(cases.items()))
    print(summary)
    expected = {f"squeezenet-{k}" for k in TOLERANCE} | {f"squeezenet1_0_ts-{k}" for k in TOLERANCE
                                                          if k.endswith("fp32")}
    assert set(cases) == expected, summary
    for case_id, c in cases.items():
        tol = TOLERANCE[case_id.split("-", 1)[1]]
        assert c["images"] == 500 and c["status"] == "passed", summary
        assert abs(c["top1"] - REFERENCE_TOP1) <= tol + 1e-9, f"{case_id}: {c['top1']} not within {tol}\n{summary}"
        lo, hi = c["top1_ci95"]
        assert lo < c["top1"] < hi and hi - lo < 0.08  # 500 images: about +-4 points
        if c["quant"] == "fp32":  # same weights, float: the independent evaluation's top-5 too
            assert abs(c["top5"] - REFERENCE_TOP5) <= 0.002, summary
    pth_tag, pt_tag = f"state_dict:{_sha(PTH)}", f"torchscript:{_sha(PT)}"
    assert all(c["weights"] == (pth_tag if c["model"] == "squeezenet" else pt_tag) for c in cases.values())
    # the quantized variants were held to a share of the same run's tflite-fp32, which ran first
    fp32 = cases["squeezenet-tflite-fp32"]["top1"]
    for quant, share in (("fp16", 0.99), ("dynamic", 0.98), ("int8", 0.97)):
        c = cases[f"squeezenet-tflite-{quant}"]
        assert c["min_top1_reference"] == {"id": "squeezenet-tflite-fp32", "top1": fp32}
        assert c["min_top1"] == pytest.approx(share * fp32)
    assert run.returncode == 0, run.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.real
def test_manifest_and_catalog_record_the_users_preprocessing(measured):
    out, _, _ = measured
    data = json.loads((out / "manifest.json").read_text())
    model = data["models"]["squeezenet"]
    assert model["arch"] == "squeezenet1_0" and model["weights"] == f"state_dict:{_sha(PTH)}"
    assert (model["input_size"], model["resize"], model["mean"], model["std"], model["color"]) == (
        227, 0, [123.0, 117.0, 104.0], [1.0, 1.0, 1.0], "RGB")
    assert model["reference_top1"] == REFERENCE_TOP1 and model["params"] == 1248424  # squeezenet1_0, not 1_1
    for v in DEFAULT_VARIANTS:
        entry = next(e for e in data["files"].values() if e["model"] == "squeezenet" and e["variant"] == v)
        assert entry["input"]["size"] == 227 and entry["input"]["resize"] == 0 and entry["input"]["std"] == [1.0] * 3
    cal = data["files"]["squeezenet/squeezenet-int8.tflite"]["calibration"]
    eval_shas = {_sha(p) for p in EVAL_SET.rglob("*.JPEG")}
    assert cal["excluded"][0]["images"] == 500 and not {f["sha256"] for f in cal["files"]} & eval_shas
    catalog = (out / "catalog.toml").read_text()
    assert 'arch = "squeezenet1_0"' in catalog and "resize = 0" in catalog and "mean = [123.0, 117.0, 104.0]" in catalog
    assert 'min_top1 = "97% of tflite-fp32"' in catalog
    listed = zoo_cli("weights", "--out", str(out))  # what `make bench` prints: which weights each model came from
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()}
    # The manifest records the resolved path (the shared folder may be reached through a link).
    assert lines["squeezenet"].split()[1].startswith(f"state_dict:{_sha(PTH)[:12]}")
    assert str(PTH.resolve()) in lines["squeezenet"]
    assert lines["squeezenet1_0_ts"].split()[1].startswith(f"torchscript:{_sha(PT)[:12]}")


# ---------------------------------------------------------------------------------------------------------------
# your own weights: usage errors (fast)


@pytest.mark.parametrize("args, message", [
    (("--models", "squeezenet", "--weights", "nope.pth"), "--weights: no such file nope.pth"),
    (("--models", "squeezenet,resnet50", "--weights", str(PTH)), "is one model's weights"),
    (("--models", "squeezenet", "--weights", str(PTH), "--arch", "resnet50"),
     "--arch resnet50 is not an architecture of squeezenet; choose from squeezenet1_1, squeezenet1_0"),
    (("--models", "squeezenet", "--arch", "squeezenet1_0"), "only apply with --from-torchscript or --weights"),
])
def test_own_weights_usage_errors_exit_2(tmp_path, args, message):
    if not PTH.is_file():
        pytest.skip(f"shared data not found: {PTH}")
    r = zoo_cli("build", "--out", str(tmp_path / "out"), *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr


@needs_zoo
@pytest.mark.slow
def test_state_dict_for_another_architecture_fails_in_one_line(tmp_path):
    """SqueezeNet 1.0 weights in the default squeezenet1_1 builder: the shapes do not fit; the build says so and
    names --arch, nothing is exported."""
    if not PTH.is_file():
        pytest.skip(f"shared data not found: {PTH}")
    r = zoo_cli("build", "--out", str(tmp_path / "out"), "--models", "squeezenet", "--weights", str(PTH),
                "--variants", "onnx")
    assert r.returncode == 1, r.stderr
    assert "does not fit torchvision.models.squeezenet1_1" in r.stderr and "--arch" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out" / "squeezenet" / "squeezenet.onnx").exists()


def test_bgr_models_are_calibrated_and_probed_in_bgr():
    """--color BGR: the export's calibration and probe inputs swap the decoded RGB pixels, as the plugin does."""
    import numpy as np

    from pytest_aiotbench.zoo.exporters import _normalize

    pixels = np.zeros((1, 2, 2, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 10, 20, 30  # R, G, B
    rgb = _normalize(pixels, [0, 0, 0], [1, 1, 1], "RGB")
    bgr = _normalize(pixels, [1, 2, 3], [1, 1, 1], "BGR")
    assert rgb[0, :, 0, 0].tolist() == [10, 20, 30] and bgr[0, :, 0, 0].tolist() == [29, 18, 7]
