"""``aiotbench compare BASE.json NEW.json``: per-case deltas, direction-aware limits, noise-aware latency gating.

A limit such as ``p90:+10%`` says "fail when p90 latency rises by more than 10 %"; ``top1:-0.5pt`` says "fail
when top-1 drops by more than 0.5 points". Accuracy on the same dataset is exact, so its delta is taken as is.
Latency (and VIPS/VOPS, which divide by the mean latency) is noisy: a change only counts when the one-sided 95 %
bootstrap bound of the change is beyond the limit too (see docs/compare.md).
"""

from __future__ import annotations

import argparse
import math
import zlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..run.emulation import EMULATED_NOTE, is_emulated
from ..run.environment import machine_differences, runtime_differences
from ..verdicts.validity import kinds
from ..inputs.options import add_cli_flag
from ..inputs.limits import METRICS, Limit, Metric, case_limits, parse_limits, scenario
from . import columns as registry
from .read import ReportError, case_map, cli_command, describe_dataset, describe_run, load_report, text_table

EXIT_REGRESSION = 1
EXIT_CANNOT_JUDGE = 3  # no regression, but a limit asked for could not be judged (NOT JUDGED); --allow-not-judged: 0
NOT_JUDGED = "NOT JUDGED"  # the verdict word for a limit that could not be applied: never a pass
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240605  # fixed: the same two files always give the same verdict
CONFIDENCE = 0.95  # one-sided
MIN_SAMPLES = 10  # below this a bootstrap says nothing useful: decide on the point estimate and say so



# ------------------------------------------------------------------------------------------------ comparison

@dataclass
class Delta:
    metric: Metric
    base: float | None
    new: float | None
    change: float | None  # points or percent, signed; None when not computable
    bound: float | None = None  # one-sided 95 % bootstrap bound of ``change`` on the favourable side
    bulk_p: float | None = None  # p-value of "the typical image is slower by more than the limit allows"
    limit: Limit | None = None
    invalid: str | None = None  # a latency-based metric with an INVALID side: cannot be judged either way
    why_missing: str | None = None  # what a side says about its missing value (memory: not exposed...)

    @property
    def cannot_judge(self) -> bool:
        """A limit applies but cannot be judged: a side's latency is INVALID, or the metric is n/a on a side."""
        return self.limit is not None and (self.invalid is not None or self.change is None)

    @property
    def why_not_judged(self) -> str:
        if self.invalid is not None:
            return self.invalid
        side = " and ".join(s for s, v in (("BASE", self.base), ("NEW", self.new)) if v is None) or "a side"
        why = (" (unlabelled images or random weights)" if self.metric.unit == "pt" else
               f" ({self.why_missing})" if self.why_missing else "")
        return f"no {self.metric.name} in {side}{why}"

    @property
    def noise_checked(self) -> bool:
        return self.bound is not None

    @property
    def beyond_limit(self) -> bool:
        return (self.limit is not None and self.change is not None
                and self.change * self.metric.worse > self.limit.threshold * self.metric.worse)

    @property
    def regressed(self) -> bool:
        """Beyond the limit; for latency-based metrics also beyond it at the favourable bootstrap bound, and
        with the bulk of the images (not just a few hit by interference) slower than the limit allows."""
        if not self.beyond_limit or self.cannot_judge:
            return False
        if not self.noise_checked:  # exact (accuracy) or no samples to judge the noise with
            return True
        worse = self.metric.worse
        return self.bound * worse > self.limit.threshold * worse and self.bulk_p < 1 - CONFIDENCE

    @property
    def within_noise(self) -> bool:
        return self.beyond_limit and not self.regressed

    def cell(self) -> str:
        if self.change is None:
            return "n/a ?" if self.cannot_judge else "n/a"
        text = f"{self.change:+.1f}{self.metric.unit}"
        if self.cannot_judge:
            return text + " ?"
        return text + (" !!" if self.regressed else " ~" if self.within_noise else "")

    def explain(self) -> str:
        unit = self.metric.unit
        suffix = " MB" if self.metric.name == "memory" else " ms" if self.metric.worse > 0 else ""
        base, new = (f"{v * 100:.1f}%" if unit == "pt" else f"{v:.4g}{suffix}" for v in (self.base, self.new))
        text = f"{self.metric.name} {self.change:+.2f}{unit} ({base} -> {new}; limit {self.limit}"
        if self.noise_checked:
            text += f"; {CONFIDENCE:.0%} bound {self.bound:+.2f}{unit}; bulk slower p={self.bulk_p:.2g}"
        elif self.metric.noisy_stat:
            text += "; not noise-checked: too few per-image latencies"
        return text + ")"


