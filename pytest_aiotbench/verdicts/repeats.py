"""``--aiotbench-repeat N``: every case is timed N times, the repeats interleaved across cases (all cases once,
then all again, ...), so a slow minute of the machine lands on one repeat of several cases rather than on every
repeat of one. The case's entry combines its repeats:

* each latency statistic is the median over the repeats (min: the lowest, max: the highest), so ``median`` is
  the median of the repeat medians and VIPS (top-1 / mean latency) uses the median of the repeat means; the
  device score is computed from those;
* ``per_image.latency_ms`` is each image's median over the repeats (what ``compare`` resamples);
* ``repeats``: the per-repeat medians and means and their spread ((max - min) / median of the medians);
* validity (``validity.assess_repeats``): INVALID when any repeat is, or when the repeats disagree by more than
  ``validity.REPEAT_SPREAD_LIMIT``.
Accuracy is the same in every repeat (same model, same images); a difference is reported, never averaged away.
"""

from __future__ import annotations

import numpy as np

from . import ab
from .score import images_per_s, vips as vips_of, vops as vops_of
from .validity import assess_repeats


def repeat_test_id(result_id: str, repeat: int, repeats: range) -> str:
    return result_id if len(repeats) == 1 else f"{result_id}-repeat{repeat}"


def interleave(items: list) -> None:
    """All cases once, then all again (a stable sort by repeat index), never one case N times in a row."""
    def repeat_of(item) -> int:
        param = getattr(getattr(item, "callspec", None), "params", {}).get("aiotbench")
        return param[2] if isinstance(param, tuple) else 0

    items.sort(key=repeat_of)


def combine(entries: list[dict], limits=()) -> dict:
    """One case entry from its repeats' entries (ordered by repeat index); unmeasured repeats are skipped."""
    measured = [e for e in entries if e.get("latency_ms")]
    if not measured:
        return entries[-1]
    first = measured[0]
    out = dict(first)
    stats = [e["latency_ms"] for e in measured]
    combined = {k: float(np.median([s[k] for s in stats])) for k in stats[0]}
    combined["min"] = float(min(s["min"] for s in stats))
    combined["max"] = float(max(s["max"] for s in stats))
    out["latency_ms"] = combined
    per_image = np.median(np.array([e["per_image"]["latency_ms"] for e in measured]), axis=0)
    out["per_image"] = {**first["per_image"], "latency_ms": [float(x) for x in per_image]}
    out["vips"] = vips_of(first["top1"], combined["mean"] / 1e3)
    out["vops"] = vops_of(out["vips"], first.get("gflops"))
    out["images_per_s"] = images_per_s(combined["mean"])
    medians = [s["median"] for s in stats]
    middle = float(np.median(medians))
    spread = (max(medians) - min(medians)) / middle if middle > 0 else 0.0
    identical = all(e["per_image"]["top5"] == first["per_image"]["top5"] for e in measured)
    out["repeats"] = {"n": len(entries), "measured": len(measured), "medians_ms": medians,
                      "means_ms": [s["mean"] for s in stats], "median_of_medians_ms": middle,
                      "spread": round(spread, 4), "accuracy_identical": identical}
    out["validity"] = assess_repeats([((e.get("repeat") or {}).get("index"), e.get("validity")) for e in measured],
                                     medians, spread, identical)
    statuses = [e.get("status") for e in entries]
    out["status"] = next((s for s in ("error", "failed") if s in statuses), out.get("status"))
    out["reason"] = next((e.get("reason") for e in entries if e.get("reason")), None)
    if all(e.get("ab") for e in measured):
        out["ab"] = _pooled_ab(out["id"], measured, limits)
    if _median_memory(measured):
        out["memory"] = _median_memory(measured)
    out.pop("repeat", None)
    return out


def _median_memory(entries: list[dict]) -> dict:
    """The memory figures of the repeat with the median peak (each repeat measured in its own fresh process);
    {} when no repeat has a peak."""
    memories = sorted((e["memory"] for e in entries if (e.get("memory") or {}).get("peak_mb") is not None),
                      key=lambda m: m["peak_mb"])
    return memories[(len(memories) - 1) // 2] if memories else {}


def _pooled_ab(case_id: str, measured: list[dict], limits) -> dict:
    """The A/B verdict over the clean pairs of every repeat, in repeat order."""
    ratios, cells = ab.pool_runs([(e["per_image"]["latency_ms"], e["ab"]["baseline"]["per_image"]["latency_ms"],
                                   e["ab"].get("timed_with")) for e in measured])
    from ..inputs.limits import case_limits

    limits = case_limits(limits, measured[0].get("fail_on"))
    last = measured[-1]["ab"]
    base_acc = {k: last["baseline"].get(k) for k in ("top1", "top5", "gflops")}
    new_acc = {k: measured[0].get(k) for k in ("top1", "top5", "gflops")}
    base_acc["memory"] = _median_memory([e["ab"]["baseline"] for e in measured]).get("peak_mb")
    new_acc["memory"] = _median_memory(measured).get("peak_mb")
    timed = sum(len(e["per_image"]["latency_ms"]) for e in measured)
    result = ab.verdict_for(ratios, timed, limits, base_acc, new_acc, case_id, cells)
    return {**last, **result.as_dict()}
