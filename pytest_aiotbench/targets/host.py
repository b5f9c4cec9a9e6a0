"""The host target: the case runs in this process. ``execute`` is also what the on-device runner calls, so a job
means the same thing wherever it runs."""

from __future__ import annotations

import platform
from time import perf_counter

import numpy as np

from ..frameworks import coverage, get_framework
from ..frameworks.base import one_line
from ..preprocess import to_model_inputs
from ..score import topk
from .base import Job, Measurement, Timing


class InferenceError(Exception):
    """The model ran but its first answer is unusable (exception inside the runtime, wrong output size)."""


def execute(job: Job, timing: Timing, where: str = "host", framework=None) -> Measurement:
    """Prepare, convert the pixels to the model's input, check the first answer, then time every image.
    ``framework`` defaults to the registered one (a device runner, which has no entry points, passes its own)."""
    framework = framework or get_framework(job.framework)
    start = perf_counter()
    session = framework.prepare(str(job.model_file), job.options)
    prepare_s = perf_counter() - start
    try:
        inputs = to_model_inputs(job.pixels, job.preprocess, session.input, job.model_file.name)
        start = perf_counter()
        try:
            first = session.infer(inputs[0])
        except Exception as exc:  # the runtime's own error types: report one line, not its traceback
            raise InferenceError(f"{job.model_file.name}: first inference failed: {one_line(exc)}") from None
        first_s = perf_counter() - start
        if np.asarray(first).size != job.num_classes:
            raise InferenceError(f"{job.model_file.name}: model outputs {np.asarray(first).size} scores, "
                                 f"the catalog says num_classes = {job.num_classes}")
        outputs, latencies = timing.time_each(session.infer, inputs, job.warmup)
        ranked = np.stack([topk(o, job.top_k, job.background) for o in outputs])
        info = dict(session.info)
        if hasattr(session, "coverage"):  # after timing: inspecting the model never counts as its latency
            info["coverage"] = coverage.collect(session.coverage)
        return Measurement(ranked, list(latencies), prepare_s, first_s, info, timed_on=where)
    finally:
        session.close()


class HostTarget:
    name = "host"

    def describe(self) -> dict:
        from ..environment import machine_facts

        return {"target": "host", "name": platform.node(), **machine_facts()}

    def run(self, job: Job, timing: Timing) -> Measurement:
        return execute(job, timing)
