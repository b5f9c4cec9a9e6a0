"""Interleaved A/B statistics: is the candidate (NEW) slower than the baseline (BASE) on the same machine?

Both models are timed alternately on the same images (ABBA: image 0 NEW then BASE, image 1 BASE then NEW, ...),
so contention and drift hit both sides of a pair alike. Per image the ratio NEW/BASE is taken, over the **clean
pairs**: another process only ever adds time, and when it lands on one side of a pair it moves that pair's ratio
either way (a preempted baseline can make a 4x slower candidate look faster). A pair is clean when both sides took
at most ``CLEAN_FACTOR`` x their own 25th percentile, which is what the image costs without interference.

The estimate balances the order: whichever model runs second in a pair runs with the other's data in the caches
(measured here: the NEW-first and BASE-first halves of an identical-copy A/B differ by 0.4-1.5 %), so the ratio is
the geometric mean of the two halves' medians.

**Sessions.** Two sessions of the *same file* in one process differ by a steady offset that no resampling of
pairs can see (benchmarks/ab_noise.py: swapping the roles inverts it, one session against itself shows none, it
is usually a few tenths of a percent but one run measured 8.5 %; the memory layout of each interpreter is the
likely cause). So each side is prepared ``SESSIONS`` times (created NEW, BASE, BASE, NEW) and every NEW session is
timed against every BASE session, the cells of that cross taking turns in segments of whole ABBA units
(``schedule``). The ratio is the geometric mean of the cells' ratios, so one slow session counts 1/SESSIONS on
its side; how far the sessions of one side differ **in this run** is measured from the cross (two-way layout:
row and column effects) and widens the interval with Student's t on its few degrees of freedom. An identical
copy whose sessions differ by 8.5 % gets an interval about ±18 % wide, not a false regression.

The 95 % interval combines, in quadrature on the log scale, the sampling interval (a moving-block bootstrap over
consecutive ABBA units within each cell: neighbouring pairs share the machine's state) and that session term.
A latency limit ``+5%`` is crossed only when the whole interval lies above 1.05.

The pairing itself can be untrustworthy: too few clean pairs, or ratios that drift (first half vs second half of
the pairs: medians more than ``validity.PAIR_DRIFT_LIMIT`` apart and their bootstrap intervals disjoint), e.g. when
one model throttles mid-run (``validity.assess_pairing`` decides). Then the latency verdict is "cannot judge", never
a pass or a regression. Accuracy is exact and always judged.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..run.pairs import BLOCK_UNITS, Cell  # how the pairs were timed (run/pairs.py)
from . import validity

RESAMPLES = 2000
SEED = 20261129
CONFIDENCE = 0.95  # two-sided interval; its low end decides a regression, its high end an improvement
CLEAN_FACTOR = 1.5
# Student's t, two-sided 95 %, by degrees of freedom: the session spread comes from a handful of sessions
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 10: 2.228, 12: 2.179,
       16: 2.120, 20: 2.086, 30: 2.042, 60: 2.000}

REGRESSION, NO_REGRESSION, CANNOT_JUDGE = "regression", "no regression", "cannot judge"
NOT_GATED = "not gated"  # no --aiotbench-fail-on limit applies: the ratio is reported, nothing is decided


# ------------------------------------------------------------------------------------------ the sessions' cross

def pool_runs(runs: Sequence[tuple[Sequence[float], Sequence[float], Sequence | None]]) -> tuple[np.ndarray, list]:
    """Clean ratios and cells of runs timed one after the other (repeats), each with its own sessions:
    ``runs`` = (NEW latencies, BASE latencies, [NEW, BASE] session of each pair or None for one session each)."""
    ratios, cells = [], []
    for cross, (new_ms, base_ms, sessions) in enumerate(runs):
        r = clean_ratios(new_ms, base_ms)
        pairs = [tuple(p) for p in sessions] if sessions else [(0, 0)] * len(new_ms)
        pairs += pairs[-1:] * (r.size - len(pairs))  # clean_ratios' padding NaN
        ratios.append(r)
        cells += [(cross, j, k) for j, k in pairs]
    return (np.concatenate(ratios) if ratios else np.array([])), cells


# ------------------------------------------------------------------------------------------------ the estimate

@dataclass(frozen=True)
class RatioEstimate:
    median: float  # geometric mean of the cells' order-balanced median ratios (ratio_interval)
    low: float
    high: float
    pairs: int
    sampling: tuple[float, float] = (float("nan"), float("nan"))  # the interval from resampling pairs alone
    session_sd: float | None = None  # SD of one session's offset, measured in this run (log scale ~ fraction)
    session_term: float | None = None  # the half-width (log scale) it adds: t(df) x its standard error
    sessions: int = 1  # sessions per side

    def as_dict(self) -> dict:
        finite = lambda x: x if x is not None and math.isfinite(x) else None  # noqa: E731 (no pairs: null, not NaN)
        return {"median": finite(self.median), "low": finite(self.low), "high": finite(self.high),
                "pairs": self.pairs, "confidence": CONFIDENCE,
                "sampling": [finite(x) for x in self.sampling],
                "sessions": {"per_side": self.sessions, "sd": finite(self.session_sd),
                             "widening": finite(self.session_term)}}


def paired_ratios(new_ms: Sequence[float], base_ms: Sequence[float]) -> np.ndarray:
    new, base = np.asarray(new_ms, dtype=float), np.asarray(base_ms, dtype=float)
    if new.shape != base.shape:
        raise ValueError(f"A/B needs one latency per image on both sides ({new.size} vs {base.size})")
    keep = base > 0
    return new[keep] / base[keep]


def clean_ratios(new_ms: Sequence[float], base_ms: Sequence[float]) -> np.ndarray:
    """NEW/BASE ratio of every pair in timing order, NaN where a side was slowed by interference (see module
    doc) or the baseline took no time. Position keeps the order: even index = NEW timed first (``new_first``).
    An odd count is padded with one NaN, so runs concatenated one after the other keep that parity."""
    new, base = np.asarray(new_ms, dtype=float), np.asarray(base_ms, dtype=float)
    if new.shape != base.shape:
        raise ValueError(f"A/B needs one latency per image on both sides ({new.size} vs {base.size})")
    ratios = np.full(new.size + new.size % 2, np.nan)
    timed = base > 0
    if timed.any():
        quiet_new = new <= CLEAN_FACTOR * np.percentile(new[timed], 25)
        quiet_base = base <= CLEAN_FACTOR * np.percentile(base[timed], 25)
        keep = timed & quiet_new & quiet_base
        ratios[:new.size][keep] = new[keep] / base[keep]
    return ratios


def _units(ratios: Sequence[float]) -> np.ndarray:
    """Ratios as ABBA units, one row per two consecutive pairs: column 0 NEW first, column 1 BASE first."""
    r = np.asarray(ratios, dtype=float)
    if r.size % 2:
        r = np.append(r, np.nan)
    return r.reshape(-1, 2)


def _cell_units(ratios: Sequence[float], cells: Sequence[Cell] | None) -> dict[Cell, np.ndarray]:
    """Each cell's ratios as ABBA units (``_units``), placed by their index in the whole run: an even index was
    timed NEW first whichever cell it belongs to."""
    r = np.asarray(ratios, dtype=float)
    if cells is None:
        return {(0, 0, 0): _units(r)}
    if len(cells) != r.size:
        raise ValueError(f"A/B needs the sessions of every pair ({len(cells)} for {r.size} pairs)")
    found: dict[Cell, list[int]] = {}
    for i, cell in enumerate(cells):
        found.setdefault(tuple(cell), []).append(i)
    out = {}
    for cell, index in found.items():
        index = np.asarray(index)
        rows, where = np.unique(index // 2, return_inverse=True)
        units = np.full((rows.size, 2), np.nan)
        units[where, index % 2] = r[index]
        out[cell] = units
    return out


def _nan_median(x: np.ndarray, axis: int) -> np.ndarray:
    """Median along ``axis`` ignoring NaN (NaN where a row has none): sorting puts NaN last, so the finite count
    locates the middle. np.nanmedian does the same a row at a time, ~20x slower on bootstrap resamples."""
    ordered = np.sort(x, axis=axis)
    count = np.isfinite(x).sum(axis=axis, keepdims=True)
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis=axis)
    high = np.take_along_axis(ordered, np.minimum(count // 2, x.shape[axis] - 1), axis=axis)
    return np.squeeze(np.where(count > 0, (low + high) / 2, np.nan), axis=axis)


def _balanced(units: np.ndarray, axis: int = 0) -> np.ndarray:
    """Geometric mean of the NEW-first and the BASE-first pairs' median ratios: whatever the position in a pair
    does (the second model runs with the first one's data in the caches) multiplies one half's ratios by c and
    the other's by 1/c, and cancels here; a plain median of both halves lands anywhere between them."""
    medians = _nan_median(units, axis)
    return np.sqrt(np.take(medians, 0, axis=-1) * np.take(medians, 1, axis=-1))


def _bootstrap(units: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``RESAMPLES`` balanced ratios of moving-block resamples of ``units``: runs of up to ``BLOCK_UNITS``
    consecutive units (at least four blocks), each starting on a NEW-first pair so every resample keeps the
    balance of both orders. Contention and the machine's state outlast one image: resampling single pairs
    makes the interval too narrow (tests/verdicts/test_ab_validity.py: 32 of 40 vs 36 of 40 hold 1.0)."""
    n = units.shape[0]
    length = max(1, min(BLOCK_UNITS, n // 4))
    blocks = -(-n // length)
    offsets = np.arange(length)
    estimates = np.empty(RESAMPLES)
    chunk = max(1, 400_000 // n)
    for start in range(0, RESAMPLES, chunk):
        rows = min(chunk, RESAMPLES - start)
        starts = rng.integers(0, n - length + 1, size=(rows, blocks))
        index = (starts[:, :, None] + offsets).reshape(rows, -1)[:, :n]
        estimates[start:start + rows] = _balanced(units[index], axis=1)
    return estimates


def _t95(df: int) -> float:
    return T95[max(k for k in T95 if k <= df)] if df >= 1 else math.inf


def session_spread(log_ratios: dict[Cell, float]) -> tuple[float, int, float] | None:
    """(SD of one session's offset, its degrees of freedom, the standard error it gives the estimate) from the
    cells' log ratios, or None without a complete cross of two or more sessions a side. In each cross the
    log ratio of cell (j, k) is a + new_j - base_k + noise: the spread of the row means measures the NEW
    sessions, of the column means the BASE ones (assumed alike: sessions of the same kind, pooled). The
    estimate averages the sessions of each side, so a session's offset enters it divided by their number."""
    crosses: dict[int, dict[tuple[int, int], float]] = {}
    for (cross, j, k), value in log_ratios.items():
        crosses.setdefault(cross, {})[j, k] = value
    squares, df, variance_terms = 0.0, 0, []
    for cells in crosses.values():
        news, bases = sorted({j for j, _ in cells}), sorted({k for _, k in cells})
        if len(news) < 2 or len(news) != len(bases) or len(cells) != len(news) * len(bases):
            return None
        table = np.array([[cells[j, k] for k in bases] for j in news])
        centre = table.mean()
        squares += ((table.mean(axis=1) - centre) ** 2).sum() + ((table.mean(axis=0) - centre) ** 2).sum()
        df += len(news) - 1 + len(bases) - 1
        variance_terms.append(1 / len(news) + 1 / len(bases))
    if not df:
        return None
    sd = math.sqrt(squares / df)
    # the point is the mean over crosses of (mean NEW offset - mean BASE offset)
    error = sd * math.sqrt(sum(variance_terms)) / len(variance_terms)
    return sd, df, error


def ratio_interval(ratios: Sequence[float], case_id: str = "", cells: Sequence[Cell] | None = None
                   ) -> RatioEstimate:
    """Ratio of the clean pairs (NaN = not clean) and its 95 % interval (module doc). ``cells`` names each
    pair's (cross, NEW session, BASE session); None: one session a side, no session term. Seeded by case id,
    so a given set of samples always gets the same verdict."""
    groups = _cell_units(ratios, cells)
    pairs = sum(int(np.isfinite(u).sum()) for u in groups.values())
    per_side = max(len({key[1] for key in groups}), 1)
    if any(not np.isfinite(u[:, 0]).any() or not np.isfinite(u[:, 1]).any() for u in groups.values()):
        nan = float("nan")  # a cell where one order never ran clean: nothing to balance
        return RatioEstimate(nan, nan, nan, pairs, sessions=per_side)
    logs = {cell: float(np.log(_balanced(u))) for cell, u in groups.items()}
    point = float(np.mean(list(logs.values())))
    rng = np.random.default_rng([SEED, zlib.crc32(case_id.encode())])
    resampled = np.mean([np.log(_bootstrap(groups[cell], rng)) for cell in logs], axis=0)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.nanpercentile(resampled, [tail, 100 - tail])
    spread = session_spread(logs)
    sd, term = (None, 0.0) if spread is None else (spread[0], _t95(spread[1]) * spread[2])
    return RatioEstimate(math.exp(point), math.exp(point - math.hypot(point - low, term)),
                         math.exp(point + math.hypot(high - point, term)), pairs,
                         (math.exp(low), math.exp(high)), sd, term, per_side)


def pair_validity(ratios: Sequence[float], timed: int | None = None, cells: Sequence[Cell] | None = None) -> dict:
    """VALID/INVALID for the pairing itself (``validity.assess_pairing`` decides), given the pairs' clean ratios
    (``clean_ratios``: NaN = not clean; the per-case validity judges each side's raw latencies), how many pairs
    were timed and their cells."""
    r = np.asarray(ratios, dtype=float)
    units = _units(r)
    per_order = np.isfinite(units).sum(axis=0)
    clean = int(per_order.sum())
    thin = [(j, k) for (_, j, k), u in _cell_units(r, cells).items() if np.isfinite(u).sum(axis=0).min()
            < validity.MIN_CELL_PAIRS]
    drift, apart = None, False
    if per_order.min() >= 2:
        half = units.shape[0] // 2 * 2  # whole units on both sides of the cut
        halves = (cells[:half], cells[half:]) if cells is not None else (None, None)
        first = ratio_interval(r[:half], "first half", halves[0])
        second = ratio_interval(r[half:], "second half", halves[1])
        drift = second.median / first.median - 1
        (low1, high1), (low2, high2) = first.sampling, second.sampling
        apart = bool(low2 > high1 or low1 > high2)
    return validity.assess_pairing(clean, timed if timed is not None else clean, int(per_order.min()), thin,
                                   drift, apart)


@dataclass
class Judgement:
    metric: str  # "latency", "vips", "top1", "top5"
    verdict: str  # REGRESSION, NO_REGRESSION, CANNOT_JUDGE
    detail: str


@dataclass
class ABVerdict:
    estimate: RatioEstimate
    validity: dict
    judgements: list[Judgement] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """Regression if anything regressed; else cannot judge if any gated latency could not be judged."""
        kinds = {j.verdict for j in self.judgements}
        if not kinds:
            return NOT_GATED
        for kind in (REGRESSION, CANNOT_JUDGE):
            if kind in kinds:
                return kind
        return NO_REGRESSION

    def as_dict(self) -> dict:
        return {"ratio": self.estimate.as_dict(), "pair_validity": self.validity, "verdict": self.verdict,
                "judgements": [{"metric": j.metric, "verdict": j.verdict, "detail": j.detail}
                               for j in self.judgements]}


def judge(estimate: RatioEstimate, validity: dict, limits: Sequence, base_acc: dict, new_acc: dict) -> ABVerdict:
    """Apply ``--aiotbench-fail-on`` limits (compare.Limit) to one pair. Latency limits (median, mean, p90,
    latency) use the paired ratio's interval; vips that interval combined with the exact accuracy ratio, vops
    also with the GFLOPs ratio (``base_acc``/``new_acc`` carry ``gflops``); top1/top5 the exact accuracy delta
    (same images on both sides). A limit whose inputs are missing (no labels, no GFLOPs) is CANNOT_JUDGE: a limit
    asked for is never silently dropped."""
    result = ABVerdict(estimate, validity)
    for limit in limits:
        name, threshold = limit.metric.name, limit.threshold
        if limit.metric.unit == "pt":
            base, new = base_acc.get(name), new_acc.get(name)
            if base is None or new is None:
                result.judgements.append(Judgement(name, CANNOT_JUDGE, f"{name}: not judged (limit {limit}): "
                                                   f"no {name} on {_missing_sides(base, new)} (unlabelled images "
                                                   "or random weights)"))
                continue
            delta = (new - base) * 100
            verdict = REGRESSION if delta < threshold else NO_REGRESSION
            result.judgements.append(Judgement(name, verdict, f"{name} {delta:+.2f}pt ({base:.1%} -> {new:.1%}; "
                                                              f"limit {limit})"))
            continue
        if name == "memory":  # one reading a side, each in its own fresh process: its ratio as is
            base, new = base_acc.get("memory"), new_acc.get("memory")
            if base is None or new is None or base <= 0:
                result.judgements.append(Judgement(name, CANNOT_JUDGE, f"memory: not judged (limit {limit}): no "
                                                   f"peak memory on {_missing_sides(base or None, new)} "
                                                   "(not exposed on this platform, or the probe failed)"))
                continue
            change = (new / base - 1) * 100
            verdict = REGRESSION if change > threshold else NO_REGRESSION
            result.judgements.append(Judgement(name, verdict, f"memory {change:+.1f}% ({base:.1f} -> {new:.1f} MB "
                                                              f"peak; limit {limit})"))
            continue
        if limit.metric.worse > 0:  # a latency: regression when even the low end is beyond 1 + limit
            bound, point, beyond = estimate.low, estimate.median, estimate.low > 1 + threshold / 100
        else:  # vips/vops = work / latency: its high end comes from the latency ratio's low end
            work_ratio, missing = _work_ratio(name, base_acc, new_acc)
            if work_ratio is None:
                result.judgements.append(Judgement(name, CANNOT_JUDGE, f"{name}: not judged (limit {limit}): "
                                                   f"{missing}"))
                continue
            point, bound = work_ratio / estimate.median, work_ratio / estimate.low
            beyond = bound < 1 + threshold / 100
        text = (f"{name} x{point:.3f} (95% interval of the paired ratio {estimate.low:.3f}-{estimate.high:.3f}; "
                f"limit {limit})" if math.isfinite(point) else f"{name}: no paired ratio (limit {limit})")
        if not validity["valid"]:
            verdict, text = CANNOT_JUDGE, f"{text}; pairing INVALID: {'; '.join(validity['reasons'])}"
        else:
            verdict = REGRESSION if beyond else NO_REGRESSION
        result.judgements.append(Judgement(name, verdict, text))
    return result


def _missing_sides(base, new) -> str:
    return " and ".join(side for side, v in (("BASE", base), ("NEW", new)) if v is None)


def _work_ratio(name: str, base_acc: dict, new_acc: dict) -> tuple[float | None, str]:
    """NEW/BASE of what VIPS (top-1) or VOPS (top-1 x GFLOPs) count per second, or None and why not."""
    ratio = _accuracy_ratio(base_acc, new_acc)
    if ratio is None:
        return None, (f"no top-1 on {_missing_sides(base_acc.get('top1'), new_acc.get('top1')) or 'BASE (0)'} "
                      "(unlabelled images or random weights)")
    if name == "vops":
        base, new = base_acc.get("gflops"), new_acc.get("gflops")
        if not base or not new:
            return None, f"no GFLOPs on {_missing_sides(base or None, new or None)} (catalog `gflops` key)"
        ratio *= new / base
    return ratio, ""


def verdict_for(ratios: Sequence[float], timed: int, limits: Sequence, base_acc: dict, new_acc: dict,
                case_id: str, cells: Sequence[Cell] | None = None) -> ABVerdict:
    """Estimate, pairing validity and judgements from the clean pairs' ratios (``timed`` pairs were timed)."""
    return judge(ratio_interval(ratios, case_id, cells), pair_validity(ratios, timed, cells), limits, base_acc,
                 new_acc)


def compare_pair(new_ms: Sequence[float], base_ms: Sequence[float], limits: Sequence, base_acc: dict,
                 new_acc: dict, case_id: str = "", sessions: Sequence | None = None) -> ABVerdict:
    """The A/B verdict for one pair's per-image latencies (timing order, image i of each side timed together);
    ``sessions``: the [NEW, BASE] session that timed each pair (``timed_with``), None for one session a side."""
    ratios, cells = pool_runs([(new_ms, base_ms, sessions)])
    return verdict_for(ratios, len(new_ms), limits, base_acc, new_acc, case_id, cells)


def _accuracy_ratio(base_acc: dict, new_acc: dict) -> float | None:
    base, new = base_acc.get("top1"), new_acc.get("top1")
    if base is None or new is None or base <= 0:
        return None
    return new / base
