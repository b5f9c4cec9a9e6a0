"""Clocks. ``BenchmarkTiming`` times through pytest-benchmark (pedantic: one round per image, iterations=1,
warmup rounds excluded) so its stats, tables, JSON and comparisons carry the per-image latencies.
``PerfCounterTiming`` is the same loop on a bare perf_counter, for devices and for runs where pytest-benchmark is
disabled (``--benchmark-disable``, xdist).

Both take a /proc snapshot of the machine before and after the timed images (``load``: what other processes did
meanwhile, for the case's validity), report progress and sample the device's conditions (``sampler``: clocks and
temperatures, run.conditions) between images, outside the timed interval. ``time_sustained`` is sustained mode's
loop: the dataset cycled for a given duration."""

from __future__ import annotations

from time import perf_counter
from typing import Callable, Sequence

import numpy as np

from ..inputs.pixels import Keep, first_chunk, iter_chunks
from . import load
from .conditions import Sampler, windows

SUSTAIN_WINDOWS = 10  # sustained mode's curve: the duration in this many equal time windows


def _no_progress(done: int, total: int) -> None:
    pass


def _no_sample() -> None:
    pass


def _warm_up(infer: Callable, inputs: Sequence[np.ndarray], warmup: int) -> None:
    """The untimed warmup calls, cycling over the first chunk (held only while warming up)."""
    first = first_chunk(inputs)
    for i in range(warmup):
        infer(first[i % len(first)])


def _rounds(inputs: Sequence[np.ndarray], warmup: int, outputs: list, kept: list, keep: Keep):
    """Arguments for warmup rounds (cycling over the first chunk) followed by one round per image, in order.
    Runs in the untimed setup between two rounds: at a chunk boundary it hands the outputs so far to ``keep``
    and converts the next chunk, so the timed call stays the inference alone."""
    first = first_chunk(inputs)
    for i in range(warmup):
        yield first[i % len(first)]
    del first
    del outputs[:]  # the warmup rounds' answers
    for chunk in iter_chunks(inputs):
        if outputs:
            kept.extend(keep(outputs))
            del outputs[:]
        yield from chunk
        del chunk


class PerfCounterTiming:
    def __init__(self, progress: Callable[[int, int], None] = _no_progress, threads: int = 1) -> None:
        self.latencies_s: list[float] = []
        self.progress, self.threads = progress, threads
        self.load: dict | None = None
        self.sampler: Sampler | None = None  # set by the caller (targets.host.execute) to sample conditions

    def time_each(self, infer: Callable, inputs: Sequence[np.ndarray], warmup: int, keep: Keep = list):
        """Time ``infer`` on every input (a list, or ``stream.ModelInputs`` converted a chunk at a time between
        two timed calls); returns what ``keep`` keeps of the outputs (all of them by default) and the latencies."""
        _warm_up(infer, inputs, warmup)
        kept, latencies = [], []
        clock, progress, total = perf_counter, self.progress, len(inputs)
        sampler = self.sampler
        sample = sampler.maybe if sampler else _no_sample
        before = load.snapshot()
        if sampler:
            sampler.start()
        for chunk in iter_chunks(inputs):
            outputs = []
            for x in chunk:
                start = clock()
                out = infer(x)
                latencies.append(clock() - start)
                outputs.append(out)
                progress(len(latencies), total)
                sample()
            kept.extend(keep(outputs))
            del outputs, chunk
        if sampler:
            sampler.stop()
        self.load = load.machine_load(before, load.snapshot(), self.threads)
        self.latencies_s = latencies
        return kept, latencies

    def record(self, latencies_s: Sequence[float]) -> None:
        self.latencies_s = list(latencies_s)


