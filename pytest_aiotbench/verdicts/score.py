"""The score: accuracy (with its sampling interval), latency statistics, VIPS/VOPS and the device score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..run.emulation import excluding_emulated


def accuracy(topk_rows: np.ndarray, labels: Sequence[int], k: int) -> float:
    """Fraction of images whose label is among the first k predictions."""
    rows = np.asarray(topk_rows)
    if len(rows) == 0:
        return float("nan")
    hits = (rows[:, :k] == np.asarray(labels)[:, None]).any(axis=1)
    return float(hits.mean())


def wilson_interval(hits: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """Wilson score interval of a binomial proportion (95 % by default): the sampling error of an accuracy measured
    on n images (on 500 images at 0.72 top-1: 0.679-0.757). None for n = 0."""
    if n <= 0:
        return None
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if hits == 0 else max(0.0, centre - half)  # exact at the ends, not a rounding error off them
    hi = 1.0 if hits == n else min(1.0, centre + half)
    return float(lo), float(hi)


def latency_stats_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(latencies_s, dtype=np.float64) * 1e3
    q1, median, q3, p90 = np.percentile(ms, [25, 50, 75, 90])
    return {
        "min": float(ms.min()),
        "median": float(median),
        "mean": float(ms.mean()),
        "p90": float(p90),
        "max": float(ms.max()),
        "stddev": float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
        "iqr": float(q3 - q1),
    }


def images_per_s(latency_ms: dict) -> float | None:
    """Single-stream throughput: one image at a time, so 1 / mean latency."""
    return 1e3 / latency_ms["mean"] if latency_ms["mean"] > 0 else None


def vips(top1: float | None, mean_latency_s: float) -> float | None:
    """Valid Images Per Second: the share of correct answers delivered per second of inference."""
    if top1 is None or not mean_latency_s > 0:
        return None
    return top1 / mean_latency_s


def vops(vips_value: float | None, gflops: float | None) -> float | None:
    """VIPS weighted by the model's cost (GFLOPs per image): valid GFLOP per second."""
    if vips_value is None or not gflops:
        return None
    return vips_value * gflops


@dataclass
class DeviceScore:
    vips: float | None
    vops: float | None
    cases: int
    partial: bool
    missing: list[str]
    partial_reasons: list[str]


def device_score(results: Iterable[dict], canonical_ids: Iterable[str] | None,
                 data_gaps: Sequence[str] = ()) -> DeviceScore:
    """Sum VIPS/VOPS over the scored cases. Partial unless every canonical case was scored on complete data
    (``data_gaps`` says how the data fell short, e.g. unlabeled or cut by --aiotbench-images)."""
    scored, emulated = excluding_emulated(r for r in results if r.get("vips") is not None)
    reasons = list(data_gaps)
    if emulated:
        reasons.append(f"{len(emulated)} emulated case(s) not scored (emulated latency is not a device's speed)")
    if canonical_ids is None:
        missing = []
        reasons.append("the canonical catalog was not found")
    else:
        missing = sorted(set(canonical_ids) - {r["id"] for r in scored})
        if missing:
            reasons.append(f"{len(missing)} canonical case(s) not scored")
    if not scored:
        reasons.append("no case was scored")
    vops_terms = [r["vops"] for r in scored if r.get("vops") is not None]
    return DeviceScore(
        vips=sum(r["vips"] for r in scored) if scored else None,
        vops=sum(vops_terms) if vops_terms else None,
        cases=len(scored),
        partial=bool(reasons),
        missing=missing,
        partial_reasons=reasons,
    )
