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
from .score import accuracy, latency_stats_ms, vips, vops
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
    from .gate import fail_on_limits  # one parse of --aiotbench-fail-on for the compare gate and the A/B

    return fail_on_limits(config)


class BaselineError(Exception):
    """The baseline side of an A/B cannot run (missing file, load or output-shape error). Names the baseline
    file; the candidate is then measured alone, its measurement kept, and the case fails saying why."""


def case_limits(limits: Sequence, fail_on: Sequence[str] | None) -> list:
    """The limits one case is held to: the session's, with the catalog's per-model ``fail_on`` overriding a
    limit on the same metric."""
    if not fail_on:
        return list(limits)
    from .compare import parse_limits

    return parse_limits([*map(str, limits), *fail_on])


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
    from .fixture import CASE_ERRORS

    with ExitStack() as stack:
        made: dict[tuple[str, int], Prepared] = {}
        for side, k in ab.creation_order(sessions):
            job, first = (new, made.get(("new", 0))) if side == "new" else (base, made.get(("base", 0)))
            try:
                made[side, k] = stack.enter_context(prepared(job, inputs=first.inputs if first else None))
            except CASE_ERRORS as exc:
                if side == "new":  # the candidate's own problem: the case fails naming its file
                    raise
                raise BaselineError(f"A/B baseline {base.model_file}: "
                                    f"{str(exc).removeprefix(f'{base.model_file.name}: ')}") from None
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
    base_stats = latency_stats_ms(base.latencies_s)
    # The baseline's own work figures: VOPS limits need its GFLOPs (another model may do other work per image).
    base_vips = vips(base_acc["top1"], base_stats["mean"] / 1e3)
    base_work = {"gflops": baseline.gflops, "vips": base_vips, "vops": vops(base_vips, baseline.gflops)}
    new_acc = {"top1": new_entry["top1"], "top5": new_entry["top5"], "gflops": new_entry.get("gflops"),
               "memory": (new_entry.get("memory") or {}).get("peak_mb")}
    base_memory = base.memory
    result = ab.compare_pair(new_entry["per_image"]["latency_ms"], base_ms, limits,
                             {**base_acc, "gflops": baseline.gflops,
                              "memory": (base_memory or {}).get("peak_mb")}, new_acc, case_id, timing.timed_with)
    return {"baseline": {"file": str(baseline.file), "file_sha256": file_sha256(baseline.file), **base_acc,
                         **base_work, "latency_ms": base_stats, "runtime": dict(base.session),
                         **({"memory": base_memory} if base_memory is not None else {}),
                         "validity": validity.assess(base_ms, timing.load),
                         "per_image": {"latency_ms": base_ms}},
            "timed_with": timing.timed_with,
            **result.as_dict()}


# The words compare and the pytest gate use (README "CI gating"); the JSON keeps ab.py's values.
DISPLAY = {ab.CANNOT_JUDGE: "NOT JUDGED", ab.REGRESSION: "REGRESSION", ab.NO_REGRESSION: "OK"}


def ab_lines(results: list[dict]) -> list[str]:
    """Terminal lines, one block per pair."""
    from .table import wrap

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
        lines += wrap(f"{entry['id']}: latency NEW/BASE x{num(r['median'])} (95% {num(r['low'])}-{num(r['high'])}, "
                      f"{r['pairs']} clean pairs of {timed}{spread}), top-1 {acc(base['top1'])} -> "
                      f"{acc(entry['top1'])}: {DISPLAY.get(pair['verdict'], pair['verdict'].upper())}")
        for j in pair["judgements"]:  # wrapped to the terminal (COLUMNS), like the summary table's reasons
            if j["verdict"] != ab.NO_REGRESSION:
                lines += wrap(f"{j['metric']}: {j['verdict']}: {j['detail']}", "    ")
        if not pair["pair_validity"]["valid"]:
            lines += wrap(f"pairing INVALID: {'; '.join(pair['pair_validity']['reasons'])}", "    ")
    return lines


AB_GATE_ID = "aiotbench::ab-gate"


