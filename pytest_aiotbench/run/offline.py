"""The offline (throughput) scenario, MLPerf's "Offline": all of a case's images are issued at once and processed
as fast as the target can, by ``sessions`` concurrent framework sessions (each with ``--aiotbench-threads``
threads, each serving the next request as soon as it is free) and, where the model allows, batches of ``batch``
images per request. Single-stream (one image at a time, each timed) stays the default and the AIoTBench score.

The timed quantity is the wall time from the first request's submission to the last answer. Converting crops to
model inputs and stacking them into batches happen between chunks (``inputs.pixels.ModelInputs``), outside it: the
case's wall time is the sum of its chunks' (each chunk is issued at once and drained). Answers are checked and
ranked after each chunk, untimed, exactly as single-stream's: with batch 1 every session computes exactly what the
single-stream session computes, so the accuracy is the same on the same images.

Ships in the device runner bundle: numpy and the standard library only (the frameworks are imported lazily).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from time import perf_counter
from typing import Callable, Sequence

import numpy as np

from . import load
from ..frameworks.base import BatchUnsupported, one_line, usable_cores
from ..inputs.pixels import Keep, chunk_images, first_chunk, iter_chunks


class OfflineError(Exception):
    """A request of the offline run failed inside the runtime (one line naming the model and the image)."""


def auto_sessions(threads: int, cores: int | None = None) -> int:
    """Sessions when none is asked for: as many as the cores hold at ``threads`` threads each (at least one)."""
    return max(1, (cores or usable_cores()) // max(1, threads))


def offline_chunk(images_per_chunk: int | None, size: int, group: int) -> int:
    """Images converted at once for an offline case: the single-stream chunk rounded up to whole rounds of
    ``group`` (sessions x batch) images, so every chunk keeps every session busy to its end."""
    base = images_per_chunk or chunk_images(size)
    return max(group, -(-base // group) * group)


@dataclass
class Runner:
    """One session's request: a batch-1 input (batch 1) or ``batch`` stacked inputs -> list of 1-D answers."""
    run: Callable[[np.ndarray], list]


def runners(sessions: Sequence, batch: int, probe: np.ndarray, num_classes: int, name: str
            ) -> tuple[list[Runner], int, str | None]:
    """A request function per session and the batch used: ``batch`` where every session can serve it (its
    ``batched`` method, and an untimed probe batch answering one row of ``num_classes`` scores per image), else 1
    with the reason (one line). ``probe``: ``batch`` batch-1 inputs stacked on axis 0."""
    single = [Runner(_single(s)) for s in sessions]
    if batch <= 1:
        return single, 1, None
    made = []
    try:
        for session in sessions:
            make = getattr(session, "batched", None)
            if make is None:
                raise BatchUnsupported(f"{session.info.get('runtime', 'this framework')} sessions take batch 1 only")
            run = make(batch)
            try:
                out = np.asarray(run(probe))
            except Exception as exc:  # the runtime's own error types: the model refuses the batch
                raise BatchUnsupported(one_line(exc)) from None
            if out.ndim < 1 or out.shape[0] != len(probe) or out[0].size != num_classes:
                raise BatchUnsupported(f"a batch of {len(probe)} answered {'x'.join(map(str, out.shape))}, "
                                       f"expected {len(probe)}x{num_classes}")
            made.append(Runner(_rows(run)))
    except BatchUnsupported as exc:
        _restore(sessions)
        return single, 1, f"{name}: batch {batch} not possible ({exc}); batch 1 used"
    return made, batch, None


def _single(session) -> Callable[[np.ndarray], list]:
    infer = session.infer
    return lambda x: [infer(x)]


def _rows(run: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], list]:
    return lambda x: list(run(x))


def _restore(sessions: Sequence) -> None:
    """Sessions resized for a batch that another session refused go back to batch 1 (TFLite resizes in place)."""
    for session in sessions:
        make = getattr(session, "batched", None)
        if make is not None:
            try:
                make(1)
            except BatchUnsupported:
                pass  # a batch-1 model: already there