@dataclass
class CaseComparison:
    case_id: str
    deltas: dict[str, Delta]
    notes: list[str] = field(default_factory=list)
    lost: str | None = None  # measured in BASE, error/failed without metrics in NEW: counts as a regression
    limits: list[Limit] = field(default_factory=list)  # what this case is held to (global + its own fail_on)
    unmeasured_new: str | None = None  # measured in BASE, skipped (not measured) in NEW: its limits not judged

    @property
    def regressions(self) -> list[Delta]:
        return [d for d in self.deltas.values() if d.regressed]

    @property
    def unjudged(self) -> list[Delta]:
        return [d for d in self.deltas.values() if d.cannot_judge]


@dataclass
class Comparison:
    base: dict
    new: dict
    limits: list[Limit]
    cases: list[CaseComparison]
    only_base: list[str]
    only_new: list[str]
    unmeasured: list[str]  # "id (BASE: skipped)" etc.: listed, not gated
    warnings: list[str]

    @property
    def failed(self) -> bool:
        return any(c.regressions or (c.lost and c.limits) for c in self.cases)

    @property
    def gated(self) -> bool:
        """Some limit applies: given for the run (--fail-on) or by a case's own ``fail_on`` (catalog)."""
        return bool(self.limits) or any(c.limits for c in self.cases)

    def limits_text(self) -> str:
        text = ", ".join(map(str, self.limits))
        own = sorted({f"{c.case_id}: {', '.join(map(str, c.limits))}" for c in self.cases
                      if c.limits and [str(x) for x in c.limits] != [str(x) for x in self.limits]})
        return "; ".join(([text] if text else []) + ([f"per model: {'; '.join(own)}"] if own else []))

    @property
    def cannot_judge(self) -> bool:
        """A limit asked for could not be judged on some compared case (NOT JUDGED): never a pass."""
        return any(c.unjudged or (c.unmeasured_new and c.limits) for c in self.cases)

    def not_judged_lines(self) -> list[str]:
        return [f"  {c.case_id}: {d.metric.name} "
                f"{'n/a' if d.change is None else f'{d.change:+.1f}{d.metric.unit}'} not judged "
                f"against {d.limit} ({d.why_not_judged})" for c in self.cases for d in c.unjudged] + [
            f"  {c.case_id}: {', '.join(map(str, c.limits))} not judged ({c.unmeasured_new})"
            for c in self.cases if c.unmeasured_new and c.limits]

    def exit_code(self, allow_not_judged: bool = False) -> int:
        """1 on a regression, else 3 when a limit could not be judged (unless allowed), else 0."""
        if self.failed:
            return EXIT_REGRESSION
        return EXIT_CANNOT_JUDGE if self.cannot_judge and not allow_not_judged else 0

    @property
    def compared(self) -> list[CaseComparison]:
        """Cases that were actually compared: measured on both sides, or lost in NEW."""
        return [c for c in self.cases if c.deltas or c.lost]

    def unchecked_limits(self) -> list[str]:
        """The limits no compared case could be held to: their metric is n/a on a side of every case. An "OK"
        over such a limit would be a gate that passed having checked nothing."""
        # A side that says why its value is missing (memory not exposed there) is a NOT JUDGED line, not this.
        return [str(limit) for limit in self.limits
                if not any((d := c.deltas.get(limit.metric.name)) is not None
                           and (d.change is not None or d.why_missing) for c in self.cases)]

    def left_out(self) -> str:
        """What the comparison did not cover, for messages: ``only in BASE: a, b; only in NEW: c``."""
        parts = [f"{title}: {_id_list(ids)}" for title, ids in (("only in BASE", self.only_base),
                                                                ("only in NEW", self.only_new)) if ids]
        return "; ".join(parts)

    def case_set_problem(self, require_all: bool = False) -> str | None:
        """Why this comparison cannot stand as a verdict (exit 2), or None. A gate that compared nothing must not
        pass; with ``require_all`` the two runs must also hold the same cases."""
        if self.new.get("finished") is False:  # the cases it never reached would just be "only in BASE"
            return f"NEW is an unfinished run ({UNFINISHED}): a verdict on part of a run is no pass"
        if not self.cases:
            return f"no case in common ({self.left_out() or 'both runs are empty'})"
        if not self.compared:
            return (f"no case was measured in both runs ({_id_list(self.unmeasured)})"
                    + (f"; {self.left_out()}" if self.left_out() else ""))
        unchecked = self.unchecked_limits()
        if unchecked and not any(c.lost for c in self.cases):  # a lost case fails the gate anyway
            return (f"--fail-on {', '.join(unchecked)} checked nothing: no compared case has that metric in both "
                    "runs (a synthetic run has no accuracy; a failed case no latency)")
        if require_all and (self.only_base or self.only_new):
            return f"the runs differ in case set (--require-all): {self.left_out()}"
        return None


    @property
    def columns(self) -> list[str]:
        """The registry's compared columns, then the metrics the limits add (offline pairs: their throughput)."""
        shown = [metric.name for metric in registry.compared_metrics()]
        offline = ["images_per_s"] if any("images_per_s" in c.deltas for c in self.cases) else []
        limited = [limit.metric.name for c in self.cases for limit in c.limits or self.limits]
        return list(dict.fromkeys([*shown, *offline, *limited]))


