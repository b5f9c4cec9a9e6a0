"""Interleaved A/B statistics: is the candidate (NEW) slower than the baseline (BASE) on the same machine?

Both models are timed alternately on the same images (ABBA: image 0 NEW then BASE, image 1 BASE then NEW, ...),
so contention and drift hit both sides of a pair alike. Per image the ratio NEW/BASE is taken; the estimate is
the median of those paired ratios with a seeded bootstrap 95 % interval, over the **clean pairs**: another process
only ever adds time, and when it lands on one side of a pair it moves that pair's ratio either way (a preempted
baseline can make a 4x slower candidate look faster). A pair is clean when both sides took at most
``CLEAN_FACTOR`` x their own 25th percentile, which is what the image costs without interference. A latency
limit ``+5%`` is crossed only when the whole interval lies above 1.05.

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

REGRESSION, NO_REGRESSION, CANNOT_JUDGE = "regression", "no regression", "cannot judge"
NOT_GATED = "not gated"  # no --aiotbench-fail-on limit applies: the ratio is reported, nothing is decided


def new_first(pair_index: int) -> bool:
    """ABBA order: NEW runs first in even pairs, second in odd ones, so neither side always follows the other."""
    return pair_index % 2 == 0


@dataclass(frozen=True)
class RatioEstimate:
    median: float  # median of the paired NEW/BASE latency ratios
    low: float
    high: float
    pairs: int

    def as_dict(self) -> dict:
        finite = lambda x: x if math.isfinite(x) else None  # noqa: E731 (no pairs: no ratio, not NaN in JSON)
        return {"median": finite(self.median), "low": finite(self.low), "high": finite(self.high),
                "pairs": self.pairs, "confidence": CONFIDENCE}


def paired_ratios(new_ms: Sequence[float], base_ms: Sequence[float]) -> np.ndarray:
    new, base = np.asarray(new_ms, dtype=float), np.asarray(base_ms, dtype=float)
    if new.shape != base.shape:
        raise ValueError(f"A/B needs one latency per image on both sides ({new.size} vs {base.size})")
    keep = base > 0
    return new[keep] / base[keep]


def clean_ratios(new_ms: Sequence[float], base_ms: Sequence[float]) -> np.ndarray:
    """NEW/BASE ratios of the pairs where neither side was slowed by interference (see module doc), in order."""
    new, base = np.asarray(new_ms, dtype=float), np.asarray(base_ms, dtype=float)
    ratios = paired_ratios(new, base)
    if new.size == 0:
        return ratios
    keep = base > 0
    new, base = new[keep], base[keep]
    clean = (new <= CLEAN_FACTOR * np.percentile(new, 25)) & (base <= CLEAN_FACTOR * np.percentile(base, 25))
    return ratios[clean]


def ratio_interval(ratios: Sequence[float], case_id: str = "") -> RatioEstimate:
    """Median of the ratios and its percentile-bootstrap interval; seeded by case id, so a given set of
    samples always gets the same verdict."""
    r = np.asarray(ratios, dtype=float)
    if r.size == 0:
        return RatioEstimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng([SEED, zlib.crc32(case_id.encode())])
    medians = np.empty(RESAMPLES)
    chunk = max(1, 2_000_000 // r.size)
    for start in range(0, RESAMPLES, chunk):
        rows = min(chunk, RESAMPLES - start)
        medians[start:start + rows] = np.median(r[rng.integers(0, r.size, size=(rows, r.size))], axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return RatioEstimate(float(np.median(r)), float(low), float(high), int(r.size))


def pair_validity(ratios: Sequence[float], timed: int | None = None) -> dict:
    """VALID/INVALID for the pairing itself, given the clean pairs' ratios (the per-case validity judges each
    side's raw latencies) and how many pairs were timed."""
    r = np.asarray(ratios, dtype=float)
    reasons, checks = [], {"clean_pairs": int(r.size), "pairs": int(timed if timed is not None else r.size)}
    if r.size < MIN_PAIRS:
        reasons.append(f"too few clean pairs: {r.size} of {checks['pairs']} (need >= {MIN_PAIRS})")
    if r.size >= 4:
        half = r.size // 2
        first, second = ratio_interval(r[:half], "first half"), ratio_interval(r[half:], "second half")
        drift = second.median / first.median - 1
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
