"""Session state: the settings, the dataset, the cases, the targets and every result, and the reports built
from them. With several devices (a farm, usually one xdist worker per device) every result carries its device;
the controller merges them into one report, ranked by device score, plus one plain report per device."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .catalog import Case
from .dataset import Dataset
from .environment import machine_facts, package_versions
from .preprocess import PixelCache, PreprocessSpec
from .schema import SCHEMA_ID
from .score import device_score
from .storage import write_json_atomic
from .targets import Target, TargetError, resolve_target

STATE_KEY = pytest.StashKey["AiotbenchState"]()


@dataclass
class Settings:
    dataset: str | None
    images: int | None
    threads: int
    warmup: int
    min_top1: float | None
    strict: bool
    json_path: Path | None
    cache_dir: Path | None
    devices: list[str]
    target_options: dict[str, Any] = field(default_factory=dict)
    baseline: Path | None = None  # --aiotbench-baseline catalog
    repeat: int = 1
    fail_invalid: bool = False

    @property
    def farm(self) -> bool:
        return len(self.devices) > 1


@dataclass
class AiotbenchState:
    config: pytest.Config
    settings: Settings
    dataset: Dataset
    cases: list[Case]
    canonical_ids: list[str] | None  # the canonical AIoTBench case set; None when its catalog is missing
    cache: PixelCache = field(init=False)
    results: dict[str, dict] = field(default_factory=dict)  # result id -> JSON case entry, in run order
    device_facts: dict[str, dict] = field(default_factory=dict)
    baselines: dict[str, Case] = field(default_factory=dict)  # case id -> its A/B baseline
    ab_limits: list = field(default_factory=list)
    repeats: dict[str, dict[int, dict]] = field(default_factory=dict)  # result id -> {repeat: its entry}
    _targets: dict[str, Target] = field(default_factory=dict)
    _pixels: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cache = PixelCache(self.settings.cache_dir)
        self.is_worker = hasattr(self.config, "workerinput")  # an xdist worker: the controller reports

    def result_id(self, case: Case, device: str) -> str:
        return f"{case.id}@{device}" if self.settings.farm else case.id

    def target(self, device: str) -> Target:
        if device not in self._targets:
            self._targets[device] = resolve_target(device, **self.settings.target_options)
        return self._targets[device]

    def facts(self, device: str) -> dict:
        if device not in self.device_facts:
            try:
                self.device_facts[device] = self.target(device).describe()
            except TargetError as exc:
                self.device_facts[device] = {"target": device, "error": str(exc)}
        return self.device_facts[device]

    def pixels(self, spec: PreprocessSpec) -> np.ndarray:
        """Cropped pixels for this geometry, decoded once per session (and once ever, thanks to the disk cache)."""
        if spec.geometry not in self._pixels:
            self._pixels[spec.geometry] = self.dataset.pixels(spec, self.cache)
        return self._pixels[spec.geometry]

    def record(self, entry: dict) -> None:
        if entry.get("repeat"):  # one repeat of a case: the report keeps their combination
            from .repeats import combine

            done = self.repeats.setdefault(entry["result_id"], {})
            done[entry["repeat"]["index"]] = entry
            entry = combine([done[i] for i in sorted(done)], self.ab_limits)
        self.results[entry["result_id"]] = entry
        self.write_json()

    # -- reports -------------------------------------------------------------------------------------------------
    def _score(self, results: list[dict]) -> dict:
        score = device_score(results, self.canonical_ids, self.dataset.gaps())
        return {"vips": score.vips, "vops": score.vops, "cases": score.cases, "partial": score.partial,
                "missing": score.missing, "partial_reasons": score.partial_reasons}

    def _base_report(self, device: dict, cases: list[dict], score: dict) -> dict:
        return {
            "schema": SCHEMA_ID,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_facts(),
            "device": device,
            "packages": package_versions(),
            "dataset": self.dataset.describe(),
            "settings": {
                "threads": self.settings.threads,
                "warmup": self.settings.warmup,
                "images_limit": self.settings.images,
                "min_top1_override": self.settings.min_top1,
                "strict": self.settings.strict,
                "devices": self.settings.devices,
                "cache": {"dir": str(self.settings.cache_dir) if self.settings.cache_dir else None,
                          "hits": self.cache.hits, "misses": self.cache.misses},
            },
            "cases": cases,
            "score": score,
        }

    def device_report(self, device: str) -> dict:
        """The plain one-device report: what `aiotbench compare` and `aiotbench rank` read."""
        cases = [{k: v for k, v in e.items() if k != "result_id"}
                 for e in self.results.values() if e["device"] == device]
        report = self._base_report(self.facts(device), cases, self._score(cases))
        self.config.hook.pytest_aiotbench_report(config=self.config, report=report)
        return report

    def build_report(self) -> dict:
        if not self.settings.farm:
            return self.device_report(self.settings.devices[0])
        # Merged farm report: case ids carry their device; one score per device, ranked.
        cases = [{**{k: v for k, v in e.items() if k != "result_id"}, "id": e["result_id"]}
                 for e in self.results.values()]
        by_device = {d: self._score([c for c in cases if c["device"] == d]) for d in self.settings.devices}
        ranking = sorted(by_device, key=lambda d: -(by_device[d]["vips"] or 0.0))
        score = {**self._score(cases), "partial": True,
                 "partial_reasons": ["merged farm report: each device is scored in by_device"]}
        report = self._base_report({"target": "farm", "devices": self.settings.devices}, cases, score)
        report.update(devices={d: self.facts(d) for d in self.settings.devices}, by_device=by_device,
                      ranking=ranking)
        self.config.hook.pytest_aiotbench_report(config=self.config, report=report)
        return report

    def write_json(self) -> None:
        path = self.settings.json_path
        if path is None or self.is_worker:
            return
        write_json_atomic(path, self.build_report())
        if self.settings.farm:  # one plain report per device beside the merged one
            for device in self.settings.devices:
                write_json_atomic(device_report_path(path, device), self.device_report(device))


def device_report_path(path: Path, device: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", device).strip("_")
    return path.with_name(f"{path.stem}.{safe}{path.suffix}")


def get_state(config: pytest.Config) -> AiotbenchState | None:
    return config.stash.get(STATE_KEY, None)


def current_report(config: pytest.Config) -> dict | None:
    """The report of this run so far, or None when no aiotbench case ran (used by gate/report plugins)."""
    state = get_state(config)
    if state is None or not state.results:
        return None
    return state.build_report()
