"""Where a case runs. A target takes a job (model file + the dataset's cropped uint8 pixels) and returns a
measurement: per-image top-k and per-image latency. Decoding and cropping happened before, on the host; the
cheap conversion to the model's input tensor needs the prepared session, so it happens where the model runs
(``execute`` in targets/host.py, shared by the on-device runner), and before any timing. Scoring happens after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from ..frameworks.base import PrepareOptions
from ..preprocess import PreprocessSpec


class TargetError(Exception):
    """The target could not run the job (device gone, transport frozen, runner crashed...). One clear line."""


@dataclass(kw_only=True)
class Job:
    case_id: str
    framework: str
    model_file: Path
    options: PrepareOptions
    pixels: Any  # (images, S, S, 3) uint8 RGB crops in dataset order: an array, or a stream.PixelStore on disk
    preprocess: PreprocessSpec  # how pixels become the model's input (colour, layout, normalization)
    warmup: int
    num_classes: int  # outputs the model must produce (checked on the first inference)
    background: bool  # output 0 is background: dropped before ranking
    top_k: int = 5
    quant: str | None = None  # the catalog's label, checked against the model's tensor types (None: not checked)
    chunk: int | None = None  # images converted at once (None: stream.chunk_images); a device job sets it
    memory: bool = True  # the host measures the case's memory in a fresh process (--aiotbench-memory off: not)


@dataclass
class Measurement:
    topk: np.ndarray  # (images, k) class indices, background already dropped
    latencies_s: list[float]  # one per image, warmup excluded
    prepare_s: float
    first_s: float
    session: dict[str, Any] = field(default_factory=dict)  # runtime facts: version, delegate, threads
    timed_on: str = "host"  # where the latencies were measured
    memory: dict[str, Any] | None = None  # run.memory.figures(): resident MB added by prepare, peak while inferring


class Target(Protocol):
    """Built from a ``--device`` spec without touching the device; connects on first use (``describe``/``run``)
    and lets go of the device in ``close`` (which never raises; a later use connects again)."""

    name: str

    def describe(self) -> dict[str, Any]:
        """Facts for the report: model, ABI, OS, CPU, cores, governor... whatever is readable."""

    def run(self, job: Job, timing: "Timing") -> Measurement: ...

    def close(self) -> None: ...


# Targets holding a connection in this process (controller or xdist worker), so the session can close them all.
_open_targets: dict[int, Target] = {}


def register_open(target: Target) -> None:
    _open_targets[id(target)] = target


def unregister_open(target: Target) -> None:
    _open_targets.pop(id(target), None)


def close_all() -> None:
    """Close every connected target of this process (session end). One device failing to close stops no other."""
    for target in list(_open_targets.values()):
        try:
            target.close()
        except Exception:  # a link already gone: nothing left to release
            pass
        unregister_open(target)


class Timing(Protocol):
    """The harness's clock (pytest-benchmark underneath). Host targets time through it; remote targets time on
    the device and hand their per-image latencies to ``record`` so the stats, tables and comparisons are the same."""

    def time_each(self, infer, inputs: Sequence[np.ndarray], warmup: int) -> tuple[list[np.ndarray], list[float]]: ...

    def record(self, latencies_s: Sequence[float]) -> None: ...