UNFINISHED = "interrupted, or still running or killed when this checkpoint was written"


def _id_list(ids: Sequence[str], shown: int = 10) -> str:
    """Ids for a one-line message: the first ``shown`` and how many more."""
    more = len(ids) - shown
    return ", ".join(ids[:shown]) + (f" and {more} more" if more > 0 else "")


def check_same_dataset(base: dict, new: dict, allow_mismatch: bool) -> list[str]:
    """Accuracy deltas mean nothing across datasets: refuse unless allowed, then return a warning."""
    fingerprints = base["dataset"].get("fingerprint"), new["dataset"].get("fingerprint")
    if fingerprints[0] == fingerprints[1]:
        return []
    message = (f"datasets differ: BASE {describe_dataset(base)} vs NEW {describe_dataset(new)}")
    if not allow_mismatch:
        raise ReportError(message + " (`aiotbench compare --allow-mismatch` compares anyway)")
    return [message + ": accuracy deltas are not comparable"]


def compare_reports(base: dict, new: dict, limits: Sequence[Limit] = (), allow_mismatch: bool = False
                    ) -> Comparison:
    warnings = check_same_dataset(base, new, allow_mismatch)
    # Said before any latency verdict: other ISA features or CPU make latency deltas a machine comparison.
    warnings += [f"machines differ, latency deltas compare machines too: {d}" for d in machine_differences(base, new)]
    if base.get("finished") is False:
        warnings.append(f"BASE {base.get('origin', '')} is an unfinished run ({UNFINISHED}): it holds only the "
                        "cases measured before it stopped".replace("  ", " "))
    base_cases, new_cases = case_map(base), case_map(new)
    compared, unmeasured = [], []
    for case_id in (i for i in base_cases if i in new_cases):
        old, cur = base_cases[case_id], new_cases[case_id]
        # The case's own limits (catalog fail_on, NEW's else BASE's) override the run's on the same metric.
        own = cur.get("fail_on") or old.get("fail_on") or []
        held_to = case_limits(limits, own)
        limit_by_metric = {limit.metric.name: limit for limit in held_to}
        metrics = {m.name: m for m in [*registry.compared_metrics(), *(limit.metric for limit in held_to)]}
        result = CaseComparison(case_id, {}, limits=held_to)
        if old.get("file_sha256") and cur.get("file_sha256") and old["file_sha256"] != cur["file_sha256"]:
            result.notes.append("model file changed")
        if runtime_differences(old, cur):
            result.notes.append("runtime differs: " + ", ".join(runtime_differences(old, cur)))
        if _measured(old) and _measured(cur) and scenario(old) != scenario(cur):
            # Offline throughput and single-stream latency are different quantities: never a delta, and a limit
            # on the case is NOT JUDGED rather than passed.
            mixed = f"scenario differs: BASE {scenario(old)}, NEW {scenario(cur)}"
            unmeasured.append(f"{case_id} ({mixed})")
            result.notes.append(mixed + ": not compared")
            result.unmeasured_new = mixed
            compared.append(result)
            continue
        if scenario(cur) == "offline":
            metrics.setdefault("images_per_s", METRICS["images_per_s"])
        if not _measured(old) or not _measured(cur):
            side, case = ("BASE", old) if not _measured(old) else ("NEW", cur)
            unmeasured.append(f"{case_id} ({side}: {case.get('status')}"
                              f"{': ' + case['reason'] if case.get('reason') else ''})")
            if _measured(old) and cur.get("status") in ("error", "failed"):
                result.lost = f"{case_id}: no result in NEW (status {cur['status']})"
            elif _measured(old):  # e.g. a model path typo in the new run: never a silent pass of its limits
                result.unmeasured_new = (f"measured in BASE, not in NEW: {cur.get('status')}"
                                         f"{': ' + cur['reason'] if cur.get('reason') else ''}")
            compared.append(result)
            continue
        # Seeded per case (not per position) so a case's verdict does not depend on which other cases ran.
        rng = np.random.default_rng([BOOTSTRAP_SEED, zlib.crc32(case_id.encode())])
        samples = _latency_samples(old, cur)
        ratios = _bootstrap_ratios(samples, rng) if samples else None
        gated = _gated_limits(limit_by_metric, old, cur, result)
        invalid = _invalid_side(old, cur)
        if invalid:
            result.notes.append("latency INVALID: " + ", ".join(
                side for side in ("BASE", "NEW") if f"{side} INVALID" in invalid))
        for name, metric in metrics.items():
            result.deltas[name] = _delta(metric, old, cur, gated.get(name), samples, ratios)
            if metric.noisy_stat and invalid:
                result.deltas[name].invalid = invalid
        compared.append(result)
    return Comparison(base, new, list(limits), compared,
                      only_base=[i for i in base_cases if i not in new_cases],
                      only_new=[i for i in new_cases if i not in base_cases],
                      unmeasured=unmeasured, warnings=warnings)


