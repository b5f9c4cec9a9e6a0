"""Model-zoo test helpers: whether the zoo extra is installed, and the ``aiotbench zoo`` CLI in a subprocess."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.helpers.shared import IMAGENET_500 as EVAL_SET, REPO, SAMPLES  # noqa: F401 (re-exported)

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
