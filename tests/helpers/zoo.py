"""Model-zoo test helpers: whether the zoo extra is installed, the ``aiotbench zoo`` CLI in a subprocess, and the
ncnn/MNN/OpenVINO artifacts the device and board tests run."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.shared import IMAGENET_500 as EVAL_SET, REPO, SAMPLES, TORCH_DIR  # noqa: F401 (re-exported)

ZOO_DEPS = ("torch", "torchvision", "litert_torch", "ai_edge_quantizer", "onnx", "onnxruntime", "ai_edge_litert")


def missing_zoo_deps() -> list[str]:
    return [m for m in ZOO_DEPS if importlib.util.find_spec(m) is None]


needs_zoo = pytest.mark.skipif(bool(missing_zoo_deps()), reason=f"zoo extra not installed (missing "
                               f"{', '.join(missing_zoo_deps())}): pip install -e '.[zoo]' 'torch==2.13.0'")


def zoo_cli(*args: str, env: dict | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    """``aiotbench zoo ARGS`` in a subprocess; offline (AIOTBENCH_OFFLINE=1) unless ``env`` says otherwise: tests
    never reach the internet (the download tests point --weights-mirror at a loopback server)."""
    full_env = {**os.environ, "AIOTBENCH_OFFLINE": "1", **(env or {})}
    full_env["PYTHONPATH"] = str(REPO) + (os.pathsep + full_env["PYTHONPATH"] if full_env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-m", "pytest_aiotbench", "zoo", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=str(REPO))


# The shared MobileNetV1-0.25 (128 px): the quickest under qemu (see tests/targets/test_arm_board_frameworks.py).
ENGINE_MODEL = "mnv1"
ENGINE_SOURCE = TORCH_DIR / "mobilenet_v1_0.25_128.pt"
# What a missing runtime's message must name (pyproject's extras).
ENGINE_PINS = {"ncnn": "ncnn==1.0.20261020", "mnn": "MNN==3.6.1", "openvino": "openvino==2026.4.1"}


def has_module(module: str) -> bool:
    """Whether ``module`` is installed, without importing it (a dotted name imports only its parent packages)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def build_engine_zoo(tmp_path_factory, engines: tuple[str, ...]) -> Path:
    """The zoo's fp32 ``engines`` artifacts (ncnn .param + .bin via pnnx, MNN, OpenVINO .xml + .bin) of the shared
    TorchScript, raw-pixel normalization; the zoo's out folder (catalog.toml, ENGINE_MODEL/). Skips without the
    engines or the shared data."""
    if not all(has_module(m) for m in ("pnnx", "ncnn", "MNN", "openvino", "torch")):
        pytest.skip("pip install -e '.[zoo,ncnn,mnn,openvino]'")
    if not (ENGINE_SOURCE.is_file() and EVAL_SET.is_dir()):
        pytest.skip(f"shared data not found: {ENGINE_SOURCE} (set AIOTBENCH_SHARED)")
    out = tmp_path_factory.mktemp("zoo") / "out"
    r = zoo_cli("build", "--out", str(out), "--from-torchscript", str(ENGINE_SOURCE), "--name", ENGINE_MODEL,
                "--input-size", "128", "--mean", "127.5", "--std", "127.5", "--num-classes", "1001", "--background",
                "--variants", ",".join(engines), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return out