def _gated_limits(limits: dict[str, Limit], old: dict, cur: dict, result: CaseComparison) -> dict[str, Limit]:
    """An emulated side keeps its accuracy limits (predictions carry over) but no latency-based one. Memory limits
    stay: an emulated side has no memory figure (run/memory.py), so they are NOT JUDGED, never silently dropped."""
    if not (is_emulated(old) or is_emulated(cur)):
        return limits
    result.notes.append(EMULATED_NOTE)
    return {name: limit for name, limit in limits.items() if limit.metric.noisy_stat is None}


def _invalid_side(old: dict, cur: dict) -> str | None:
    """Why the latency of either side cannot be trusted (its ``validity`` says INVALID), or None."""
    sides = [(side, (case.get("validity") or {})) for side, case in (("BASE", old), ("NEW", cur))]
    # The kinds only (drift, spread, contention, load...): the reasons in full are in each report and its table.
    reasons = [f"{side} INVALID ({', '.join(kinds(v)) or '?'})" for side, v in sides if v.get("valid") is False]
    return " / ".join(reasons) or None


def _measured(case: dict) -> bool:
    return case.get("latency_ms") is not None or bool(case.get("offline"))


def _delta(metric: Metric, old: dict, cur: dict, limit: Limit | None, samples: tuple | None,
           ratios: dict[str, tuple[float, float, float]] | None) -> Delta:
    base, new = metric.value(old), metric.value(cur)
    if base is None or new is None or (metric.unit == "%" and base == 0):
        return Delta(metric, base, new, None, limit=limit, why_missing=_why_missing(metric, old, cur))
    if metric.unit == "pt":  # same images on both sides: the accuracy delta is exact, not an estimate
        return Delta(metric, base, new, (new - base) * 100, limit=limit)
    change = (new / base - 1) * 100
    if not metric.noisy_stat or ratios is None:
        return Delta(metric, base, new, change, limit=limit)
    point, low, high = ratios[metric.noisy_stat]  # NEW/BASE ratio of the latency statistic and its bounds
    if metric.inverse:
        # throughput = work / mean latency: its favourable (high) bound is the latency's low one, and it
        # crosses the limit when latency grows by more than work ratio / (1 + limit).
        bound = ((new / base) * point / low - 1) * 100
        work_ratio = (new / base) * (METRICS["mean"].value(cur) / METRICS["mean"].value(old))
        slowdown = work_ratio / (1 + limit.threshold / 100) if limit else None
    else:
        bound = (low / point * (new / base) - 1) * 100
        slowdown = 1 + limit.threshold / 100 if limit else None
    bulk_p = _bulk_slower_p(samples[0], samples[1], slowdown) if slowdown else None
    return Delta(metric, base, new, change, bound=bound, bulk_p=bulk_p, limit=limit)


