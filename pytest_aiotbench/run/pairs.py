"""How an A/B is timed: NEW and BASE prepared ``SESSIONS`` times each (in ``creation_order``), all warmed up, then
timed alternately on the same images in ABBA order (``new_first``), every NEW session against every BASE session in
turn (``schedule``), in this process and thread, so whatever else the machine does hits both sides of a pair alike
and no one session's memory layout decides the ratio. Only ``infer()`` is inside the clock; both inputs are taken
before it starts. The statistics over the pairs are in ``verdicts/ab.py``; preparing the sessions is
``pipeline.time_pair``'s."""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter
from typing import Sequence

from ..inputs.pixels import first_chunk
from . import load as cpu_load
from .job import Measurement

SESSIONS = 2  # sessions prepared per side; every NEW one is timed against every BASE one (verdicts/ab.py)
BLOCK_UNITS = 8  # ABBA units (2 pairs each) per segment, and resampled together: contention outlasts a pair


def new_first(pair_index: int) -> bool:
    """ABBA order: NEW runs first in even pairs, second in odd ones, so neither side always follows the other."""
    return pair_index % 2 == 0


Cell = tuple[int, int, int]  # (cross, NEW session, BASE session); a cross is one set of sessions (a repeat)


@dataclass(frozen=True)
class Segment:
    """Pairs ``start``..``stop`` - 1 timed on NEW session ``new`` and BASE session ``base``."""
    start: int
    stop: int
    new: int
    base: int


def creation_order(sessions: int = SESSIONS) -> list[tuple[str, int]]:
    """NEW 0, BASE 0, BASE 1, NEW 1, ...: neither side is always created first."""
    order = []
    for k in range(sessions):
        order += [("new", k), ("base", k)] if k % 2 == 0 else [("base", k), ("new", k)]
    return order


def schedule(pairs: int, sessions: int = SESSIONS) -> list[Segment]:
    """Every (NEW, BASE) session combination, diagonal first ((0,0), (1,1), (0,1), (1,0) for two), taking turns
    in segments of whole ABBA units (each starts NEW-first), at most ``BLOCK_UNITS`` units long and short
    enough that every combination comes round at least four times: drift hits them all alike."""
    cells = [(j, (j + shift) % sessions) for shift in range(sessions) for j in range(sessions)]
    length = max(2, min(2 * BLOCK_UNITS, pairs // (4 * len(cells)) // 2 * 2))
    return [Segment(s, min(s + length, pairs), *cells[(s // length) % len(cells)]) for s in range(0, pairs, length)]


def timed_with(segments: Sequence[Segment]) -> list[list[int]]:
    """[NEW session, BASE session] of every pair, as the report keeps it."""
    return [[seg.new, seg.base] for seg in segments for _ in range(seg.start, seg.stop)]


@dataclass
class PairTiming:
    new: Measurement
    base: Measurement
    load: dict | None  # the machine's load during the timed pairs (load.machine_load)
    timed_with: list[list[int]]  # [NEW session, BASE session] that timed each pair (timed_with)


def time_prepared(news: Sequence, bases: Sequence, warmup: int,
                  progress=lambda done, total: None, threads: int = 1) -> PairTiming:
    """Time NEW and BASE sessions alternately on the same images (ABBA), every NEW session against every BASE
    session in turn (``schedule``), warmup excluded. ``news == bases`` times one session against itself. Each
    side is a prepared session with its converted inputs (``targets/host.py``'s ``Prepared``)."""
    if len(news) != len(bases) or not news:
        raise ValueError(f"A/B needs as many sessions on both sides ({len(news)} vs {len(bases)})")
    total = len(news[0].inputs)
    if any(len(p.inputs) != total for p in (*news, *bases)):
        raise ValueError(f"A/B needs the same images on both sides "
                         f"({', '.join(str(len(p.inputs)) for p in (*news, *bases))})")
    for i in range(warmup):  # warm every session, alternately, as they will be timed (on the first chunk)
        for p in (*news, *bases):
            first = first_chunk(p.inputs)
            p.session.infer(first[i % len(first)])
    out_a, out_b, lat_a, lat_b, ranked_a, ranked_b = [], [], [], [], [], []
    clock = perf_counter
    segments = schedule(total, len(news))
    before = cpu_load.snapshot()
    for seg in segments:
        a, b = news[seg.new], bases[seg.base]
        infer_a, infer_b, xa, xb = a.session.infer, b.session.infer, a.inputs, b.inputs
        # Untimed BASE then NEW: the first (NEW-first) pair follows its own NEW session, as every NEW-first
        # pair inside a segment does, whichever sessions ran the segment before.
        infer_b(xb[seg.start])
        infer_a(xa[seg.start])
        for i in range(seg.start, seg.stop):
            # Both inputs are taken before the clock starts: a side reaching a new chunk converts it here.
            ia, ib = xa[i], xb[i]
            if new_first(i):
                t0 = clock(); ya = infer_a(ia); t1 = clock(); yb = infer_b(ib); t2 = clock()  # noqa: E702
                lat_a.append(t1 - t0)
                lat_b.append(t2 - t1)
            else:
                t0 = clock(); yb = infer_b(ib); t1 = clock(); ya = infer_a(ia); t2 = clock()  # noqa: E702
                lat_b.append(t1 - t0)
                lat_a.append(t2 - t1)
            out_a.append(ya)
            out_b.append(yb)
            progress(i + 1, total)
        ranked_a.extend(news[0].keep(out_a))  # between segments: only top-k rows are kept
        ranked_b.extend(bases[0].keep(out_b))
        out_a.clear()
        out_b.clear()
    load = cpu_load.machine_load(before, cpu_load.snapshot(), threads)
    return PairTiming(news[0].measurement(ranked_a, lat_a), bases[0].measurement(ranked_b, lat_b), load,
                      timed_with(segments))


