"""Interleaved A/B in the pytest run: ``--aiotbench-baseline BASE_CATALOG.toml`` (cases matched by id) or a
catalog's ``baseline = "old_model.tflite"`` key pairs a case with its baseline. Each side is prepared
``ab.SESSIONS`` times, all are warmed up, then NEW and BASE are timed alternately on the same images in ABBA
order, every NEW session against every BASE session in turn, in this process and thread, so whatever else the
machine does hits both sides of a pair alike and no one session's memory layout decides the ratio. The
statistics and verdicts are in ``ab``; this module runs the pairs, and its hooks print the verdicts and fail
the session (exit 1) on a regression.
"""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from pathlib import Path
from time import perf_counter
from typing import Sequence

import pytest

from . import ab, options, validity
from .catalog import Case, CatalogError, load
from .compare import parse_limits
from .reports import ReportError
from .score import accuracy, latency_stats_ms
from .storage import file_sha256
from .targets.base import Job, Measurement
from .stream import first_chunk
from .targets.host import Prepared, prepared


def load_baselines(path: Path | None, cases: list[Case]) -> dict[str, Case]:
    """Case id -> baseline case: from the baseline catalog (same id), else the case's own ``baseline`` file."""
    baselines = {c.id: dataclasses.replace(c, file=c.baseline, baseline=None) for c in cases if c.baseline}
    if path is None:
        return baselines
    base_cases = {c.id: c for c in load(path)}
    matched = {c.id: base_cases[c.id] for c in cases if c.id in base_cases}
    if not matched:
        raise CatalogError(f"--aiotbench-baseline {path}: none of its cases ({', '.join(base_cases) or 'none'}) "
                           f"has the id of a case of this run ({', '.join(c.id for c in cases) or 'none'})")
    return {**baselines, **matched}


def ab_limits(config: pytest.Config) -> list:
    specs = options.value(config, "aiotbench_fail_on")
    try:
        return parse_limits(specs)
    except ReportError as exc:
        raise pytest.UsageError(f"--aiotbench-fail-on: {exc}") from None


@dataclasses.dataclass
class PairTiming:
    new: Measurement
    base: Measurement
    load: dict | None  # the machine's load during the timed pairs (validity.machine_load)
    timed_with: list[list[int]]  # [NEW session, BASE session] that timed each pair (ab.timed_with)


def time_pair(new: Job, base: Job, progress=lambda done, total: None, threads: int = 1,
              sessions: int = ab.SESSIONS) -> PairTiming:
    """Prepare ``sessions`` sessions of NEW and of BASE (in ``ab.creation_order``; a side's sessions share its
    converted inputs), then time them alternately on the same images (``time_prepared``)."""
    with ExitStack() as stack:
        made: dict[tuple[str, int], Prepared] = {}
        for side, k in ab.creation_order(sessions):
            job, first = (new, made.get(("new", 0))) if side == "new" else (base, made.get(("base", 0)))
            made[side, k] = stack.enter_context(prepared(job, inputs=first.inputs if first else None))
        return time_prepared([made["new", k] for k in range(sessions)], [made["base", k] for k in range(sessions)],
                             max(new.warmup, base.warmup), progress, threads)


def time_prepared(news: Sequence[Prepared], bases: Sequence[Prepared], warmup: int,
                  progress=lambda done, total: None, threads: int = 1) -> PairTiming:
    """Time NEW and BASE sessions alternately on the same images (ABBA), every NEW session against every BASE
    session in turn (``ab.schedule``), warmup excluded. ``news == bases`` times one session against itself."""
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
    segments = ab.schedule(total, len(news))
    before = validity.snapshot()
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
            if ab.new_first(i):
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
    load = validity.machine_load(before, validity.snapshot(), threads)
    return PairTiming(news[0].measurement(ranked_a, lat_a), bases[0].measurement(ranked_b, lat_b), load,
                      ab.timed_with(segments))


def pair_entry(case_id: str, baseline: Case, timing: PairTiming, new_entry: dict, labels, scored: bool,
               limits: list) -> dict:
    """The ``ab`` block of the candidate's JSON entry: the baseline's numbers, the paired ratio, the verdict."""
    base = timing.base
    base_ms = [s * 1e3 for s in base.latencies_s]
    base_acc = {"top1": accuracy(base.topk, labels, 1) if scored else None,
                "top5": accuracy(base.topk, labels, 5) if scored else None}
    new_acc = {"top1": new_entry["top1"], "top5": new_entry["top5"]}
    result = ab.compare_pair(new_entry["per_image"]["latency_ms"], base_ms, limits, base_acc, new_acc, case_id,
                             timing.timed_with)
    return {"baseline": {"file": str(baseline.file), "file_sha256": file_sha256(baseline.file), **base_acc,
                         "latency_ms": latency_stats_ms(base.latencies_s), "runtime": dict(base.session),
                         "validity": validity.assess(base_ms, timing.load),
                         "per_image": {"latency_ms": base_ms}},
            "timed_with": timing.timed_with,
            **result.as_dict()}


def ab_lines(results: list[dict]) -> list[str]:
    """Terminal lines, one block per pair."""
    lines = []
    for entry in results:
        pair = entry.get("ab")
        if not pair:
            continue
        r, base = pair["ratio"], pair["baseline"]
        acc = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
        num = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731 (no clean pair of one order: no ratio)
        timed = pair["pair_validity"]["checks"].get("pairs", r["pairs"])
        sessions = r.get("sessions") or {}
        spread = (f", {sessions['per_side']} sessions a side: ±{sessions['widening']:.1%}"
                  if sessions.get("widening") is not None and sessions.get("per_side", 1) > 1 else "")
        lines.append(f"{entry['id']}: latency NEW/BASE x{num(r['median'])} (95% {num(r['low'])}-{num(r['high'])}, "
                     f"{r['pairs']} clean pairs of {timed}{spread}), top-1 {acc(base['top1'])} -> "
                     f"{acc(entry['top1'])}: {pair['verdict'].upper()}")
        lines += [f"    {j['metric']}: {j['verdict']}: {j['detail']}" for j in pair["judgements"]
                  if j["verdict"] != ab.NO_REGRESSION]
        if not pair["pair_validity"]["valid"]:
            lines.append(f"    pairing INVALID: {'; '.join(pair['pair_validity']['reasons'])}")
    return lines


class ABHooks:
    """Summary and exit status of the A/B pairs (registered only when a case has a baseline)."""

    def __init__(self, state, fail_invalid: bool) -> None:
        self.state, self.fail_invalid = state, fail_invalid

    def _pairs(self) -> list[dict]:
        return [e for e in self.state.results.values() if e.get("ab")]

    def _failed(self) -> bool:
        verdicts = {e["ab"]["verdict"] for e in self._pairs()}
        return ab.REGRESSION in verdicts or (self.fail_invalid and ab.CANNOT_JUDGE in verdicts)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._failed() and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.state.is_worker or not self._pairs():
            return
        failed = self._failed()
        terminalreporter.write_sep("=", "aiotbench A/B (interleaved, same machine)", red=failed, green=not failed)
        for line in ab_lines(self._pairs()):
            terminalreporter.write_line(line)