def _why_missing(metric: Metric, old: dict, cur: dict) -> str | None:
    """A side's own reason for a missing memory figure (not exposed on that platform, probe failed, older report)."""
    if metric.name != "memory":
        return None
    reasons = []
    for side, case in (("BASE", old), ("NEW", cur)):
        memory = case.get("memory")
        if memory is None:
            reasons.append(f"{side}: not measured (report without memory figures)")
        elif memory.get("peak_mb") is None:
            reasons.append(f"{side}: {memory.get('reason') or 'not exposed'}")
    return "; ".join(reasons) or None


def _latency_samples(old: dict, cur: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-image latencies of both runs; None when a side has too few for the noise checks to mean anything."""
    samples = []
    for case in (old, cur):
        values = np.asarray((case.get("per_image") or {}).get("latency_ms") or [], dtype=float)
        if values.size < MIN_SAMPLES:
            return None
        samples.append(values)
    return samples[0], samples[1]


_STATISTICS = {
    "median": lambda x: np.median(x, axis=-1),
    "mean": lambda x: np.mean(x, axis=-1),
    "p90": lambda x: np.percentile(x, 90, axis=-1),
}


def _bootstrap_ratios(samples: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
                      ) -> dict[str, tuple[float, float, float]]:
    """For each latency statistic: NEW/BASE ratio on the samples and its one-sided (5 %, 95 %) bootstrap bounds.

    The two runs are resampled independently: latency does not pair by image across runs."""
    boot = {name: [] for name in _STATISTICS}
    # Chunked so that 50 000-image runs do not allocate resamples x images at once.
    chunk = max(1, 2_000_000 // max(len(s) for s in samples))
    for start in range(0, BOOTSTRAP_RESAMPLES, chunk):
        rows = min(chunk, BOOTSTRAP_RESAMPLES - start)
        drawn = [s[rng.integers(0, len(s), size=(rows, len(s)))] for s in samples]
        for name, stat in _STATISTICS.items():
            boot[name].append(stat(drawn[1]) / stat(drawn[0]))
    tail = (1 - CONFIDENCE) * 100
    result = {}
    for name, stat in _STATISTICS.items():
        low, high = np.percentile(np.concatenate(boot[name]), [tail, 100 - tail])
        result[name] = (float(stat(samples[1]) / stat(samples[0])), float(low), float(high))
    return result


def _bulk_slower_p(base: np.ndarray, new: np.ndarray, slowdown: float) -> float:
    """One-sided Mann-Whitney U p-value for "NEW's images are slower than BASE's scaled by ``slowdown``".

    Small means the typical image (not a few outliers) got slower by more than the limit allows: what a model or
    runtime change does, since a CNN costs the same on every image, and what interference from other processes
    (a minority of images hit, the bulk untouched) does not. Normal approximation with tie correction."""
    scaled = base * slowdown
    pooled = np.concatenate([new, scaled])
    order = np.argsort(pooled, kind="mergesort")
    starts = np.flatnonzero(np.r_[True, np.diff(pooled[order]) != 0])  # first index of each run of ties
    sizes = np.diff(np.r_[starts, len(pooled)])
    ranks = np.empty(len(pooled))
    ranks[order] = np.repeat(starts + (sizes + 1) / 2, sizes)  # average 1-based rank within ties
    n1, n2, n = len(new), len(scaled), len(pooled)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    variance = n1 * n2 / 12 * ((n + 1) - (sizes ** 3 - sizes).sum() / (n * (n - 1)))
    if variance <= 0:  # every value tied: no evidence either way
        return 1.0
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


# ---------------------------------------------------------------------------------------------------- output

def format_comparison(comparison: Comparison, allow_not_judged: bool = False) -> str:
    lines = [f"BASE: {describe_run(comparison.base)}", f"NEW:  {describe_run(comparison.new)}",
             f"dataset: {describe_dataset(comparison.new)}"]
    lines += [f"WARNING: {w}" for w in comparison.warnings]
    columns = comparison.columns
    rows = [[c.case_id] + [c.deltas[m].cell() if m in c.deltas else "-" for m in columns] + ["; ".join(c.notes)]
            for c in comparison.cases]
    if rows:
        headers = ["case"] + [f"{m} ({registry.metric(m).unit})" for m in columns] + ["notes"]
        lines += ["", text_table(headers, rows)]
        if comparison.gated:
            lines.append("!! regression beyond the limit   ~ beyond the limit but within run-to-run noise   "
                         "? NOT JUDGED (a side's latency INVALID or the metric n/a)")
    else:
        lines += ["", "no case in common"]
    for title, ids in (("only in BASE", comparison.only_base), ("only in NEW", comparison.only_new),
                       ("not measured", comparison.unmeasured)):
        if ids:
            lines.append(f"{title}: {', '.join(ids)}")
    lines += ["", verdict(comparison, allow_not_judged)]
    return "\n".join(lines)


def verdict(comparison: Comparison, allow_not_judged: bool = False) -> str:
    """The verdict, its word first: ``FAIL:`` (a regression), ``NOT JUDGED:`` (a limit asked for could not be
    applied: never a pass, never "no regression") or ``OK:``, then one line per regression or unjudged limit."""
    if not comparison.gated:
        return "no limits given (--fail-on): nothing gated"
    limits = comparison.limits_text()
    problems = [f"  {c.case_id}: {d.explain()}" for c in comparison.cases for d in c.regressions]
    problems += [f"  {c.lost}" for c in comparison.cases if c.lost]
    unjudged = comparison.not_judged_lines()
    allowed = " (allowed by --allow-not-judged)" if allow_not_judged else ""
    invalid = any(d.invalid for c in comparison.cases for d in c.unjudged)
    hint = " (a side's latency INVALID: rerun on a quiet machine, or A/B with --aiotbench-baseline)" if invalid else ""
    cannot = ([f"{NOT_JUDGED}{allowed}: {len(unjudged)} limit check(s) could not be judged, so they did not "
               f"pass{hint}:"] + unjudged) if unjudged else []
    if problems:
        return "\n".join([f"FAIL: {len(problems)} regression(s) beyond limits ({limits}):"] + problems + cannot)
    coverage = ""
    if comparison.only_base or comparison.only_new:
        total = len(comparison.cases) + len(comparison.only_base) + len(comparison.only_new)
        coverage = f" over {len(comparison.cases)} of {total} case(s); left out: {comparison.left_out()}"
    if cannot:
        return "\n".join(cannot + [f"  the other checks found no regression beyond limits ({limits}){coverage}"])
    return f"OK: no regression beyond limits ({limits}){coverage}"


# ------------------------------------------------------------------------------------------------------- CLI

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare two runs, fail on regressions",
        description="Per-case deltas between two result files (aiotbench JSON or pytest-benchmark JSON). "
                    "Exit 1 when a --fail-on limit is crossed, 2 on unusable input.")
    parser.add_argument("base", metavar="BASE.json")
    parser.add_argument("new", metavar="NEW.json")
    add_cli_flag(parser, "compare", "--fail-on")
    parser.add_argument("--allow-mismatch", action="store_true",
                        help="compare runs over different datasets (accuracy deltas then mean little)")
    add_cli_flag(parser, "compare", "--allow-not-judged")
    add_cli_flag(parser, "compare", "--fail-invalid")
    add_cli_flag(parser, "compare", "--require-all")
    parser.set_defaults(func=_run)


@cli_command("compare")
def _run(args: argparse.Namespace) -> int:
    limits = parse_limits(args.fail_on)
    comparison = compare_reports(load_report(args.base), load_report(args.new), limits, args.allow_mismatch)
    problem = comparison.case_set_problem(args.require_all)
    if problem:
        raise ReportError(f"{args.base} vs {args.new}: {problem}")
    if args.fail_invalid and args.allow_not_judged:
        raise ReportError("--fail-invalid and --allow-not-judged contradict each other: give one")
    print(format_comparison(comparison, args.allow_not_judged))
    return comparison.exit_code(args.allow_not_judged)

