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
* CPU frequency governor ``powersave`` (other governors are noted, not judged);
* throttled (``conditions``, sampled where the case ran: run/conditions.py): in some sample no CPU ran above
  ``CLOCK_SHARE`` of its own rated ``cpuinfo_max_freq`` (without ratings: the fastest CPU's clock fell below
  that share of the highest clock seen during the case),
  or a thermal zone reached its lowest passive/hot/critical trip point.

The same verdict, in the same shape (``{"valid", "reasons", "notes", "checks"}``), is built here for the two other
things whose latency can be untrustworthy, so every validity limit is named once, in this module:

* an A/B pairing (``assess_pairing``, the figures from ``ab.pair_validity``): too few clean pairs, or a ratio
  that drifts between the halves of the run (``PAIR_DRIFT_LIMIT``);
* a case timed ``--aiotbench-repeat N`` times (``assess_repeats``): any repeat INVALID, or the repeats' medians
  apart by more than ``REPEAT_SPREAD_LIMIT``.

``label`` and ``kinds`` are the only readers the tables, the compare and the progress line use.

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
# A/B pairing (ab.py)
MIN_PAIRS = 30  # clean pairs needed for a verdict, half of them with each model first
MIN_CELL_PAIRS = 2  # clean pairs of each order needed in every cell of the sessions' cross
PAIR_DRIFT_LIMIT = 0.10  # |median ratio of the second half / of the first half - 1|
# --aiotbench-repeat (repeats.py)
REPEAT_SPREAD_LIMIT = 0.10  # (max - min) / median of the repeats' medians
# device conditions (run/conditions.py)
CLOCK_SHARE = 0.8  # throttled: no CPU above this share of its own rated max during the case


def min_images(percentile: float = REPORTED_PERCENTILE) -> int:
    return int(np.ceil(MIN_TAIL_IMAGES / (1 - percentile / 100) - 1e-9))


# ------------------------------------------------------------------------------------------------- the verdict

def throttling(conditions: dict | None) -> list[str]:
    """The ``throttled`` reasons of a case's sampled conditions (``run.conditions.summarize``): none when
    nothing was exposed ("not exposed" is not a verdict)."""
    if not conditions:
        return []
    reasons = []
    cpu = conditions.get("cpu_khz")
    if isinstance(cpu, dict) and cpu.get("top_share_min") is not None:  # per-CPU rated maxima
        if cpu["top_share_min"] < CLOCK_SHARE:
            reasons.append(f"throttled: CPU clock fell to {cpu['top_share_min']:.0%} of its rated max "
                           f"(fastest CPU down to {cpu['top_min'] / 1e6:.2f} GHz; limit {CLOCK_SHARE:.0%})")
    elif isinstance(cpu, dict) and cpu.get("top_min"):  # no rated max exposed: the highest clock seen
        peak = cpu.get("top_max")
        if peak and cpu["top_min"] < CLOCK_SHARE * peak:
            reasons.append(f"throttled: CPU clock fell to {cpu['top_min'] / 1e6:.2f} GHz, "
                           f"{cpu['top_min'] / peak:.0%} of its max {peak / 1e6:.2f} GHz (limit {CLOCK_SHARE:.0%})")
    zones = conditions.get("temp_c")
    if isinstance(zones, dict):
        for name, zone in zones.items():
            trip = zone.get("trip")
            if trip and zone.get("max") is not None and zone["max"] >= trip["temp_c"]:
                reasons.append(f"throttled: {name} reached {zone['max']:.1f} C, its {trip['type']} trip point "
                               f"{trip['temp_c']:.1f} C")
    return reasons


def assess(latencies_ms: Sequence[float] | None, load: dict | None = None,
           percentile: float = REPORTED_PERCENTILE, conditions: dict | None = None) -> dict:
    """``{"valid", "reasons", "notes", "checks"}`` for one case's per-image latencies (in timing order), the
    machine's load and the device's sampled conditions. ``latencies_ms`` None: an offline-scenario case (no
    per-image latency): only the machine's load and conditions are judged."""
    offline = latencies_ms is None
    lat = np.asarray([] if offline else latencies_ms, dtype=float)
    reasons, notes, checks = [], [], {} if offline else {"images": int(lat.size)}
    needed = min_images(percentile)
    if offline:
        notes.append("offline scenario: no per-image latency (drift and spread not judged)")
    elif lat.size < needed:
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
    reasons.extend(throttling(conditions))
    return _verdict(reasons, notes, checks)