@dataclass
class OfflineRun:
    kept: list  # what ``keep`` kept of every answer, in image order
    wall_s: float  # first submission to last answer, summed over chunks
    chunk_s: list[float]  # per chunk
    chunk_images: list[int]
    load: dict | None


class Issuer:
    """Persistent workers, one per session (threads created before anything is timed), that serve a list of
    requests: each takes the next unserved request as soon as it is free. Runtimes release the GIL inside their
    inference (ONNX Runtime, TFLite, torch), so the sessions compute concurrently."""

    def __init__(self, runs: Sequence[Runner]):
        from concurrent.futures import ThreadPoolExecutor

        self.runs = list(runs)
        self.pool = ThreadPoolExecutor(max_workers=len(self.runs)) if len(self.runs) > 1 else None
        if self.pool is not None:  # start every worker thread now, not inside the first timed chunk
            import threading

            ready = threading.Barrier(len(self.runs))
            for f in [self.pool.submit(ready.wait, 30) for _ in self.runs]:
                f.result()

    def serve(self, requests: Sequence[np.ndarray], name: str, first_image: int) -> list[list]:
        answers: list = [None] * len(requests)
        counter = itertools.count()  # next() on it is atomic under the GIL: each request is served once
        total = len(requests)

        def work(run: Callable) -> None:
            while True:
                i = next(counter)
                if i >= total:
                    return
                try:
                    answers[i] = run(requests[i])
                except Exception as exc:  # the runtime's error: one line, the others finish their request
                    raise OfflineError(f"{name}: inference failed (offline, request {i + 1} of {total} from image "
                                       f"{first_image}): {one_line(exc)}") from None

        if self.pool is None:
            work(self.runs[0].run)
        else:
            futures = [self.pool.submit(work, r.run) for r in self.runs]
            for f in futures:
                f.result()
        return answers

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def requests_of(chunk: Sequence[np.ndarray], batch: int) -> list[np.ndarray]:
    """A chunk's batch-1 inputs as requests: themselves (batch 1), or stacked ``batch`` at a time (untimed)."""
    if batch <= 1:
        return list(chunk)
    return [np.concatenate(chunk[i:i + batch], axis=0) for i in range(0, len(chunk), batch)]


def issue_all(runs: Sequence[Runner], inputs: Sequence[np.ndarray], batch: int, warmup: int, name: str,
              keep: Keep = list, progress: Callable[[int, int], None] | None = None, threads: int = 1
              ) -> OfflineRun:
    """Warm every session up (``warmup`` images each, untimed), then issue each chunk's requests at once to the
    sessions and time first submission to last answer. ``threads``: all the sessions' threads together (for the
    machine-load snapshot)."""
    issuer = Issuer(runs)
    try:
        first = first_chunk(inputs)
        warm = requests_of(first[:max(1, batch)], batch)[:1]
        for r in issuer.runs:  # untimed; ceil(warmup / batch) requests per session
            for _ in range(-(-warmup // batch)):
                r.run(warm[0])
        del first, warm
        kept, walls, counts, done, total = [], [], [], 0, len(inputs)
        before = load.snapshot()
        for chunk in iter_chunks(inputs):
            requests = requests_of(chunk, batch)
            start = perf_counter()
            answers = issuer.serve(requests, name, done + 1)
            walls.append(perf_counter() - start)
            counts.append(len(chunk))
            kept.extend(keep([row for answer in answers for row in answer]))
            done += len(chunk)
            del requests, answers, chunk
            if progress is not None:
                progress(done, total)
        machine = load.machine_load(before, load.snapshot(), threads)
    finally:
        issuer.close()
    return OfflineRun(kept, float(sum(walls)), walls, counts, machine)


def summary(run: OfflineRun, sessions: int, threads: int, batch: int, requested_batch: int,
            batch_note: str | None) -> dict:
    """The measurement's ``offline`` facts (the entry adds accuracy and VIPS)."""
    images = sum(run.chunk_images)
    return {"images": images, "wall_s": run.wall_s,
            "images_per_s": images / run.wall_s if run.wall_s > 0 else None,
            "sessions": sessions, "threads_per_session": threads, "batch": batch,
            "batch_requested": requested_batch, "batch_note": batch_note, "chunks": len(run.chunk_s),
            "load": run.load}
