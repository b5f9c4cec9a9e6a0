"""Device conditions while a case runs: every CPU's current clock and the thermal zones' temperatures (with their
trip points; on Android also the battery's), read from sysfs at a low rate between two timed inferences, never
during one (the timing loops call ``Sampler.maybe`` where they already report progress: no thread competes with
the timed call for the GIL or a core). Also the cooldown between cases and the per-window summary of sustained mode.

Where a machine exposes no clock or no zone, the summary says ``"not exposed"``, never 0.
The sysfs root is ``/`` unless ``$AIOTBENCH_SYSFS_ROOT`` names another (tests point it at a constructed tree;
the adb test device sets it for the runner). Ships in the device runner bundle: standard library only at import
numpy inside ``windows``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from time import perf_counter as monotonic, sleep  # the timing loops' clock: samples line up with images
from typing import Callable, Sequence

from ..inputs.options import COOLDOWN_MAX_S  # noqa: F401 (the bound of a cooldown: one definition)

SYSFS_ENV = "AIOTBENCH_SYSFS_ROOT"
NOT_EXPOSED = "not exposed"
SAMPLE_INTERVAL_S = 0.5  # a few sysfs reads every half second: nothing next to an inference loop
COOLDOWN_POLL_S = 1.0
# Trip types that mean the kernel starts throttling (or shuts down): an "active" trip only starts a fan.
THROTTLE_TRIPS = ("passive", "hot", "critical")


def sysfs_root() -> Path:
    return Path(os.environ.get(SYSFS_ENV) or "/")


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _index(path: Path) -> int:
    found = re.search(r"(\d+)$", path.name)
    return int(found.group(1)) if found else 0


class Source:
    """The files to read, found once per case (globbing on every sample would cost more than reading them)."""

    def __init__(self, root: str | Path | None = None) -> None:
        root = Path(root) if root is not None else sysfs_root()
        cpus = sorted(root.glob("sys/devices/system/cpu/cpu[0-9]*"), key=_index)
        self.cpus = [(c.name, c / "cpufreq/scaling_cur_freq") for c in cpus
                     if (c / "cpufreq/scaling_cur_freq").is_file()]
        # per CPU: big.LITTLE clusters have different maxima
        self.rated = [_read_int(root / f"sys/devices/system/cpu/{name}/cpufreq/cpuinfo_max_freq")
                      for name, _ in self.cpus]
        self.rated_max_khz = max((r for r in self.rated if r), default=None)
        self.zones: list[tuple[str, Path, float]] = []  # (name, temp file, scale to degrees C)
        self.trips: dict[str, dict] = {}  # zone -> lowest throttling trip {"temp_c", "type"}
        names: set[str] = set()
        for zone in sorted(root.glob("sys/class/thermal/thermal_zone[0-9]*"), key=_index):
            if not (zone / "temp").is_file():
                continue
            try:
                kind = (zone / "type").read_text().strip() or zone.name
            except OSError:
                kind = zone.name
            name = kind if kind not in names else f"{kind}#{_index(zone)}"
            names.add(name)
            self.zones.append((name, zone / "temp", 1e-3))  # millidegrees
            trips = []
            for trip in zone.glob("trip_point_*_temp"):
                temp = _read_int(trip)
                try:
                    ttype = (zone / trip.name.replace("_temp", "_type")).read_text().strip()
                except OSError:
                    ttype = "unknown"
                if temp is not None and temp > 0 and ttype in THROTTLE_TRIPS + ("unknown",):
                    trips.append((temp * 1e-3, ttype))
            if trips:
                low = min(trips)
                self.trips[name] = {"temp_c": round(low[0], 1), "type": low[1]}
        battery = root / "sys/class/power_supply/battery/temp"
        if battery.is_file():  # Android: tenths of a degree
            self.zones.append(("battery", battery, 0.1))

    @property
    def exposed(self) -> bool:
        return bool(self.cpus or self.zones)

    def read(self) -> dict:
        """One sample: ``khz`` per CPU (None for one that could not be read, e.g. offline) and ``c`` per zone."""
        khz = [_read_int(path) for _, path in self.cpus]
        temps = {}
        for name, path, scale in self.zones:
            value = _read_int(path)
            if value is not None:
                temps[name] = round(value * scale, 2)
        return {"khz": khz, "c": temps}

    def hottest(self) -> float | None:
        temps = self.read()["c"].values() if self.zones else ()
        return max(temps, default=None)


class Sampler:
    """Samples taken at most every ``interval_s``, each with its time since ``start()``. ``maybe`` is called
    between two timed calls and costs one clock read when no sample is due (nothing at all when nothing is
    exposed)."""

    def __init__(self, source: Source | None = None, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.source = source if source is not None else Source()
        self.interval_s = interval_s
        self.samples: list[dict] = []
        self._origin = self._last = 0.0
        self._on = self.source.exposed

    def start(self) -> None:
        self._origin = monotonic()
        self.samples = []
        self._take(self._origin)

    def _take(self, now: float) -> None:
        if self._on:
            sample = self.source.read()
            sample["t"] = round(now - self._origin, 4)
            self.samples.append(sample)
        self._last = now

    def maybe(self) -> None:
        now = monotonic()
        if now - self._last >= self.interval_s:
            self._take(now)

    def stop(self) -> None:
        self._take(monotonic())


# ------------------------------------------------------------------------------------------------ summaries

def _top_khz(sample: dict) -> int | None:
    """The fastest CPU's clock: the one running the inference (idle cores sit at their lowest clock)."""
    return max((k for k in sample.get("khz") or () if k), default=None)


