"""Session state: the settings, the dataset, the cases and every result, and the report built from them."""

from __future__ import annotations

import datetime as dt
import hashlib
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
    device: str


@dataclass
class AiotbenchState:
    config: pytest.Config
    settings: Settings
    dataset: Dataset
    cases: list[Case]
    target: Any
    canonical_ids: list[str] | None  # the canonical AIoTBench case set; None when its catalog is missing
    cache: PixelCache = field(init=False)
    results: dict[str, dict] = field(default_factory=dict)  # case id -> JSON case entry, in run order
    _pixels: dict[str, np.ndarray] = field(default_factory=dict)
    _device: dict | None = None

    def __post_init__(self) -> None:
        self.cache = PixelCache(self.settings.cache_dir)

    def pixels(self, spec: PreprocessSpec) -> np.ndarray:
        """Cropped pixels for this geometry, decoded once per session (and once ever, thanks to the disk cache)."""
        if spec.geometry not in self._pixels:
            self._pixels[spec.geometry] = self.dataset.pixels(spec, self.cache)
        return self._pixels[spec.geometry]

    def device(self) -> dict:
        if self._device is None:
            self._device = self.target.describe()
        return self._device

    def record(self, entry: dict) -> None:
        self.results[entry["id"]] = entry
        self.write_json()

    def build_report(self) -> dict:
        results = list(self.results.values())
        score = device_score(results, self.canonical_ids, self.dataset.gaps())
        report = {
            "schema": SCHEMA_ID,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_facts(),
            "device": self.device(),
            "packages": package_versions(),
            "dataset": self.dataset.describe(),
            "settings": {
                "threads": self.settings.threads,
                "warmup": self.settings.warmup,
                "images_limit": self.settings.images,
                "min_top1_override": self.settings.min_top1,
                "strict": self.settings.strict,
                "cache": {"dir": str(self.settings.cache_dir) if self.settings.cache_dir else None,
                          "hits": self.cache.hits, "misses": self.cache.misses},
            },
            "cases": results,
            "score": {"vips": score.vips, "vops": score.vops, "cases": score.cases, "partial": score.partial,
                      "missing": score.missing, "partial_reasons": score.partial_reasons},
        }
        self.config.hook.pytest_aiotbench_report(config=self.config, report=report)
        return report

    def write_json(self) -> None:
        if self.settings.json_path is not None:
            write_json_atomic(self.settings.json_path, self.build_report())


def get_state(config: pytest.Config) -> AiotbenchState | None:
    return config.stash.get(STATE_KEY, None)


def current_report(config: pytest.Config) -> dict | None:
    """The report of this run so far, or None when no aiotbench case ran (used by gate/report plugins)."""
    state = get_state(config)
    if state is None or not state.results:
        return None
    return state.build_report()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