def assess_pairing(clean: int, timed: int, each_first: int, thin_cells: Sequence[tuple[int, int]] = (),
                   drift: float | None = None, halves_apart: bool = False) -> dict:
    """The pairing of an A/B (the per-case ``assess`` judges each side's raw latencies): ``clean`` pairs of
    ``timed``, ``each_first`` the clean pairs of the order that has fewer, ``thin_cells`` the (NEW, BASE) session
    pairs with fewer than ``MIN_CELL_PAIRS`` clean pairs of an order, ``drift`` the second half's median ratio
    over the first half's minus 1 and ``halves_apart`` whether the halves' sampling intervals are disjoint."""
    reasons, checks = [], {"clean_pairs": int(clean), "pairs": int(timed)}
    if clean < MIN_PAIRS or each_first < MIN_PAIRS // 2:
        reasons.append(f"too few clean pairs: {clean} of {timed} (need >= {MIN_PAIRS}, "
                       f"{MIN_PAIRS // 2} with each model first)")
    elif thin_cells:
        reasons.append(f"too few clean pairs on sessions {', '.join(f'NEW {j}/BASE {k}' for j, k in thin_cells)} "
                       f"(need >= {MIN_CELL_PAIRS} with each model first on every pair of sessions)")
    if drift is not None and np.isfinite(drift):
        checks["ratio_drift"] = round(float(drift), 4)
        # Noise alone moves the halves' medians apart under contention; a drift counts only when the halves'
        # sampling intervals do not even overlap (the ratio itself changed during the run, e.g. one model
        # throttled; the sessions' offsets are the same in both halves).
        if abs(drift) > PAIR_DRIFT_LIMIT and halves_apart:
            reasons.append(f"ratio drift: second-half median ratio {drift:+.0%} vs first half, intervals apart "
                           f"(limit {PAIR_DRIFT_LIMIT:.0%})")
    return _verdict(reasons, [], checks)


def assess_repeats(repeats: Sequence[tuple[int, dict | None]], medians_ms: Sequence[float], spread: float,
                   accuracy_identical: bool = True) -> dict:
    """A case timed several times: ``repeats`` the (index, validity) of each measured repeat, ``medians_ms`` their
    medians and ``spread`` (max - min) / median of those. INVALID when any repeat is (its reasons, prefixed
    ``repeat N: ``) or when the repeats disagree by more than ``REPEAT_SPREAD_LIMIT``."""
    reasons = [f"repeat {index}: {r}" for index, v in repeats for r in (v or {}).get("reasons", [])]
    if spread > REPEAT_SPREAD_LIMIT:
        reasons.append(f"repeats disagree: medians {min(medians_ms):.3g}-{max(medians_ms):.3g} ms, spread "
                       f"{spread:.0%} (limit {REPEAT_SPREAD_LIMIT:.0%})")
    notes = list(dict.fromkeys(n for _, v in repeats for n in (v or {}).get("notes", [])))
    if not accuracy_identical:
        notes.append("predictions differ between repeats: accuracy is the first repeat's")
    return _verdict(reasons, notes, {"repeats": len(repeats), "repeat_spread": round(spread, 4)})


def _verdict(reasons: list[str], notes: list[str], checks: dict) -> dict:
    """The one shape of every validity in a report: valid exactly when there is no reason against it."""
    return {"valid": not reasons, "reasons": reasons, "notes": notes, "checks": checks}


# ------------------------------------------------------------------------------------------------- the readers

NOT_ASSESSED = "-"


def label(validity: dict | None, with_kinds: bool = True) -> str:
    """Short form for tables: VALID, INVALID (the failed checks' kinds; left out with ``with_kinds=False``), or
    '-' when not assessed."""
    if not validity:
        return NOT_ASSESSED
    if validity["valid"]:
        return "VALID"
    return "INVALID (" + ", ".join(kinds(validity)) + ")" if with_kinds else "INVALID"


def case_label(case: dict, with_kinds: bool = False) -> str:
    """``label`` of a report's case entry: '-' also when the case has no latency (skipped, failed before timing)."""
    return label(case.get("validity") if case.get("latency_ms") else None, with_kinds)


def kinds(validity: dict) -> list[str]:
    """The checks that failed (``drift``, ``load``, ...), without the per-repeat prefix of combined repeats."""
    out = []
    for reason in validity.get("reasons") or []:
        if reason.startswith("repeat ") and ": " in reason:
            reason = reason.split(": ", 1)[1]
        out.append(reason.split(":", 1)[0])
    return list(dict.fromkeys(out))
