"""ExecuTorch (issue 3): the ``executorch`` framework plugin (.pte through ``executorch.runtime``) and the zoo's
optional ``pte`` variant (XNNPACK delegate, from the same source weights as the other artifacts).

Tests that need the runtime skip when executorch is not importable; the "not installed" behaviours are tested in
any interpreter, with a blocker package that makes ``import executorch...`` fail as on a machine without it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.catalogs import float_entry, write_catalog
from tests.helpers.shared import IMAGENET_500, TORCH_DIR
from tests.helpers.zoo import has_module

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[2]
TS_MODEL = TORCH_DIR / "mobilenet_v2_1.0_224.pt"
TOP1 = 0.792  # the real MobileNetV2 (TF-slim port) on imagenet-val-500, as .ptl/.onnx/TFLite fp32
PIP_FIX = "pip install 'pytest-aiotbench[executorch]'"


needs_executorch = pytest.mark.skipif(not has_module("executorch.runtime"),
                                      reason="executorch not installed: pip install -e '.[executorch]' 'torch==2.13.0'")


def zoo_build(out: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (full_env.get("PYTHONPATH"), str(REPO)) if p)
    return subprocess.run(
        [sys.executable, "-m", "pytest_aiotbench", "zoo", "build", "--out", str(out), "--from-torchscript",
         str(TS_MODEL), "--name", "mobilenet_v2_tf", "--input-size", "224", "--mean", "127.5", "--std", "127.5",
         "--num-classes", "1001", "--background", *extra],
        capture_output=True, text=True, timeout=900, env=full_env, cwd=str(REPO))


def _blocker(tmp_path: Path) -> Path:
    """A folder that, first on PYTHONPATH, makes every ``import executorch...`` raise ImportError."""
    blocker = tmp_path / "blocker"
    (blocker / "executorch").mkdir(parents=True, exist_ok=True)
    (blocker / "executorch" / "__init__.py").write_text("raise ImportError('No module named executorch')\n")
    return blocker


@pytest.fixture(scope="module")
def pte_zoo(tmp_path_factory):
    if not has_module("executorch.runtime"):
        pytest.skip("executorch not installed: pip install -e '.[executorch]' 'torch==2.13.0'")
    if not (TS_MODEL.is_file() and IMAGENET_500.is_dir()):
        pytest.skip(f"shared data not found: {TS_MODEL} (set AIOTBENCH_SHARED)")
    out = tmp_path_factory.mktemp("ptezoo") / "out"
    r = zoo_build(out, "--variants", "pte")
    assert r.returncode == 0, r.stderr[-4000:]
    return out, r


# ---------------------------------------------------------------------------------------------------------------
# with executorch


@needs_executorch
@pytest.mark.slow
def test_pte_export_is_recorded_in_the_manifest(pte_zoo):
    out, r = pte_zoo
    assert "mobilenet_v2_tf pte" in r.stderr and "ok in" in r.stderr
    data = json.loads((out / "manifest.json").read_text())
    key = "mobilenet_v2_tf/mobilenet_v2_tf.pte"
    assert list(data["files"]) == [key]
    entry = data["files"][key]
    from pytest_aiotbench.inputs import manifest as mf

    assert entry["sha256"] == mf.file_sha256(out / key) and entry["size"] == (out / key).stat().st_size
    assert entry["framework"] == "executorch" and entry["quant"] == "fp32" and entry["layout"] == "NCHW"
    assert entry["tools"]["executorch"] and entry["tools"]["torch"].startswith("2.13.0")
    assert entry["weights"].startswith("torchscript:") and entry["source_sha256"] in entry["weights"]
    assert entry["export_seconds"] > 0 and entry["peak_memory_mb"] > 50
    details = entry["details"]
    assert details["delegate"] == "XNNPACK" and details["delegated_subgraphs"] >= 1
    assert details["max_abs_diff_vs_eager"] < 1e-3
    catalog = (out / "catalog.toml").read_text()
    assert 'framework = "executorch"' in catalog and 'file = "mobilenet_v2_tf/mobilenet_v2_tf.pte"' in catalog
    # incremental: a second build finds it up to date
    again = zoo_build(out, "--variants", "pte")
    assert again.returncode == 0 and "pte     mobilenet_v2_tf.pte: up to date" in again.stderr, again.stderr[-2000:]


@needs_executorch
@pytest.mark.slow
def test_pte_real_accuracy_through_the_plugin(pte_zoo, run_aiotbench):
    out, _ = pte_zoo
    run = run_aiotbench(catalogs=[out / "catalog.toml"], dataset=IMAGENET_500)
    assert run.returncode == 0, run.stdout[-3000:]
    case = run.case("mobilenet_v2_tf-executorch-fp32")
    assert case["status"] == "passed" and case["images"] == 500
    assert abs(case["top1"] - TOP1) <= 0.002, case["top1"]
    rt = case["runtime"]
    assert rt["runtime"] == "executorch" and rt["threads"] == 1 and "XnnpackBackend" in rt["backends_available"]


@needs_executorch
@pytest.mark.slow
def test_pte_threads_are_honored(pte_zoo, run_aiotbench):
    out, _ = pte_zoo
    run = run_aiotbench("--aiotbench-images=4", "--aiotbench-warmup=1", "--aiotbench-threads=2",
                        catalogs=[out / "catalog.toml"], dataset=IMAGENET_500)
    assert run.returncode == 0, run.stdout[-3000:]
    rt = run.case("mobilenet_v2_tf-executorch-fp32")["runtime"]
    assert rt["threads"] == 2 and rt["requested_threads"] == 2


@needs_executorch
@pytest.mark.slow
def test_corrupt_pte_fails_with_one_line(run_aiotbench, tmp_path, shared):
    bad = tmp_path / "corrupt.pte"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    entry = float_entry("bad", "executorch", bad, 224)
    run = run_aiotbench("--aiotbench-images=2", catalogs=[write_catalog(tmp_path / "c.toml", [entry])],
                        dataset=IMAGENET_500)
    assert run.returncode == 1
    assert "ExecuTorch cannot load" in run.stdout and "Traceback" not in run.stdout
    case = run.report["cases"][0]
    assert case["status"] == "failed" and "ExecuTorch cannot load" in case["reason"]
    assert "\n" not in case["reason"] and str(bad) in case["reason"]


# ---------------------------------------------------------------------------------------------------------------
# without executorch (any interpreter)


@pytest.mark.slow
def test_missing_executorch_skips_cases_with_pip_command(run_aiotbench, tmp_path, shared):
    model = tmp_path / "m.pte"
    model.write_bytes(b"not reached: the runtime is missing")
    catalog = write_catalog(tmp_path / "c.toml", [float_entry("m", "executorch", model, 224)])
    run = run_aiotbench("--aiotbench-images=2", "-rs", catalogs=[catalog], dataset=IMAGENET_500,
                        env={"PYTHONPATH": os.pathsep.join([str(_blocker(tmp_path)),
                                                            os.environ.get("PYTHONPATH", "")])})
    assert run.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, run.stdout[-3000:]  # skipped only: not green
    assert PIP_FIX in run.stdout
    case = run.case("m-executorch-fp32")
    assert case["status"] == "skipped" and PIP_FIX in case["reason"]


@pytest.mark.slow
def test_zoo_without_executorch_lists_pte_as_skipped_not_failed(tmp_path):
    if not TS_MODEL.is_file():
        pytest.skip(f"shared data not found: {TS_MODEL} (set AIOTBENCH_SHARED)")
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch not installed (the source step loads the TorchScript model)")
    out = tmp_path / "out"
    r = zoo_build(out, "--variants", "pte", env={"PYTHONPATH": str(_blocker(tmp_path))})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "mobilenet_v2_tf pte" in r.stderr and "skipped: executorch is not installed" in r.stderr
    assert PIP_FIX in r.stderr and "FAILED" not in r.stderr and "1 skipped (toolchain not installed)" in r.stderr
    data = json.loads((out / "manifest.json").read_text())
    assert data["files"] == {} and not (out / "mobilenet_v2_tf" / "mobilenet_v2_tf.pte").exists()
