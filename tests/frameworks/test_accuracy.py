"""Real runtimes, real weights, real images: the plugin's accuracy equals the independent evaluation exactly."""

from __future__ import annotations

import json

import pytest

from tests.helpers.catalogs import float_entry, tflite_entry, write_catalog
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR, TORCH_DIR
from tests.helpers.reference import accuracy, labels_csv, onnx_predictions, tflite_predictions

pytestmark = [pytest.mark.real, pytest.mark.slow]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, shared):
    """One plugin run over the 500 images: int8 TFLite, TorchScript .pt, lite-interpreter .ptl, ONNX."""
    import subprocess
    import sys

    import torch

    tmp = tmp_path_factory.mktemp("accuracy")
    ptl = tmp / "mobilenet_v2_1.0_224.ptl"
    torch.jit.load(str(TORCH_DIR / "mobilenet_v2_1.0_224.pt"))._save_for_lite_interpreter(str(ptl))
    catalog = write_catalog(tmp / "catalog.toml", [
        tflite_entry("mobilenet_v2", TFLITE_DIR / "mobilenet_v2_1.0_224_quant.tflite", 224, min_top1=0.79),
        float_entry("mobilenet_v2_pt", "pytorch-mobile", TORCH_DIR / "mobilenet_v2_1.0_224.pt", 224),
        float_entry("mobilenet_v2", "pytorch-mobile", ptl, 224),
        float_entry("mobilenet_v2", "onnxruntime", TORCH_DIR / "mobilenet_v2_1.0_224.onnx", 224),
    ])
    report, bench = tmp / "report.json", tmp / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
         f"--aiotbench-catalog={catalog}", f"--aiotbench-dataset={IMAGENET_500}", f"--aiotbench-json={report}",
         f"--aiotbench-cache={tmp / 'cache'}", f"--benchmark-json={bench}", "--aiotbench-warmup=3"],
        cwd=tmp, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(report.read_text()), json.loads(bench.read_text()), proc.stdout


def _case(report, case_id):
    return next(c for c in report["cases"] if c["id"] == case_id)


def test_int8_tflite_matches_reference_exactly(full_run):
    report, _, _ = full_run
    case = _case(report, "mobilenet_v2-tflite-int8")
    assert (case["top1"], case["top5"], case["images"]) == (0.794, 0.934, 500)
    files, labels = labels_csv(IMAGENET_500)
    expected = tflite_predictions(TFLITE_DIR / "mobilenet_v2_1.0_224_quant.tflite", files, 224)
    assert case["per_image"]["top5"] == expected
    assert accuracy(expected, labels, 1) == case["top1"]


@pytest.mark.parametrize("case_id", ["mobilenet_v2_pt-pytorch-mobile-fp32", "mobilenet_v2-pytorch-mobile-fp32",
                                     "mobilenet_v2-onnxruntime-fp32"])
def test_float_ports_match_reference(full_run, case_id):
    report, _, _ = full_run
    case = _case(report, case_id)
    assert (case["top1"], case["top5"]) == (0.792, 0.938)
    files, _ = labels_csv(IMAGENET_500)
    expected = onnx_predictions(TORCH_DIR / "mobilenet_v2_1.0_224.onnx", files, 224)
    assert [p[0] for p in case["per_image"]["top5"]] == [p[0] for p in expected]


def test_report_validates_and_records_the_run(full_run):
    jsonschema = pytest.importorskip("jsonschema")
    from pytest_aiotbench.report.schema import REPORT

    report, _, _ = full_run
    jsonschema.validate(report, REPORT)
    assert report["dataset"]["fingerprint"].startswith("sha256:") and report["dataset"]["images"] == 500
    assert report["packages"]["ai-edge-litert"] and report["packages"]["onnxruntime"]
    assert report["settings"] ["threads"] == 1 and report["settings"]["warmup"] == 3
    ptl = _case(report, "mobilenet_v2-pytorch-mobile-fp32")
    assert ptl["runtime"]["loader"] == "lite-interpreter"
    for case in report["cases"]:
        lat = case["latency_ms"]
        assert len(case["per_image"]["latency_ms"]) == 500 and lat["min"] <= lat["median"] <= lat["max"]
        assert case["vips"] == pytest.approx(case["top1"] / (lat["mean"] / 1e3))
        assert case["prepare_ms"] > 0 and case["first_ms"] > 0 and case["status"] == "passed"
    assert report["score"]["vips"] == pytest.approx(sum(c["vips"] for c in report["cases"]))
    assert report["score"]["cases"] == 4


def test_benchmark_json_carries_the_same_metrics(full_run):
    report, bench, _ = full_run
    by_id = {c["id"]: c for c in report["cases"]}
    assert len(bench["benchmarks"]) == 4
    for b in bench["benchmarks"]:
        info = b["extra_info"]
        case = by_id[info["id"]]
        assert (info["top1"], info["top5"], info["vips"]) == (case["top1"], case["top5"], case["vips"])
        # pytest-benchmark's own stats are the per-image latencies, warmup excluded
        assert b["stats"]["rounds"] == 500
        assert b["stats"]["mean"] * 1e3 == pytest.approx(case["latency_ms"]["mean"])


def test_terminal_summary_groups_by_model(full_run):
    _, _, stdout = full_run
    assert "AIoTBench results (500 images, labels.csv, host" in stdout
    assert "79.4%" in stdout and "79.2%" in stdout
    assert "Device score: VIPS" in stdout
