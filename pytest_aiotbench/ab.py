"""Interleaved A/B statistics: is the candidate (NEW) slower than the baseline (BASE) on the same machine?

Both models are timed alternately on the same images (ABBA: image 0 NEW then BASE, image 1 BASE then NEW, ...),
so contention and drift hit both sides of a pair alike. Per image the ratio NEW/BASE is taken, over the **clean
pairs**: another process only ever adds time, and when it lands on one side of a pair it moves that pair's ratio
either way (a preempted baseline can make a 4x slower candidate look faster). A pair is clean when both sides took
at most ``CLEAN_FACTOR`` x their own 25th percentile, which is what the image costs without interference.

The estimate balances the order: whichever model runs second in a pair runs with the other's data in the caches
(measured here: the NEW-first and BASE-first halves of an identical-copy A/B differ by 0.4-1.5 %), so the ratio is
the geometric mean of the two halves' medians. Its 95 % interval comes from a moving-block bootstrap over
consecutive ABBA units (neighbouring pairs share the machine's state), then widened by ``SESSION_FLOOR``: two
sessions of the **same file** in one process differ by a stable offset that no resampling of pairs can see
(measured with benchmarks/ab_noise.py: swapping the roles inverts it, one session against itself shows none,
which file or which session was created first does not decide its sign, and it can change within seconds: SD
0.35 %, up to 1.1 %, on MobileNetV1 TFLite int8, with or without a hog). A latency limit ``+5%`` is crossed only
when the whole widened interval lies above 1.05.

The pairing itself can be untrustworthy: too few clean pairs, or ratios that drift (first half vs second half of
the pairs: medians more than 10 % apart and their bootstrap intervals disjoint), e.g. when one model throttles
mid-run. Then the latency verdict is "cannot judge", never a pass or a regression. Accuracy is exact and always
judged.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

RESAMPLES = 2000
SEED = 20261129
CONFIDENCE = 0.95  # two-sided interval; its low end decides a regression, its high end an improvement
MIN_PAIRS = 30  # clean pairs needed for a verdict
CLEAN_FACTOR = 1.5
PAIR_DRIFT_LIMIT = 0.10  # |median ratio of the second half / of the first half - 1|
BLOCK_UNITS = 8  # ABBA units (2 pairs each) resampled together: contention outlasts a pair (see ratio_interval)
SESSION_FLOOR = 0.015  # ~4 SD of the offset between two sessions of one file (module doc): no finer resolution

REGRESSION, NO_REGRESSION, CANNOT_JUDGE = "regression", "no regression", "cannot judge"
NOT_GATED = "not gated"  # no --aiotbench-fail-on limit applies: the ratio is reported, nothing is decided


def new_first(pair_index: int) -> bool:
    """ABBA order: NEW runs first in even pairs, second in odd ones, so neither side always follows the other."""
    return pair_index % 2 == 0


@dataclass(frozen=True)
class RatioEstimate:
    median: float  # order-balanced median of the clean pairs' NEW/BASE latency ratios (ratio_interval)
    low: float
    high: float
    pairs: int

    def as_dict(self) -> dict:
        finite = lambda x: x if math.isfinite(x) else None  # noqa: E731 (no pairs: no ratio, not NaN in JSON)
        return {"median": finite(self.median), "low": finite(self.low), "high": finite(self.high),
                "pairs": self.pairs, "confidence": CONFIDENCE, "session_floor": SESSION_FLOOR}


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


def ratio_interval(ratios: Sequence[float], case_id: str = "") -> RatioEstimate:
    """Order-balanced ratio (``_balanced``) of the clean pairs (NaN = not clean) and its 95 % interval from a
    moving-block bootstrap over runs of ``BLOCK_UNITS`` consecutive ABBA units: contention and the machine's
    state last longer than one image, so neighbouring pairs are not independent, and resampling single pairs
    makes the interval too narrow (tests/test_ab_validity.py: 32 of 40 vs 36 of 40 hold 1.0). Blocks start on a
    NEW-first pair, so
    every resample keeps the design's balance of both orders. The interval is then widened by
    ``SESSION_FLOOR`` each way: two sessions of one file differ by that much (see module doc). Seeded by case
    id, so a given set of samples always gets the same verdict."""
    units = _units(ratios)
    clean = np.isfinite(units)
    pairs = int(clean.sum())
    if not clean[:, 0].any() or not clean[:, 1].any():  # one order never ran clean: nothing to balance
        return RatioEstimate(float("nan"), float("nan"), float("nan"), pairs)
    point = float(_balanced(units))
    rng = np.random.default_rng([SEED, zlib.crc32(case_id.encode())])
    n = units.shape[0]
    length = min(BLOCK_UNITS, n)
    blocks = -(-n // length)
    offsets = np.arange(length)
    estimates = np.empty(RESAMPLES)
    chunk = max(1, 400_000 // n)
    for start in range(0, RESAMPLES, chunk):
        rows = min(chunk, RESAMPLES - start)
        starts = rng.integers(0, n - length + 1, size=(rows, blocks))
        index = (starts[:, :, None] + offsets).reshape(rows, -1)[:, :n]
        estimates[start:start + rows] = _balanced(units[index], axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.nanpercentile(estimates, [tail, 100 - tail])
    return RatioEstimate(point, float(low) / (1 + SESSION_FLOOR), float(high) * (1 + SESSION_FLOOR), pairs)


def pair_validity(ratios: Sequence[float], timed: int | None = None) -> dict:
    """VALID/INVALID for the pairing itself, given the pairs' clean ratios (``clean_ratios``: NaN = not clean;
    the per-case validity judges each side's raw latencies) and how many pairs were timed."""
    r = np.asarray(ratios, dtype=float)
    units = _units(r)
    clean = int(np.isfinite(units).sum())
    per_order = np.isfinite(units).sum(axis=0)
    reasons, checks = [], {"clean_pairs": clean, "pairs": int(timed if timed is not None else clean)}
    if clean < MIN_PAIRS or per_order.min() < MIN_PAIRS // 2:
        reasons.append(f"too few clean pairs: {clean} of {checks['pairs']} (need >= {MIN_PAIRS}, "
                       f"{MIN_PAIRS // 2} with each model first)")
    if per_order.min() >= 2:
        half = units.shape[0] // 2 * 2  # whole units on both sides of the cut
        first, second = ratio_interval(r[:half], "first half"), ratio_interval(r[half:], "second half")
        drift = second.median / first.median - 1
        if math.isfinite(drift):
            checks["ratio_drift"] = round(drift, 4)
        # Noise alone moves the halves' medians apart under contention; a drift counts only when the halves'
        # intervals do not even overlap (the ratio itself changed during the run, e.g. one model throttled).
        apart = second.low > first.high or first.low > second.high
        if abs(drift) > PAIR_DRIFT_LIMIT and apart:
            reasons.append(f"ratio drift: second-half median ratio {drift:+.0%} vs first half, intervals apart "
                           f"(limit {PAIR_DRIFT_LIMIT:.0%})")
    return {"valid": not reasons, "reasons": reasons, "notes": [], "checks": checks}


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
    latency) use the paired ratio's interval; vips/vops that interval combined with the exact accuracy ratio;
    top1/top5 the exact accuracy delta (same images on both sides)."""
    result = ABVerdict(estimate, validity)
    for limit in limits:
        name, threshold = limit.metric.name, limit.threshold
        if limit.metric.unit == "pt":
            base, new = base_acc.get(name), new_acc.get(name)
            if base is None or new is None:
                continue
            delta = (new - base) * 100
            verdict = REGRESSION if delta < threshold else NO_REGRESSION
            result.judgements.append(Judgement(name, verdict, f"{name} {delta:+.2f}pt ({base:.1%} -> {new:.1%}; "
                                                              f"limit {limit})"))
            continue
        if limit.metric.worse > 0:  # a latency: regression when even the low end is beyond 1 + limit
            bound, point, beyond = estimate.low, estimate.median, estimate.low > 1 + threshold / 100
        else:  # vips/vops = accuracy / latency: its high end comes from the latency ratio's low end
            acc_ratio = _accuracy_ratio(base_acc, new_acc)
            if acc_ratio is None:
                continue
            point, bound = acc_ratio / estimate.median, acc_ratio / estimate.low
            beyond = bound < 1 + threshold / 100
        text = (f"{name} x{point:.3f} (95% interval of the paired ratio {estimate.low:.3f}-{estimate.high:.3f}; "
                f"limit {limit})")
        if not validity["valid"]:
            verdict, text = CANNOT_JUDGE, f"{text}; pairing INVALID: {'; '.join(validity['reasons'])}"
        else:
            verdict = REGRESSION if beyond else NO_REGRESSION
        result.judgements.append(Judgement(name, verdict, text))
    return result


def verdict_for(ratios: Sequence[float], timed: int, limits: Sequence, base_acc: dict, new_acc: dict,
                case_id: str) -> ABVerdict:
    """Estimate, pairing validity and judgements from the clean pairs' ratios (``timed`` pairs were timed)."""
    return judge(ratio_interval(ratios, case_id), pair_validity(ratios, timed), limits, base_acc, new_acc)


def compare_pair(new_ms: Sequence[float], base_ms: Sequence[float], limits: Sequence, base_acc: dict,
                 new_acc: dict, case_id: str = "") -> ABVerdict:
    """The A/B verdict for one pair's per-image latencies (timing order, image i of each side timed together)."""
    return verdict_for(clean_ratios(new_ms, base_ms), len(new_ms), limits, base_acc, new_acc, case_id)


def _accuracy_ratio(base_acc: dict, new_acc: dict) -> float | None:
    base, new = base_acc.get("top1"), new_acc.get("top1")
    if base is None or new is None or base <= 0:
        return None
    return new / base
