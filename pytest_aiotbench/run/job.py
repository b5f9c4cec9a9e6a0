"""What a target is given and what it gives back: a ``Job`` (model file + the dataset's cropped uint8 pixels, and
how they become the model's input) and a ``Measurement`` (per-image top-k and latency, prepare and first-inference
time, runtime facts). ``Timing`` is the clock a target times ``infer()`` with. Decoding and cropping happened before,
on the host; the cheap conversion to the model's input tensor needs the prepared session, so it happens where the
model runs (``targets/host.py``'s ``execute``, shared by the on-device runner), and before any timing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from ..frameworks.base import PrepareOptions
from ..inputs.preprocess import PreprocessSpec


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
    # How the images are issued (run/offline.py): "single-stream" (one at a time, each timed) or "offline" (all at
    # once: ``sessions`` concurrent sessions, None = as many as the cores hold, each taking batches of ``batch``).
    scenario: str = "single-stream"
    sessions: int | None = None
    batch: int = 1
    cooldown: dict | None = None  # wait before the case (run.conditions.parse_cooldown), where it runs
    sustain_s: float | None = None  # sustained mode: cycle the dataset this long (run.timing.time_sustained)
    memory: bool = True  # the host measures the case's memory in a fresh process (--aiotbench-memory off: not)


@dataclass(frozen=True)
class RunSettings:
    """How a run executes its cases (the run's own options, the same for each case); what varies per case is in
    the Job."""
    threads: int = 1
    warmup: int = 10
    scenario: str = "single-stream"  # or "offline" (run/offline.py): every image at once
    sessions: int | None = None  # offline: concurrent sessions (None: as many as the cores hold)
    batch: int = 1  # offline: images per request, where the model allows
    sustain_s: float | None = None  # sustained mode: cycle the dataset this long (run/conditions.py)
    memory: bool = True  # the host measures each case's memory in a fresh process (run/memory.py)


@dataclass
class Measurement:
    topk: np.ndarray  # (images, k) class indices, background already dropped
    latencies_s: list[float]  # one per image, warmup excluded
    prepare_s: float
    first_s: float
    session: dict[str, Any] = field(default_factory=dict)  # runtime facts: version, delegate, threads
    timed_on: str = "host"  # where the latencies were measured
    offline: dict[str, Any] | None = None  # the offline scenario's throughput (no per-image latencies then)
    conditions: dict | None = None  # clocks and temperatures during the case, where it ran (run.conditions)
    sustained: dict | None = None  # sustained mode's per-window curve
    memory: dict[str, Any] | None = None  # run.memory.figures(): resident MB added by prepare, peak while inferring


class Timing(Protocol):
    """The harness's clock (pytest-benchmark underneath). Host targets time through it; remote targets time on
    the device and hand their per-image latencies to ``record`` so the stats, tables and comparisons are the same."""

    def time_each(self, infer, inputs: Sequence[np.ndarray], warmup: int) -> tuple[list[np.ndarray], list[float]]: ...

    def record(self, latencies_s: Sequence[float]) -> None: ...


def topk(scores: np.ndarray, k: int = 5, background: bool = False) -> np.ndarray:
    """Indices of the k best classes, best first. Ties go to the lower class index (stable descending sort, as
    np.argmax does): with uint8 outputs ties are common and the rule moves top-1 by whole points.
    With ``background`` the model's output 0 is dropped, so class k is output k+1."""
    flat = np.asarray(scores).reshape(-1)
    if background:
        flat = flat[1:]
    # Negate in float64: exact for every int/float32 score, and no unsigned wrap-around.
    return np.argsort(-flat.astype(np.float64), kind="stable")[:k]