class BenchmarkTiming:
    def __init__(self, benchmark, progress: Callable[[int, int], None] = _no_progress, threads: int = 1) -> None:
        self.benchmark = benchmark
        self.progress, self.threads = progress, threads
        self.load: dict | None = None
        self.sampler: Sampler | None = None  # set by the caller (targets.host.execute) to sample conditions

    def time_each(self, infer: Callable, inputs: Sequence[np.ndarray], warmup: int, keep: Keep = list):
        if self.benchmark.disabled:
            fallback = PerfCounterTiming(self.progress, self.threads)
            fallback.sampler = self.sampler
            outputs, latencies = fallback.time_each(infer, inputs, warmup, keep)
            self.load = fallback.load
            return outputs, latencies
        outputs: list[np.ndarray] = []
        kept: list = []
        args = _rounds(inputs, warmup, outputs, kept, keep)
        append = outputs.append
        progress, total = self.progress, len(inputs)
        rounds = [-warmup]
        sampler = self.sampler
        sample = sampler.maybe if sampler else _no_sample

        def setup():  # untimed: hands the next image to the next round (and reports how far the case is)
            progress(rounds[0], total)
            if rounds[0] == 0 and sampler:  # the first timed round: conditions from here on
                sampler.start()
            elif rounds[0] > 0:
                sample()
            rounds[0] += 1
            return (next(args),), {}

        def infer_one(x):  # timed: the inference and one list append
            append(infer(x))

        before = load.snapshot()
        self.benchmark.pedantic(infer_one, setup=setup, rounds=len(inputs), warmup_rounds=warmup, iterations=1)
        if sampler:
            sampler.stop()
        self.load = load.machine_load(before, load.snapshot(), self.threads)
        kept.extend(keep(outputs))
        return kept, list(self.benchmark.stats.stats.data)

    def record(self, latencies_s: Sequence[float]) -> None:
        """Feed latencies measured elsewhere (on a device) into pytest-benchmark's stats."""
        self.benchmark._mode = self.benchmark._mode or "record(...)"  # used: no "fixture not used" warning
        if self.benchmark.disabled:
            return
        # pytest-benchmark (5.3) has no public way to add rounds timed elsewhere: pedantic() always times its own
        # call. _make_stats(iterations) is the one private call, kept here alone; tests/run/test_timing_record.py
        # checks it against the installed pytest-benchmark (stats, JSON), so an upgrade that breaks it fails a test.
        stats = self.benchmark._make_stats(1)
        for seconds in latencies_s:
            stats.update(seconds)


def time_sustained(infer: Callable, inputs, warmup: int, keep: Keep, duration_s: float, sampler: Sampler,
                   progress: Callable[[int, int], None] = _no_progress, threads: int = 1):
    """Sustained mode: time ``infer`` on the inputs over and over (between two timed calls a chunk is converted
    again when the cycle comes back to it) until ``duration_s`` has passed, at least once over the dataset.
    The first pass's answers are kept (accuracy over the dataset once) and its latencies are the case's cold
    latencies; every image of every pass goes into the per-window curve (``run.conditions.windows``), kept as
    float32 (8 bytes an image: an hour of a 0.5 ms model is 58 MB, not the 460 MB of Python floats).
    Returns (kept, first-pass latencies, the curve, machine load)."""
    from array import array

    _warm_up(infer, inputs, warmup)
    kept, cold = [], []
    latencies, starts = array("f"), array("f")
    clock, total = perf_counter, len(inputs)
    before = load.snapshot()
    sampler.start()
    origin = clock()
    end = origin
    cycle = 0
    while cycle == 0 or end - origin < duration_s:
        for chunk in iter_chunks(inputs):
            outputs = []
            for x in chunk:
                start = clock()
                out = infer(x)
                end = clock()
                latencies.append(end - start)
                starts.append(start - origin)
                if cycle == 0:
                    cold.append(end - start)
                    outputs.append(out)
                    progress(len(cold), total)
                sampler.maybe()
                if cycle and end - origin >= duration_s:
                    break
            if cycle == 0:
                kept.extend(keep(outputs))
            del outputs, chunk
            if cycle and end - origin >= duration_s:
                break
        cycle += 1
    sampler.stop()
    machine = load.machine_load(before, load.snapshot(), threads)
    curve = windows(starts, latencies, sampler.samples, max(end - origin, duration_s), SUSTAIN_WINDOWS)
    curve["cycles"] = cycle
    return kept, cold, curve, machine
