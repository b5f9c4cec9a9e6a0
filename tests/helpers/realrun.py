"""Real benchmark runs for the compare/rank/report tests: ``pytest --aiotbench`` over the shared MobileNetV1
models and the first images of the shared ImageNet sample (found through ``AIOTBENCH_SHARED``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import catalogs
from tests.helpers.catalogs import tflite_entry
from tests.helpers.shared import REPO, SHARED

MODELS = SHARED / "models" / "tflite"
DATASET = SHARED / "data" / "imagenet-val-500"
REAL_IMAGES = "100"
MOBILENET_V1 = {"0.25_128": (128, 146), "0.5_160": (160, 182)}


requires_real_run = pytest.mark.skipif(
    not (DATASET.is_dir() and all((MODELS / f"mobilenet_v1_{v}_quant.tflite").exists() for v in MOBILENET_V1)),
    reason=f"needs the shared models/dataset under {SHARED} (set AIOTBENCH_SHARED)")


def write_catalog(path: Path, variant: str) -> Path:
    """One MobileNetV1 case, always named ``mobilenet_v1``, so two variants compare as the same case."""
    size, resize = MOBILENET_V1[variant]
    return catalogs.write_catalog(path, [tflite_entry("mobilenet_v1", MODELS / f"mobilenet_v1_{variant}_quant.tflite",
                                                      size, resize=resize, min_top1=0.3)])


def run_benchmark(workdir: Path, variant: str, name: str, *extra: str) -> subprocess.CompletedProcess:
    """``pytest --aiotbench`` in a subprocess over the first 100 shared images; JSON into workdir/name.json."""
    catalog = write_catalog(workdir / f"{name}.toml", variant)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        # `aiotbench`: the cases only (from the checkout, `pytest --aiotbench` would also run the project's tests)
        # Path values written `--opt=value`: a two-word path outside the checkout would move pytest's ini (exit 4).
        [sys.executable, "-m", "pytest", "aiotbench", "--aiotbench", "--aiotbench-no-builtin",
         f"--aiotbench-catalog={catalog}", f"--aiotbench-dataset={DATASET}", "--aiotbench-images", REAL_IMAGES,
         f"--aiotbench-json={workdir / f'{name}.json'}", "-p", "no:cacheprovider", "-q", *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def make_real_runs(workdir: Path) -> Path:
    """Reports of real runs in ``workdir``: MobileNetV1 0.5_160 (base.json), a rerun of it (rerun.json) and the
    worse 0.25_128 (worse.json)."""
    for variant, name in (("0.5_160", "base"), ("0.5_160", "rerun"), ("0.25_128", "worse")):
        result = run_benchmark(workdir, variant, name)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir


def one_usage_error(run: subprocess.CompletedProcess, *needles: str) -> str:
    """A pytest run refused at start: exit 4, no traceback, exactly one ``ERROR`` line on stderr, holding
    every one of ``needles``. Returns that line."""
    out = run.stdout + run.stderr
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, out[-3000:]
    assert "Traceback" not in out
    errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, out[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]
