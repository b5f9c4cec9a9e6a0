"""The plugin as users drive it: thresholds, skips, clear failures, selection, cache, synthetic data, Ctrl-C."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.catalogs import dedent, float_entry, tflite_entry, write_catalog
from tests.helpers.copies import labeled_dataset
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR, TORCH_DIR

SMALL = TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"


def small_entry(**extra) -> dict:
    return {**tflite_entry("mobilenet_v1_025", SMALL, 128), **extra}


@pytest.fixture
def small_catalog(tmp_path, shared):
    return write_catalog(tmp_path / "catalog.toml", [small_entry(min_top1=0.2)])


@pytest.mark.slow
def test_threshold_above_measured_accuracy_fails_with_numbers(run_aiotbench, small_catalog):
    run = run_aiotbench("--aiotbench-images=40", "--aiotbench-min-top1=0.99", catalogs=[small_catalog],
                        dataset=IMAGENET_500)
    assert run.returncode == 1
    case = run.case("mobilenet_v1_025-tflite-int8")
    assert case["status"] == "failed" and case["top1"] < 0.99
    assert f"top-1 {case['top1']:.4f} < required 0.9900 on 40 images" in run.stdout
    assert "Traceback" not in run.stdout


@pytest.mark.slow
def test_threshold_below_measured_accuracy_passes(run_aiotbench, small_catalog):
    run = run_aiotbench("--aiotbench-images=40", catalogs=[small_catalog], dataset=IMAGENET_500)
    assert run.returncode == 0, run.stdout
    case = run.case("mobilenet_v1_025-tflite-int8")
    assert case["status"] == "passed" and case["top1"] >= 0.2 and case["images"] == 40


@pytest.mark.slow
def test_missing_model_file_skips_and_strict_fails(run_aiotbench, tmp_path, shared):
    catalog = write_catalog(tmp_path / "c.toml", [small_entry(file="nowhere/model.tflite")])
    run = run_aiotbench("--aiotbench-images=2", "-rs", catalogs=[catalog], dataset=IMAGENET_500)
    assert run.returncode == pytest.ExitCode.NO_TESTS_COLLECTED  # nothing measured is never green
    assert "model file not found" in run.stdout and "fix the path in" in run.stdout
    assert run.case("mobilenet_v1_025-tflite-int8")["status"] == "skipped"
    strict = run_aiotbench("--aiotbench-images=2", "--aiotbench-strict", catalogs=[catalog], dataset=IMAGENET_500)
    assert strict.returncode == 1 and "(--aiotbench-strict)" in strict.stdout


@pytest.mark.slow
def test_missing_framework_package_skips_with_pip_command(run_aiotbench, tmp_path, shared):
    # A real interpreter in which onnxruntime cannot be imported, as on a machine without it.
    blocker = tmp_path / "blocker"
    (blocker / "onnxruntime").mkdir(parents=True)
    (blocker / "onnxruntime" / "__init__.py").write_text("raise ImportError('No module named onnxruntime')\n")
    catalog = write_catalog(tmp_path / "c.toml", [
        float_entry("mnv1", "onnxruntime", TORCH_DIR / "mobilenet_v1_0.25_128.onnx", 128)])
    run = run_aiotbench("--aiotbench-images=2", "-rs", catalogs=[catalog], dataset=IMAGENET_500,
                        env={"PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])})
    assert run.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, run.stdout  # skipped only: not green
    assert "pip install 'pytest-aiotbench[onnx]'" in run.stdout
    assert run.case("mnv1-onnxruntime-fp32")["status"] == "skipped"


@pytest.mark.parametrize("framework,suffix,message", [
    ("tflite", ".tflite", "TFLite cannot load"),
    ("onnxruntime", ".onnx", "ONNX Runtime cannot load"),
    ("pytorch-mobile", ".ptl", "PyTorch cannot load"),
])
@pytest.mark.slow
def test_corrupt_model_file_fails_with_one_line(run_aiotbench, tmp_path, shared, framework, suffix, message):
    bad = tmp_path / f"corrupt{suffix}"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    entry = float_entry("bad", framework, bad, 128) if framework != "tflite" else tflite_entry("bad", bad, 128)
    run = run_aiotbench("--aiotbench-images=2", catalogs=[write_catalog(tmp_path / "c.toml", [entry])],
                        dataset=IMAGENET_500)
    assert run.returncode == 1
    assert message in run.stdout and "Traceback" not in run.stdout
    case = run.report["cases"][0]
    assert case["status"] == "failed" and message in case["reason"]


@pytest.mark.slow
def test_wrong_input_shape_is_named(run_aiotbench, tmp_path, shared):
    catalog = write_catalog(tmp_path / "c.toml", [
        tflite_entry("wrong", SMALL, 160),  # the model takes 128x128
        float_entry("wrong_torch", "pytorch-mobile", TORCH_DIR / "mobilenet_v1_0.25_128.pt", 128, layout="NHWC"),
    ])
    run = run_aiotbench("--aiotbench-images=2", catalogs=[catalog], dataset=IMAGENET_500)
    assert run.returncode == 1
    assert "model input is 1x128x128x3 but the catalog says NHWC 160x160" in run.stdout
    assert run.case("wrong_torch-pytorch-mobile-fp32")["reason"].startswith(
        "mobilenet_v1_0.25_128.pt: first inference failed")


@pytest.mark.slow
def test_non_rgb_images_are_converted_and_a_broken_one_is_named(run_aiotbench, tmp_path, shared):
    sample = Image.open(IMAGENET_500 / "n02951358/ILSVRC2012_val_00000347.JPEG")
    root = tmp_path / "odd"
    root.mkdir()
    sample.convert("L").save(root / "grey.png")
    sample.convert("CMYK").save(root / "cmyk.jpg")
    sample.convert("RGBA").save(root / "rgba.png")
    sample.convert("RGB").save(root / "rgb.png")
    (root / "labels.csv").write_text("file,synset,class_index\n" + "".join(
        f"{n},n02951358,472\n" for n in ("grey.png", "cmyk.jpg", "rgba.png", "rgb.png")))
    catalog = write_catalog(tmp_path / "c.toml", [small_entry()])
    ok = run_aiotbench(catalogs=[catalog], dataset=root)
    assert ok.returncode == 0, ok.stdout
    assert ok.report["cases"][0]["images"] == 4

    # A valid header with a cut body passes the up-front check and fails its case when decoded, naming the file.
    (root / "truncated.jpg").write_bytes((IMAGENET_500 / "n02951358/ILSVRC2012_val_00000347.JPEG").read_bytes()[:2000])
    with open(root / "labels.csv", "a") as fh:
        fh.write("truncated.jpg,n02951358,472\n")
    truncated = run_aiotbench(catalogs=[catalog], dataset=root)
    assert truncated.returncode == 1
    assert f"cannot read image {root / 'truncated.jpg'}" in truncated.stdout and "Traceback" not in truncated.stdout
    # No image header at all: a usage error before any case, naming the file.
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with open(root / "labels.csv", "a") as fh:
        fh.write("broken.jpg,n02951358,472\n")
    broken = run_aiotbench(catalogs=[catalog], dataset=root)
    assert broken.returncode == 4
    assert "broken.jpg (not an image Pillow can decode)" in broken.stderr and "Traceback" not in broken.stderr


@pytest.mark.slow
def test_collect_only_k_and_m_select_cases(run_aiotbench, tmp_path, shared):
    catalog = write_catalog(tmp_path / "c.toml", [
        small_entry(),
        float_entry("mobilenet_v1_025", "onnxruntime", TORCH_DIR / "mobilenet_v1_0.25_128.onnx", 128),
        float_entry("mobilenet_v1_025", "pytorch-mobile", TORCH_DIR / "mobilenet_v1_0.25_128.pt", 128),
    ])
    every = run_aiotbench("--collect-only", "-q", catalogs=[catalog])
    assert "3 tests collected" in every.stdout
    assert "test_aiotbench[mobilenet_v1_025-tflite-int8]" in every.stdout
    by_marker = run_aiotbench("--collect-only", "-q", "-m", "fp32 and not onnxruntime", catalogs=[catalog])
    assert "mobilenet_v1_025-pytorch-mobile-fp32" in by_marker.stdout and "1/3 tests collected" in by_marker.stdout
    by_keyword = run_aiotbench("--collect-only", "-q", "-k", "tflite", catalogs=[catalog])
    assert "1/3 tests collected" in by_keyword.stdout
    by_dash_marker = run_aiotbench("--collect-only", "-q", "-m", "pytorch-mobile", catalogs=[catalog])
    assert "1/3 tests collected" in by_dash_marker.stdout


@pytest.mark.slow
def test_second_run_hits_the_cache_and_a_changed_image_is_not_stale(run_aiotbench, tmp_path, small_catalog):
    data = labeled_dataset(tmp_path / "data", 6, copy=True)
    first = run_aiotbench(catalogs=[small_catalog], dataset=data)
    assert first.report["settings"]["cache"] == {**first.report["settings"]["cache"], "hits": 0, "misses": 6}
    second = run_aiotbench(catalogs=[small_catalog], dataset=data)
    assert second.report["settings"]["cache"]["hits"] == 6 and second.report["settings"]["cache"]["misses"] == 0
    assert second.report["cases"][0]["per_image"]["top5"] == first.report["cases"][0]["per_image"]["top5"]
    # Replace one image's content under the same name: its crop is rebuilt, the fingerprint changes.
    victim = data / (data / "labels.csv").read_text().splitlines()[1].split(",")[0]
    Image.open(victim).transpose(Image.FLIP_TOP_BOTTOM).save(victim, format="JPEG")
    third = run_aiotbench(catalogs=[small_catalog], dataset=data)
    assert third.report["settings"]["cache"]["hits"] == 5 and third.report["settings"]["cache"]["misses"] == 1
    assert third.report["dataset"]["fingerprint"] != second.report["dataset"]["fingerprint"]


@pytest.mark.slow
def test_without_dataset_synthetic_images_give_latency_and_no_accuracy(run_aiotbench, shared, tmp_path):
    catalog = write_catalog(tmp_path / "c.toml", [small_entry(min_top1=0.99)])
    run = run_aiotbench("--aiotbench-images=12", catalogs=[catalog])
    assert run.returncode == 0, run.stdout  # no accuracy asserted on synthetic images
    case = run.report["cases"][0]
    assert case["top1"] is None and case["vips"] is None and case["latency_ms"]["mean"] > 0 and case["images"] == 12
    assert run.report["dataset"]["kind"] == "synthetic" and run.report["score"]["partial"]
    assert "Accuracy n/a: no dataset configured" in run.stdout and "n/a" in run.stdout


@pytest.mark.slow
def test_interrupt_keeps_results_already_measured(run_aiotbench, tmp_path, shared):
    catalog = write_catalog(tmp_path / "c.toml", [
        small_entry(), tflite_entry("mobilenet_v1_05", TFLITE_DIR / "mobilenet_v1_0.5_160_quant.tflite", 160)])
    (tmp_path / "conftest.py").write_text(dedent("""
        def pytest_aiotbench_case_result(config, result):
            raise KeyboardInterrupt  # as if Ctrl-C came right after the first case
    """))
    run = run_aiotbench("--aiotbench-images=4", catalogs=[catalog], dataset=IMAGENET_500)
    assert run.returncode == 2  # pytest's "interrupted"
    cases = run.report["cases"]
    assert [c["id"] for c in cases] == ["mobilenet_v1_025-tflite-int8"] and cases[0]["top1"] is not None
    assert run.report["finished"] is False  # the case it never reached is not in it: a compare refuses it as NEW


def test_framework_added_through_the_entry_point_runs(run_aiotbench, tmp_path, shared):
    """A third-party package adds a framework by implementing prepare()/infer() and registering it."""
    pkg = tmp_path / "site"
    (pkg / "nearest_fw").mkdir(parents=True)
    (pkg / "nearest_fw" / "__init__.py").write_text(dedent("""
        import numpy as np
        from pytest_aiotbench.frameworks.base import TensorSpec

        class Session:
            def __init__(self, weights):
                self.w = weights
                self.input = TensorSpec((1, 8, 8, 3), np.dtype(np.float32))
                self.info = {"runtime": "numpy-linear"}
            def infer(self, x):
                return x.reshape(-1) @ self.w
            def close(self):
                pass

        class NumpyLinear:
            name = "numpy-linear"
            requirement = "nearest-fw"
            def prepare(self, model_file, options):
                return Session(np.load(model_file))
    """))
    dist = pkg / "nearest_fw-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: nearest-fw\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[aiotbench.frameworks]\nnumpy-linear = nearest_fw:NumpyLinear\n")
    weights = np.random.default_rng(1).standard_normal((8 * 8 * 3, 1000)).astype(np.float32)
    np.save(tmp_path / "linear.npy", weights)
    catalog = write_catalog(tmp_path / "c.toml", [{
        "name": "linear", "framework": "numpy-linear", "quant": "fp32", "file": str(tmp_path / "linear.npy"),
        "input_size": 8, "resize": 0, "num_classes": 1000}])
    run = run_aiotbench(catalogs=[catalog], dataset=labeled_dataset(tmp_path / "data", 5, copy=True), env={"PYTHONPATH": str(pkg)})
    assert run.returncode == 0, run.stdout + run.stderr
    case = run.case("linear-numpy-linear-fp32")
    assert case["images"] == 5 and case["runtime"]["runtime"] == "numpy-linear"
    assert case["top1"] is not None


@pytest.mark.slow
def test_unknown_framework_is_a_usage_error_at_collection_naming_the_registered_ones(run_aiotbench, tmp_path,
                                                                                      shared):
    catalog = write_catalog(tmp_path / "c.toml", [small_entry(framework="caffe2")])
    for args in (["--collect-only"], ["--aiotbench-images=2"]):
        run = run_aiotbench(*args, catalogs=[catalog], dataset=IMAGENET_500)
        assert run.returncode == 4, run.stdout + run.stderr
        assert (f"{catalog}: model 'mobilenet_v1_025': unknown framework 'caffe2'; "
                "registered: executorch, mnn, ncnn, onnxruntime, openvino, pytorch-mobile, tflite") in run.stderr
        assert "Traceback" not in run.stderr + run.stdout


def test_installed_plugin_runs_cases_from_any_directory(run_aiotbench, tmp_path, small_catalog):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = run_aiotbench("--collect-only", "-q", catalogs=[small_catalog], cwd=elsewhere)
    assert "test_aiotbench[mobilenet_v1_025-tflite-int8]" in run.stdout and "1 test collected" in run.stdout


@pytest.mark.slow
def test_plain_pytest_in_the_repo_collects_no_benchmark_case():
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=repo, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "test_aiotbench[" not in proc.stdout and "tests/plugin/test_cases.py" in proc.stdout


@pytest.mark.slow
def test_bad_catalog_and_dataset_are_usage_errors(run_aiotbench, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[model]]\nname = "x"\nframework = "tflite"\n')
    run = run_aiotbench(catalogs=[bad])
    assert run.returncode == 4 and "missing required key 'quant'" in run.stderr
    good = write_catalog(tmp_path / "good.toml", [small_entry()])
    missing = run_aiotbench(catalogs=[good], dataset=tmp_path / "no-such-dir")
    assert missing.returncode == 4 and "dataset folder not found" in missing.stderr


@pytest.mark.slow
def test_every_setting_works_as_an_ini_key(run_aiotbench, tmp_path, small_catalog):
    (tmp_path / "pytest.ini").write_text(dedent(f"""
        [pytest]
        aiotbench_catalog = {small_catalog}
        aiotbench_dataset = {IMAGENET_500}
        aiotbench_images = 3
        aiotbench_threads = 2
        aiotbench_warmup = 1
        aiotbench_min_top1 = 0.0
    """))
    run = run_aiotbench()
    assert run.returncode == 0, run.stdout
    report = run.report
    assert report["settings"]["threads"] == 2 and report["settings"]["warmup"] == 1
    assert report["dataset"]["images"] == 3 and report["cases"][0]["runtime"]["threads"] == 2
    assert report["cases"][0]["min_top1"] == 0.0


@pytest.mark.slow
def test_no_framework_is_imported_until_a_case_needs_it(run_aiotbench, tmp_path, small_catalog):
    (tmp_path / "conftest.py").write_text(dedent("""
        import sys
        def pytest_sessionfinish(session):
            heavy = sorted(m for m in ("torch", "onnxruntime", "ai_edge_litert", "tflite_runtime", "matplotlib",
                                       "adbutils", "paramiko") if m in sys.modules)
            print("HEAVY-MODULES:", ",".join(heavy) or "none")
    """))
    collected = run_aiotbench("--collect-only", "-q", "-s", catalogs=[small_catalog])
    assert "HEAVY-MODULES: none" in collected.stdout
    ran = run_aiotbench("-s", "--aiotbench-images=2", catalogs=[small_catalog], dataset=IMAGENET_500)
    assert "HEAVY-MODULES: ai_edge_litert" in ran.stdout  # only the runtime the case used
