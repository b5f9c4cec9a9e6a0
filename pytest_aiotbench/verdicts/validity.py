"""Is a case's latency trustworthy? MLPerf LoadGen's VALID/INVALID, adapted to one benchmark case.

A case is INVALID (its latency cannot be used to judge a change; its accuracy is untouched) when any of:

* too few timed images for the percentile reported (fewer than ``MIN_TAIL_IMAGES`` beyond the p90);
* drift: the median of the second half of the images differs from the first half's by more than ``DRIFT_LIMIT``;
* spread: p90 / median above ``SPREAD_LIMIT`` (a CNN costs the same on every image: a wide spread is interference);
* contention: this process's threads were ready to run but waiting for a core (the kernel's run-queue delay,
  /proc/self/task/*/schedstat) for more than ``WAIT_LIMIT`` of the time they wanted the CPU: the direct measure
  of another process taking the core from the timed inference;
* machine load: other processes kept more than ``OTHER_BUSY_LIMIT`` of the cores this case did not use busy
  during the timed images (from /proc/stat, this process's own CPU time taken out; the busiest ones are named),
  or the 1-minute load average ended above the number of cores;
* CPU frequency governor ``powersave`` (other governors are noted, not judged).

Pure functions over samples and the machine-load figures ``run/load.py`` measured: tested on constructed values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

REPORTED_PERCENTILE = 90
MIN_TAIL_IMAGES = 5  # images above the reported percentile: p90 needs >= 50 timed images
DRIFT_LIMIT = 0.10  # |second-half median / first-half median - 1|
SPREAD_LIMIT = 1.5  # p90 / median
OTHER_BUSY_LIMIT = 0.5  # share of the cores left free by this case that other processes may keep busy
WAIT_LIMIT = 0.10  # share of this process's runnable time spent waiting on a run queue


def min_images(percentile: float = REPORTED_PERCENTILE) -> int:
    return int(np.ceil(MIN_TAIL_IMAGES / (1 - percentile / 100) - 1e-9))


# ------------------------------------------------------------------------------------------------- the verdict

def assess(latencies_ms: Sequence[float], load: dict | None = None,
           percentile: float = REPORTED_PERCENTILE) -> dict:
    """``{"valid", "reasons", "notes", "checks"}`` for one case's per-image latencies (in timing order)."""
    lat = np.asarray(latencies_ms, dtype=float)
    reasons, notes, checks = [], [], {"images": int(lat.size)}
    needed = min_images(percentile)
    if lat.size < needed:
        reasons.append(f"too few images: {lat.size} timed, p{percentile:g} needs >= {needed}")
    if lat.size >= 2:
        half = lat.size // 2
        first, second = float(np.median(lat[:half])), float(np.median(lat[half:]))
        drift = second / first - 1 if first > 0 else 0.0
        checks["drift"] = round(drift, 4)
        if abs(drift) > DRIFT_LIMIT:
            reasons.append(f"drift: second-half median {drift:+.0%} vs first half (limit {DRIFT_LIMIT:.0%})")
        median = float(np.median(lat))
        spread = float(np.percentile(lat, percentile)) / median if median > 0 else 1.0
        checks["spread"] = round(spread, 4)
        if spread > SPREAD_LIMIT:
            reasons.append(f"spread: p{percentile:g}/median {spread:.2f} (limit {SPREAD_LIMIT:g})")
    if load:
        checks.update(waited_share=load.get("waited_share"), other_busy_cores=load["other_busy_cores"],
                      loadavg_1m=load["loadavg_1m"])
        if load.get("waited_share") is not None and load["waited_share"] > WAIT_LIMIT:
            reasons.append(f"contention: waited for a core {load['waited_share']:.0%} of the time it wanted one "
                           f"(limit {WAIT_LIMIT:.0%})")
        free = max(load["cores"] - load["threads"], 0)
        allowed = OTHER_BUSY_LIMIT * free
        if load["other_busy_cores"] > allowed:
            names = ", ".join(f"{p['name']} ({p['cores']:.1f})" for p in load["busy_processes"][:3])
            reasons.append(f"load: other processes kept {load['other_busy_cores']:.2f} of {load['cores']} cores "
                           f"busy (limit {allowed:.2f})" + (f": {names}" if names else ""))
        if load["loadavg_1m"] is not None and load["loadavg_1m"] > load["cores"]:
            reasons.append(f"load: load average {load['loadavg_1m']:.2f} > {load['cores']} cores")
        governor = load.get("governor")
        if governor == "powersave":
            reasons.append("governor: powersave (clock held low)")
        elif governor and governor != "performance":
            notes.append(f"governor: {governor} (clock may ramp during the case)")
    else:
        notes.append("machine load not measured (not on this host)")
    return {"valid": not reasons, "reasons": reasons, "notes": notes, "checks": checks}


def label(validity: dict | None) -> str:
    """Short form for tables: VALID, INVALID (first reason's kind), or '-' when not assessed."""
    if not validity:
        return "-"
    if validity["valid"]:
        return "VALID"
    return "INVALID (" + ", ".join(kinds(validity)) + ")"


def kinds(validity: dict) -> list[str]:
    """The checks that failed (``drift``, ``load``, ...), without the per-repeat prefix of combined repeats."""
    out = []
    for reason in validity.get("reasons") or []:
        if reason.startswith("repeat ") and ": " in reason:
            reason = reason.split(": ", 1)[1]
        out.append(reason.split(":", 1)[0])
    return list(dict.fromkeys(out))