class ABHooks:
    """Summary and exit status of the A/B pairs (registered only when a case has a baseline). With limits, the
    verdict is also a test report of its own (``aiotbench::ab-gate``: summary line, JUnit XML, ``--lf``)."""

    def __init__(self, state, fail_invalid: bool = False) -> None:
        from .gate import allow_not_judged

        self.state = state
        self.allow_not_judged = allow_not_judged(state.config)  # default: NOT JUDGED fails (fail_invalid: legacy)
        self._summary_written = False
        self._summary_problem: str | None = None  # $GITHUB_STEP_SUMMARY could not be written

    def _pairs(self) -> list[dict]:
        return [e for e in self.state.results.values() if e.get("ab")]

    def _unpaired(self) -> list[str]:
        """Measured cases that the limits were meant for but that had no baseline partner, when no
        ``--aiotbench-compare`` base gates them either: not judged, never silently left out."""
        if options.value(self.state.config, "aiotbench_compare"):
            return []
        return [e["result_id"] for e in self.state.results.values()
                if not e.get("ab") and e.get("latency_ms") is not None and (self.state.ab_limits or e.get("fail_on"))]

    def _not_judged(self) -> list[str]:
        lines = [f"  {e['id']}: {j['detail']}" for e in self._pairs() for j in e["ab"]["judgements"]
                 if j["verdict"] == ab.CANNOT_JUDGE]
        for case_id in self._unpaired():
            limits = ", ".join(map(str, case_limits(self.state.ab_limits, self.state.results[case_id].get("fail_on"))))
            lines.append(f"  {case_id}: {limits} not judged: no baseline partner (not in --aiotbench-baseline, no "
                         "catalog `baseline` key)")
        return lines

    def _regressions(self) -> list[str]:
        return [f"  {e['id']}: {j['detail']}" for e in self._pairs() for j in e["ab"]["judgements"]
                if j["verdict"] == ab.REGRESSION]

    def _failed(self) -> bool:
        return bool(self._regressions() or (self._not_judged() and not self.allow_not_judged))

    def verdict_lines(self) -> list[str]:
        regressions, unjudged = self._regressions(), self._not_judged()
        allowed = " (allowed by --aiotbench-allow-not-judged)" if self.allow_not_judged else ""
        lines = [f"FAIL: {len(regressions)} A/B regression(s):", *regressions] if regressions else []
        if unjudged:
            lines += [f"NOT JUDGED{allowed}: {len(unjudged)} A/B limit check(s) could not be judged, so they did "
                      "not pass:", *unjudged]
        if not lines and any(e["ab"]["judgements"] for e in self._pairs()):
            lines = [f"OK: no A/B regression beyond limits ({', '.join(map(str, self.state.ab_limits)) or 'per model'})"]
        return lines

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session):
        result = yield
        gated = self.state.ab_limits or any(e.get("fail_on") for e in self.state.results.values())
        if not self.state.is_worker and gated and not session.config.option.collectonly and self.state.results:
            from .gate import emit_gate_report

            emit_gate_report(session, AB_GATE_ID, self._failed(), self.verdict_lines())
            self._step_summary()
        return result

    def _step_summary(self) -> None:
        from .gate import _md, append_step_summary

        if self._summary_written:
            return
        self._summary_written = True
        word = "REGRESSION" if self._regressions() else "NOT JUDGED" if self._not_judged() else "OK"
        rows = []
        for entry in self._pairs():
            pair = entry["ab"]
            bad = [f"{j['detail']}" for j in pair["judgements"] if j["verdict"] != ab.NO_REGRESSION]
            ratio = pair["ratio"]["median"]
            rows.append(f"| `{_md(entry['id'])}` | {'n/a' if ratio is None else f'x{ratio:.3f}'} | "
                        f"{pair['verdict'].upper()} | {_md('; '.join(bad)) or '-'} |")
        rows += [f"| `{_md(i)}` | - | NOT JUDGED | no baseline partner |" for i in self._unpaired()]
        problem = append_step_summary("\n".join([
            f"### aiotbench A/B gate: {word}", "", f"limits `{_md(', '.join(map(str, self.state.ab_limits)))}`", "",
            "| case | latency NEW/BASE | verdict | what regressed / why not judged |", "|---|---|---|---|", *rows]))
        self._summary_problem = problem

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._failed():
            from .session import fail_session

            fail_session(session, "aiotbench A/B: a pair regressed or could not be judged")

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.state.is_worker or not (self._pairs() or self._unpaired()):
            return
        failed = self._failed()
        terminalreporter.write_sep("=", "aiotbench A/B (interleaved, same machine)", red=failed, green=not failed)
        from .table import wrap

        verdicts = [piece for line in self.verdict_lines() + ([self._summary_problem] if self._summary_problem else [])
                    for piece in wrap(line.strip(), line[:len(line) - len(line.lstrip())], "      ")]
        for line in ab_lines(self._pairs()) + verdicts:
            terminalreporter.write_line(line)
