"""Clocks. ``BenchmarkTiming`` times through pytest-benchmark (pedantic: one round per image, iterations=1,
warmup rounds excluded) so its stats, tables, JSON and comparisons carry the per-image latencies.
``PerfCounterTiming`` is the same loop on a bare perf_counter, for devices and for runs where pytest-benchmark is
disabled (``--benchmark-disable``, xdist).

Both take a /proc snapshot of the machine before and after the timed images (``load``: what other processes did
meanwhile, for the case's validity) and report progress between images, outside the timed interval."""

from __future__ import annotations

from time import perf_counter
from typing import Callable, Sequence

import numpy as np

from . import validity


def _no_progress(done: int, total: int) -> None:
    pass


def _warmup_then_images(inputs: Sequence[np.ndarray], warmup: int):
    """Arguments for warmup rounds (cycling over the inputs) followed by one round per image, in order."""
    n = len(inputs)
    for i in range(warmup):
        yield inputs[i % n]
    yield from inputs


class PerfCounterTiming:
    def __init__(self, progress: Callable[[int, int], None] = _no_progress, threads: int = 1) -> None:
        self.latencies_s: list[float] = []
        self.progress, self.threads = progress, threads
        self.load: dict | None = None

    def time_each(self, infer: Callable, inputs: Sequence[np.ndarray], warmup: int):
        for i in range(warmup):
            infer(inputs[i % len(inputs)])
        outputs, latencies = [], []
        clock, progress, total = perf_counter, self.progress, len(inputs)
        before = validity.snapshot()
        for x in inputs:
            start = clock()
            out = infer(x)
            latencies.append(clock() - start)
            outputs.append(out)
            progress(len(latencies), total)
        self.load = validity.machine_load(before, validity.snapshot(), self.threads)
        self.latencies_s = latencies
        return outputs, latencies

    def record(self, latencies_s: Sequence[float]) -> None:
        self.latencies_s = list(latencies_s)


class BenchmarkTiming:
    def __init__(self, benchmark, progress: Callable[[int, int], None] = _no_progress, threads: int = 1) -> None:
        self.benchmark = benchmark
        self.progress, self.threads = progress, threads
        self.load: dict | None = None

    def time_each(self, infer: Callable, inputs: Sequence[np.ndarray], warmup: int):
        if self.benchmark.disabled:
            fallback = PerfCounterTiming(self.progress, self.threads)
            outputs, latencies = fallback.time_each(infer, inputs, warmup)
            self.load = fallback.load
            return outputs, latencies
        args = _warmup_then_images(inputs, warmup)
        outputs: list[np.ndarray] = []
        append = outputs.append
        progress, total = self.progress, len(inputs)

        def setup():  # untimed: hands the next image to the next round (and reports how far the case is)
            progress(len(outputs) - warmup, total)
            return (next(args),), {}

        def infer_one(x):  # timed: the inference and one list append
            append(infer(x))

        before = validity.snapshot()
        self.benchmark.pedantic(infer_one, setup=setup, rounds=len(inputs), warmup_rounds=warmup, iterations=1)
        self.load = validity.machine_load(before, validity.snapshot(), self.threads)
        return outputs[warmup:], list(self.benchmark.stats.stats.data)

    def record(self, latencies_s: Sequence[float]) -> None:
        """Feed latencies measured elsewhere (on a device) into pytest-benchmark's stats."""
        self.benchmark._mode = self.benchmark._mode or "record(...)"  # used: no "fixture not used" warning
        if self.benchmark.disabled:
            return
        # pytest-benchmark (5.3) has no public way to add rounds timed elsewhere: pedantic() always times its own
        # call. _make_stats(iterations) is the one private call, kept here alone; tests/test_timing_record.py
        # checks it against the installed pytest-benchmark (stats, JSON), so an upgrade that breaks it fails a test.
        stats = self.benchmark._make_stats(1)
        for seconds in latencies_s:
            stats.update(seconds)
