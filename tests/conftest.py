"""Shared fixtures: the read-only shared folder (real models, real ImageNet images), catalogs written per test,
and a runner that drives the plugin the way users do: ``pytest --aiotbench ...`` in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_aiotbench.catalog import toml_value

SHARED = Path(os.environ.get("AIOTBENCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
IMAGENET_500 = SHARED / "data" / "imagenet-val-500"
TFLITE_DIR = SHARED / "models" / "tflite"
TORCH_DIR = SHARED / "models" / "torch"


@pytest.fixture(scope="session", autouse=True)
def _children_are_not_xdist_workers():
    """Nested ``pytest --aiotbench`` runs must not inherit this run's xdist worker variables: pytest-benchmark
    would take the child for an xdist worker and disable itself."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("PYTEST_XDIST")}
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def shared() -> Path:
    if not IMAGENET_500.is_dir():
        pytest.skip(f"shared data not found at {SHARED} (set AIOTBENCH_SHARED)")
    return SHARED


def tflite_entry(name: str, file: Path, size: int, **extra) -> dict:
    """A catalog entry for the Coral/TF-slim uint8 MobileNets in ../shared (raw pixels, 1001 outputs)."""
    entry = {"name": name, "framework": "tflite", "quant": "int8", "file": str(file), "input_size": size,
             "resize": round(size / 0.875), "layout": "NHWC", "mean": [127.5] * 3, "std": [127.5] * 3,
             "num_classes": 1001, "background": True}
    return {**entry, **extra}


def float_entry(name: str, framework: str, file: Path, size: int, **extra) -> dict:
    """A catalog entry for the float TorchScript/ONNX ports in ../shared (NCHW, (x-127.5)/127.5, 1001 logits)."""
    entry = {"name": name, "framework": framework, "quant": "fp32", "file": str(file), "input_size": size,
             "resize": round(size / 0.875), "layout": "NCHW", "mean": [127.5] * 3, "std": [127.5] * 3,
             "num_classes": 1001, "background": True}
    return {**entry, **extra}


def write_catalog(path: Path, entries: list[dict]) -> Path:
    lines = []
    for entry in entries:
        lines.append("[[model]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in entry.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    json_path: Path

    @property
    def report(self) -> dict:
        return json.loads(self.json_path.read_text())

    def case(self, case_id: str) -> dict:
        return next(c for c in self.report["cases"] if c["id"] == case_id)


@pytest.fixture
def run_aiotbench(tmp_path):
    """Run ``pytest --aiotbench`` in a subprocess from an empty folder, with only the given catalog(s)."""

    def run(*args: str, catalogs=(), dataset: Path | None = None, cwd: Path | None = None, env=None,
            timeout: float = 600) -> Run:
        json_path = tmp_path / f"report-{len(list(tmp_path.glob('report-*.json')))}.json"
        cmd = [sys.executable, "-m", "pytest", "--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
               f"--aiotbench-json={json_path}", f"--aiotbench-cache={tmp_path / 'pixel-cache'}"]
        cmd += [f"--aiotbench-catalog={c}" for c in catalogs]
        if dataset is not None:
            cmd.append(f"--aiotbench-dataset={dataset}")
        cmd += list(args)
        proc = subprocess.run(cmd, cwd=cwd or tmp_path, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
        return Run(proc.returncode, proc.stdout, proc.stderr, json_path)

    return run


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()
