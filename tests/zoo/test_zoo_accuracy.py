"""Real accuracy through the whole pipeline: a user's TorchScript model with real ImageNet weights
(``<shared>/models/torch/mobilenet_v2_1.0_224.pt``, 0.792 top-1 on ``<shared>/data/imagenet-val-500``) built with
``aiotbench zoo build --from-torchscript`` into .ptl/.onnx/TFLite fp32/fp16/dynamic/int8, then measured on those 500
images by the plugin itself (``pytest --aiotbench --aiotbench-catalog <out>/catalog.toml``).

Tolerances from issue 3: ptl/onnx/fp32 within 0.002 of 0.792, fp16 0.006, dynamic 0.015, int8 0.03. int8 is
calibrated on the six photos of ``<shared>/data/samples`` plus seeded augmented crops of them; none of them is among
the 500 evaluation images (checked by content hash, recorded in the manifest). ~2 minutes on 2 cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_aiotbench.zoo import DEFAULT_VARIANTS
from pytest_aiotbench.inputs import manifest as mf

from tests.helpers.shared import REPO, SHARED
from tests.helpers.zoo import EVAL_SET, SAMPLES, missing_zoo_deps, zoo_cli

pytestmark = [pytest.mark.zoo, pytest.mark.slow]

TS_MODEL = SHARED / "models" / "torch" / "mobilenet_v2_1.0_224.pt"
REFERENCE_TOP1 = 0.792
TOLERANCE = {("pytorch-mobile", "fp32"): 0.002, ("onnxruntime", "fp32"): 0.002, ("tflite", "fp32"): 0.002,
             ("tflite", "fp16"): 0.006, ("tflite", "dynamic"): 0.015, ("tflite", "int8"): 0.03}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    missing = missing_zoo_deps()
    if missing:
        pytest.skip(f"zoo extra not installed (missing {', '.join(missing)}): pip install -e '.[zoo]'")
    for p in (TS_MODEL, EVAL_SET, SAMPLES):
        if not p.exists():
            pytest.skip(f"shared data not found: {p} (set AIOTBENCH_SHARED)")
    out = tmp_path_factory.mktemp("tszoo") / "out"
    r = zoo_cli("build", "--out", str(out), "--from-torchscript", str(TS_MODEL), "--name", "mobilenet_v2_tf",
                "--input-size", "224", "--resize", "256", "--mean", "127.5", "--std", "127.5", "--num-classes",
                "1001", "--background", "--reference-top1", str(REFERENCE_TOP1), "--calibration", str(SAMPLES),
                "--exclude", str(EVAL_SET), "--variants", ",".join(DEFAULT_VARIANTS))
    assert r.returncode == 0, r.stderr[-4000:]
    return out


def _plugin_run(catalog: Path, workdir: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    report = workdir / "r.json"
    workdir.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "pytest", "--aiotbench", f"--aiotbench-catalog={catalog}",
                        f"--aiotbench-dataset={EVAL_SET}", f"--aiotbench-json={report}", "-p",
                        "no:cacheprovider", "-q", *extra], capture_output=True, text=True, cwd=str(workdir),
                       timeout=1800, env={**os.environ, "PYTHONPATH": str(REPO)})
    return r, (json.loads(report.read_text()) if report.is_file() else None)


def test_manifest_records_provenance_and_disjoint_calibration(built):
    data = json.loads((built / "manifest.json").read_text())
    sha = hashlib.sha256(TS_MODEL.read_bytes()).hexdigest()
    assert len(data["files"]) == 6
    eval_shas = {hashlib.sha256(p.read_bytes()).hexdigest() for p in EVAL_SET.rglob("*.JPEG")}
    for key, entry in data["files"].items():
        assert entry["weights"] == f"torchscript:{sha}"
        assert entry["sha256"] == mf.file_sha256(built / key)
        assert entry["export_seconds"] > 0 and entry["peak_memory_mb"] > 50
        assert entry["input"]["size"] == 224 and entry["input"]["mean"] == [127.5] * 3
        assert entry["flops"] > 5e8  # ~0.6 GFLOP (0.3 G multiply-adds)
    cal = data["files"]["mobilenet_v2_tf/mobilenet_v2_tf-int8.tflite"]["calibration"]
    assert cal["excluded"] and cal["excluded"][0]["images"] == 500
    assert not {f["sha256"] for f in cal["files"]} & eval_shas
    assert cal["samples"] >= 100 and cal["method"]
    ptl = data["files"]["mobilenet_v2_tf/mobilenet_v2_tf.ptl"]["details"]
    assert ptl["max_abs_diff_vs_eager"] < 1e-4
    catalog = (built / "catalog.toml").read_text()
    assert "num_classes = 1001" in catalog and "background = true" in catalog


def test_accuracy_through_the_plugin(built, tmp_path):
    r, report = _plugin_run(built / "catalog.toml", tmp_path / "run")
    assert report is not None, r.stdout[-3000:] + r.stderr[-3000:]
    # the built artifacts only (a catalog given replaces the built-in suite: its cases are not in the report)
    cases = {(c["framework"], c["quant"]): c for c in report["cases"] if c["id"].startswith("mobilenet_v2_tf-")}
    assert set(cases) == set(TOLERANCE), sorted(cases)
    lines = []
    for key, tol in TOLERANCE.items():
        c = cases[key]
        lines.append(f"{key}: top1={c['top1']} top5={c['top5']} status={c['status']} weights={c['weights']}")
    summary = "\n".join(lines)
    print(summary)
    for key, tol in TOLERANCE.items():
        c = cases[key]
        assert c["images"] == 500 and c["status"] == "passed", summary
        assert c["weights"].startswith("torchscript:"), summary
        assert abs(c["top1"] - REFERENCE_TOP1) <= tol + 1e-9, f"{key}: top-1 {c['top1']} not within {tol}\n{summary}"
    assert r.returncode == 0, r.stdout[-3000:]


def test_plugin_fails_a_tampered_artifact(built, tmp_path):
    """A copy of the zoo folder with one byte of the fp16 TFLite flipped: the plugin fails that case, naming it."""
    copy = tmp_path / "zoo"
    shutil.copytree(built, copy, ignore=shutil.ignore_patterns(".sources", ".logs"))
    victim = copy / "mobilenet_v2_tf" / "mobilenet_v2_tf-fp16.tflite"
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 3] ^= 0x01
    victim.write_bytes(bytes(blob))
    text = (copy / "catalog.toml").read_text()
    fp16 = [part for part in text.split("  [[model.variant]]") if "fp16" in part][0]
    fp16 = "".join(line for line in fp16.splitlines(True) if "min_top1" not in line)  # its reference is left out
    (copy / "one.toml").write_text(text.split("  [[model.variant]]")[0] + "  [[model.variant]]" + fp16)
    r, report = _plugin_run(copy / "one.toml", tmp_path / "run")
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "mobilenet_v2_tf-fp16.tflite" in out and "does not match" in out, out[-3000:]
