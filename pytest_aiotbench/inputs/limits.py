"""Regression limits, the user's side of a gate: ``top1:-0.5pt`` (fail when top-1 drops by more than half a point),
``p90:+10%`` (fail when p90 latency rises by more than 10 %). One parser for every place a limit is written:
``aiotbench compare --fail-on``, ``--aiotbench-fail-on``, the catalog's per-model ``fail_on``, the A/B. Each metric
says how to read it from a case entry and which direction is worse; the statistics that judge it are in
``report/compare.py`` (saved runs) and ``verdicts/ab.py`` (A/B pairs)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence


class LimitError(ValueError):
    """A limit that cannot be read. One line naming it and the expected form."""


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str  # "pt": difference in percentage points; "%": relative change
    worse: int  # +1: higher is worse (latency); -1: lower is worse (accuracy, throughput)
    value: Callable[[dict], float | None]
    # latency statistic whose sampling noise this metric inherits, and whether the metric is its inverse
    noisy_stat: str | None = None
    inverse: bool = False


def _latency(stat: str) -> Callable[[dict], float | None]:
    return lambda case: (case.get("latency_ms") or {}).get(stat)


def scenario(case: dict) -> str:
    """How a case's images were issued: an entry without ``scenario`` is single-stream (run/offline.py)."""
    return case.get("scenario") or "single-stream"


def _throughput(key: str) -> Callable[[dict], float | None]:
    """VIPS/VOPS of either scenario: an offline case's own (``offline.vips``), never mixed with single-stream's
    (pairs of different scenarios are not compared at all, see report/compare.py)."""
    return lambda case: (case.get("offline") or {}).get(key) if scenario(case) == "offline" else case.get(key)


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("top1", "pt", -1, lambda c: c.get("top1")),
    Metric("top5", "pt", -1, lambda c: c.get("top5")),
    Metric("vips", "%", -1, _throughput("vips"), noisy_stat="mean", inverse=True),
    Metric("vops", "%", -1, _throughput("vops"), noisy_stat="mean", inverse=True),
    Metric("images_per_s", "%", -1, lambda c: c.get("images_per_s"), noisy_stat="mean", inverse=True),
    Metric("median", "%", +1, _latency("median"), noisy_stat="median"),
    Metric("mean", "%", +1, _latency("mean"), noisy_stat="mean"),
    Metric("p90", "%", +1, _latency("p90"), noisy_stat="p90"),
    # resident MB at the case's peak (run/memory.py): a reading, not a per-image sample, so no bootstrap
    Metric("memory", "%", +1, lambda c: (c.get("memory") or {}).get("peak_mb")),
)}
ALIASES = {"p50": "median", "latency": "median", "top-1": "top1", "top-5": "top5", "ips": "images_per_s",
           "throughput": "images_per_s"}


@dataclass(frozen=True)
class Limit:
    metric: Metric
    threshold: float  # signed, in the metric's unit: -0.5 (pt) or +10 (%)

    def __str__(self) -> str:
        return f"{self.metric.name}:{self.threshold:+g}{self.metric.unit}"


_LIMIT_RE = re.compile(r"^(?P<metric>[a-z0-9_-]+):(?P<sign>[+-]?)(?P<number>\d+(?:\.\d*)?|\.\d+)(?P<unit>pt|%)$")


def parse_limits(specs: Sequence[str]) -> list[Limit]:
    """Parse ``--fail-on`` values (each may hold several, comma- or space-separated). Raises LimitError."""
    limits: dict[str, Limit] = {}
    empty = [value for value in specs if not re.split(r"[,\s]+", str(value).strip(", \t\n"))[0]]
    if empty:  # "--fail-on=," would gate nothing while looking like a gate
        raise LimitError(f"empty limit {empty[0]!r}: expected METRIC:[+-]NUMBER(pt|%), e.g. top1:-0.5pt, p90:+10%")
    for spec in (part for value in specs for part in re.split(r"[,\s]+", value) if part):
        match = _LIMIT_RE.match(spec.strip().lower())
        if not match:
            raise LimitError(f"bad limit {spec!r}: expected METRIC:[+-]NUMBER(pt|%), e.g. top1:-0.5pt, "
                              "vips:-5%, p90:+10%")
        name = ALIASES.get(match["metric"], match["metric"])
        metric = METRICS.get(name)
        if metric is None:
            raise LimitError(f"bad limit {spec!r}: unknown metric {name!r} (known: {', '.join(METRICS)})")
        if match["unit"] != metric.unit:
            example = f"{name}:{'-' if metric.worse < 0 else '+'}{'0.5pt' if metric.unit == 'pt' else '5%'}"
            raise LimitError(f"bad limit {spec!r}: {name} is limited in {metric.unit!r}, e.g. {example}")
        sign = {"+": 1, "-": -1, "": metric.worse}[match["sign"]]
        if sign != metric.worse:
            raise LimitError(f"bad limit {spec!r}: a regression of {name} is a {'rise' if metric.worse > 0 else 'drop'}"
                              f", write {name}:{'+' if metric.worse > 0 else '-'}{match['number']}{metric.unit}")
        if metric.unit == "%" and sign < 0 and float(match["number"]) >= 100:
            raise LimitError(f"bad limit {spec!r}: a drop of 100% or more cannot happen")
        limits[name] = Limit(metric, sign * float(match["number"]))  # a later limit on a metric wins
    return list(limits.values())


def case_limits(limits: Sequence[Limit], fail_on: Sequence[str] | None) -> list[Limit]:
    """The limits one case is held to: the session's, with the catalog's per-model ``fail_on`` overriding a
    limit on the same metric."""
    if not fail_on:
        return list(limits)
    return parse_limits([*map(str, limits), *fail_on])