def summarize(samples: Sequence[dict], source: Source, start_temp_c: float | None = None,
              cooldown: dict | None = None) -> dict:
    """Min/max per case: clock (over all CPUs, and of the fastest one per sample) and temperature per zone."""
    out: dict = {"samples": len(samples)}
    tops = [t for t in map(_top_khz, samples) if t]
    every = [k for s in samples for k in s.get("khz") or () if k]
    if source.cpus and every:
        out["cpu_khz"] = {"min": min(every), "max": max(every), "top_min": min(tops), "top_max": max(tops),
                          "rated_max": source.rated_max_khz}
        # Each sample's highest clock as a share of that CPU's own rated max: on big.LITTLE a little core
        # running the case at its full clock is not throttled because a big core's max is higher.
        rated = getattr(source, "rated", None) or []
        shares = [max((k / r for k, r in zip(s.get("khz") or (), rated) if k and r), default=None) for s in samples]
        shares = [x for x in shares if x is not None]
        out["cpu_khz"]["top_share_min"] = round(min(shares), 4) if shares else None
    else:
        out["cpu_khz"] = NOT_EXPOSED
    zones = {}
    for name, _, _ in source.zones:
        values = [s["c"][name] for s in samples if name in s.get("c", {})]
        if values:
            zones[name] = {"min": min(values), "max": max(values), "trip": source.trips.get(name)}
    out["temp_c"] = zones or NOT_EXPOSED
    out["start_temp_c"] = start_temp_c if start_temp_c is not None else NOT_EXPOSED
    if cooldown is not None:
        out["cooldown"] = cooldown
    return out


def windows(starts_s: Sequence[float], latencies_s: Sequence[float], samples: Sequence[dict], duration_s: float,
            count: int) -> dict:
    """Sustained mode's curve: per time window (``count`` equal windows over ``duration_s``, by each image's
    start time) the images, median and p90 latency, the hottest zone and the fastest CPU's lowest clock; and the
    last window's median over the first's (> 1: slower at the end). One pass over the images (numpy, imported
    here: this module is imported by every pytest run, numpy is not)."""
    import numpy as np

    width = duration_s / count if count else duration_s
    starts = np.asarray(starts_s, dtype=np.float64)
    lat_ms = np.asarray(latencies_s, dtype=np.float64) * 1e3
    which = np.minimum((starts / width).astype(np.int64), count - 1) if len(starts) else starts.astype(np.int64)
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(count + 1))
    rows = []
    for i in range(count):
        lo, hi = i * width, (i + 1) * width if i < count - 1 else math.inf
        lat = lat_ms[order[bounds[i]:bounds[i + 1]]]
        near = [s for s in samples if lo <= s["t"] < hi]
        temps = [max(s["c"].values()) for s in near if s.get("c")]
        clocks = [t for t in map(_top_khz, near) if t]
        rows.append({"start_s": round(lo, 3), "images": int(lat.size),
                     "median_ms": round(float(np.median(lat)), 4) if lat.size else None,
                     "p90_ms": round(float(np.percentile(lat, 90)), 4) if lat.size else None,
                     "temp_c": max(temps) if temps else NOT_EXPOSED,
                     "cpu_khz": min(clocks) if clocks else NOT_EXPOSED})
    timed = [r for r in rows if r["median_ms"]]
    ratio = round(timed[-1]["median_ms"] / timed[0]["median_ms"], 4) if len(timed) >= 2 else None
    return {"duration_s": round(duration_s, 3), "window_s": round(width, 3), "images": int(lat_ms.size),
            "windows": rows, "last_first_ratio": ratio}


# -------------------------------------------------------------------------------------------------- cooldown

def cooldown(spec: dict, source: Source, *, wait: Callable[[float], None] = sleep,
             poll_s: float = COOLDOWN_POLL_S) -> dict:
    """Wait before a case: ``{"seconds": S}``, or ``{"until_c": T, "max_s": M}`` until the hottest zone is at or
    below T, never longer than M. Returns what happened (always bounded, always reported)."""
    start = monotonic()
    first = source.hottest()
    if "seconds" in spec:
        wait(float(spec["seconds"]))
        report = {"mode": "seconds", "seconds": float(spec["seconds"])}
    else:
        target, bound = float(spec["until_c"]), float(spec.get("max_s", COOLDOWN_MAX_S))
        report = {"mode": "until", "until_c": target, "max_s": bound}
        if first is None:
            report["reached"] = NOT_EXPOSED  # nothing to wait for: no zone to read
        else:
            now = first
            while now is not None and now > target and monotonic() - start < bound:
                wait(min(poll_s, max(0.0, bound - (monotonic() - start))))
                now = source.hottest()
            report["reached"] = now is not None and now <= target
    end = source.hottest()
    report.update(waited_s=round(monotonic() - start, 3),
                  from_c=first if first is not None else NOT_EXPOSED, to_c=end if end is not None else NOT_EXPOSED)
    return report
