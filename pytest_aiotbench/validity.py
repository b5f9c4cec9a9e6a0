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

Pure functions over samples and /proc snapshots: ``snapshot()`` reads the machine, everything else is tested on
constructed values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

REPORTED_PERCENTILE = 90
MIN_TAIL_IMAGES = 5  # images above the reported percentile: p90 needs >= 50 timed images
DRIFT_LIMIT = 0.10  # |second-half median / first-half median - 1|
SPREAD_LIMIT = 1.5  # p90 / median
OTHER_BUSY_LIMIT = 0.5  # share of the cores left free by this case that other processes may keep busy
WAIT_LIMIT = 0.10  # share of this process's runnable time spent waiting on a run queue
CLOCK_SHARE = 0.8  # throttled: the fastest CPU's clock below this share of its maximum during the case
BUSY_PROCESS_CORES = 0.2  # a process using at least this many cores during the case is named
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def min_images(percentile: float = REPORTED_PERCENTILE) -> int:
    return int(np.ceil(MIN_TAIL_IMAGES / (1 - percentile / 100) - 1e-9))


# ------------------------------------------------------------------------------------------- machine snapshots

def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _proc_jiffies(stat_text: str) -> tuple[str, int]:
    """(command name, utime + stime) from a /proc/PID/stat line (the name may hold spaces and parentheses)."""
    name = stat_text[stat_text.index("(") + 1:stat_text.rindex(")")]
    fields = stat_text[stat_text.rindex(")") + 2:].split()
    return name, int(fields[11]) + int(fields[12])  # fields 14 and 15 of the full line


def _own_schedstat() -> tuple[int, int] | None:
    """(ns on a CPU, ns ready but waiting on a run queue), summed over this process's threads."""
    run = wait = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    for task in tasks:
        text = _read(f"/proc/self/task/{task}/schedstat")
        if text:
            fields = text.split()
            run, wait = run + int(fields[0]), wait + int(fields[1])
    return run, wait


def snapshot() -> dict | None:
    """CPU accounting of the whole machine, of this process and of every other process; None where /proc is
    missing (not Linux). Taken before and after the timed images, never between them."""
    stat = _read("/proc/stat")
    own = _read("/proc/self/stat")
    if not stat or not own:
        return None
    cpu = [int(v) for v in stat.splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal: steal is time another VM took from us, i.e. contention too
    busy = sum(cpu[i] for i in (0, 1, 2, 5, 6, 7) if i < len(cpu))
    total = busy + sum(cpu[i] for i in (3, 4) if i < len(cpu))
    processes = {}
    self_pid = os.getpid()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != self_pid:
            text = _read(f"/proc/{entry.name}/stat")
            if text:
                try:
                    processes[int(entry.name)] = _proc_jiffies(text)
                except (ValueError, IndexError):
                    continue
    loadavg = _read("/proc/loadavg")
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    from time import monotonic

    return {"time": monotonic(), "schedstat": _own_schedstat(), "busy": busy, "total": total, "own": _proc_jiffies(own)[1],
            "processes": processes, "cores": os.cpu_count() or 1,
            "loadavg": float(loadavg.split()[0]) if loadavg else None,
            "governor": governor.strip() if governor else None}


def machine_load(before: dict | None, after: dict | None, threads: int = 1) -> dict | None:
    """What the rest of the machine did between two snapshots: cores kept busy by other processes (total CPU
    time minus this process's), the busiest of them, the load average at the end, the governor."""
    if not before or not after or after["total"] <= before["total"]:
        return None
    cores = after["cores"]
    span = after["total"] - before["total"]  # jiffies summed over all cores
    others = max(0, (after["busy"] - before["busy"]) - (after["own"] - before["own"]))
    seconds = max(after["time"] - before["time"], 1e-9)
    busy = []
    for pid, (name, jiffies) in after["processes"].items():
        if pid in before["processes"]:
            used = (jiffies - before["processes"][pid][1]) / _TICKS / seconds
            if used >= BUSY_PROCESS_CORES:
                busy.append({"pid": pid, "name": name, "cores": round(used, 2)})
    busy.sort(key=lambda p: -p["cores"])
    waited = None
    if before.get("schedstat") and after.get("schedstat"):
        ran = after["schedstat"][0] - before["schedstat"][0]
        wait = after["schedstat"][1] - before["schedstat"][1]
        waited = round(wait / (ran + wait), 4) if ran + wait > 0 else 0.0
    return {"cores": cores, "threads": threads, "waited_share": waited,
            "other_busy_cores": round(others / span * cores, 3),
            "busy_processes": busy[:5], "loadavg_1m": after["loadavg"], "governor": after["governor"]}


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


def assess(latencies_ms: Sequence[float], load: dict | None = None,
           percentile: float = REPORTED_PERCENTILE, conditions: dict | None = None) -> dict:
    """``{"valid", "reasons", "notes", "checks"}`` for one case's per-image latencies (in timing order), the
    machine's load and the device's sampled conditions."""
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
    reasons.extend(throttling(conditions))
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
