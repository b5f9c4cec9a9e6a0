"""Real jobs for device tests: a shared TFLite model and the first N images of shared/data/imagenet-val-500,
cropped exactly as the reference evaluation does, plus the in-process answer to compare a device against."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from pytest_aiotbench.frameworks.base import PrepareOptions
from pytest_aiotbench.inputs.preprocess import PreprocessSpec, crop_pixels
from pytest_aiotbench.run.job import Job

from tests.helpers.shared import REPO, SHARED  # noqa: F401 (REPO re-exported)

MODEL_SIZES = {"mobilenet_v1_0.25_128_quant.tflite": 128, "mobilenet_v1_0.5_160_quant.tflite": 160}


def shared_dir() -> Path:
    return SHARED


def shared_model(name: str = "mobilenet_v1_0.25_128_quant.tflite") -> Path:
    path = shared_dir() / "models" / "tflite" / name
    if not path.exists():
        pytest.skip(f"shared model {path} not found (set AIOTBENCH_SHARED)")
    return path


def shared_images(n: int) -> list[tuple[Path, int]]:
    root = shared_dir() / "data" / "imagenet-val-500"
    labels = root / "labels.csv"
    if not labels.exists():
        pytest.skip(f"shared dataset {root} not found (set AIOTBENCH_SHARED)")
    with open(labels, newline="") as fh:
        rows = list(csv.DictReader(fh))[:n]
    return [(root / r["file"], int(r["class_index"])) for r in rows]


def make_job(model: Path, images: int = 16, size: int = 128, warmup: int = 2, case_id: str = "device-test",
             threads: int = 1) -> Job:
    # The shared uint8 MobileNets take (x - 127.5) / 127.5 in their own quantization, i.e. raw pixels: with
    # another mean/std every input saturates and all images get the same few classes (garbage on both sides).
    spec = PreprocessSpec(input_size=size, resize=round(size / 0.875), mean=(127.5,) * 3, std=(127.5,) * 3)
    pixels = np.stack([crop_pixels(p.read_bytes(), spec, p.name) for p, _ in shared_images(images)])
    return Job(case_id=case_id, framework="tflite", model_file=Path(model), options=PrepareOptions(threads=threads),
               pixels=pixels, preprocess=spec, warmup=warmup, num_classes=1001, background=True, top_k=5)


def host_topk(job: Job) -> np.ndarray:
    """The same job in this process (the host target), the reference for every device."""
    from pytest_aiotbench.targets.host import HostTarget
    from pytest_aiotbench.run.timing import PerfCounterTiming

    return HostTarget().run(job, PerfCounterTiming()).topk


class RecordingTiming:
    """A Timing that only records what a remote target hands it (as pytest-benchmark's would)."""

    def __init__(self):
        self.recorded: list[float] | None = None

    def time_each(self, infer, inputs, warmup):  # a remote target must never time on the host
        raise AssertionError("remote targets must not time on the host")

    def record(self, latencies_s):
        self.recorded = list(latencies_s)
