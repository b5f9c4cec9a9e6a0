"""Session state: the settings, the dataset, the cases, the targets and every result, and the reports built
from them. With several devices (a farm, usually one xdist worker per device) every result carries its device;
the controller merges them into one report, ranked by device score, plus one plain report per device.

Report lifecycle: after each case ``record`` checkpoints (the report file is rewritten atomically from a header
built once, with every case so far: crash-safe and cheap, no hook, no device query); at the end ``finalize``
builds every report once (fresh facts and score), fires ``pytest_aiotbench_report`` once per report and writes
them. Ctrl-C still reaches ``finalize`` (pytest_sessionfinish), a crash leaves the last checkpoint."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .catalog import Case
from .dataset import Dataset
from .environment import machine_facts, package_versions
from .preprocess import PixelCache, PreprocessSpec
from .schema import SCHEMA_ID
from .score import device_score
from .stream import PixelStore, stream_store_dir
from .options import Settings
from .storage import write_json_atomic, write_text_atomic
from .targets import Target, TargetError, resolve_target

__all__ = ["STATE_KEY", "AiotbenchState", "Settings", "current_report", "device_report_path", "get_state"]

STATE_KEY = pytest.StashKey["AiotbenchState"]()


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
    _pixels: dict[str, PixelStore] = field(default_factory=dict)  # geometry -> its crops on disk
    _store_dir: Path | None = None  # this session's packed crops; removed at the end of the session
    _header: dict | None = None  # run-level part of the checkpoint report, built once
    _entry_texts: dict[str, tuple] = field(default_factory=dict)  # case id -> (identity, its JSON text)
    final: dict[str, dict] | None = None  # the reports built by finalize()
    report_lock: Any = None  # storage.ReportLock held on the JSON report path for the session
    report_problems: list[str] = field(default_factory=list)  # schema violations found by finalize()

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

    def pixels(self, spec: PreprocessSpec, progress=None) -> PixelStore:
        """Cropped pixels for this geometry: decoded once per session (and once ever, thanks to the disk cache)
        into a packed file on disk, which cases read a chunk at a time (``stream``): nothing of it stays in
        memory, whatever the dataset's size or the number of geometries."""
        if spec.geometry not in self._pixels:
            if self._store_dir is None:
                self._store_dir = stream_store_dir(self.cache.root)
                self.config.add_cleanup(self.drop_stores)
            self._pixels[spec.geometry] = self.dataset.store(spec, self.cache, self._store_dir, progress)
        return self._pixels[spec.geometry]

    def drop_stores(self) -> None:
        """Remove this session's packed crops (end of the session)."""
        self._pixels.clear()
        if self._store_dir is not None:
            shutil.rmtree(self._store_dir, ignore_errors=True)
            self._store_dir = None

    def required_top1(self, case: Case) -> float | None:
        """The case's threshold: --aiotbench-min-top1 when given, else the catalog's min_top1."""
        return self.settings.min_top1 if self.settings.min_top1 is not None else case.min_top1

    def record(self, entry: dict) -> None:
        if entry.get("repeat"):  # one repeat of a case: the report keeps their combination
            from .repeats import combine

            done = self.repeats.setdefault(entry["result_id"], {})
            done[entry["repeat"]["index"]] = entry
            entry = combine([done[i] for i in sorted(done)], self.ab_limits)
        self.results[entry["result_id"]] = entry
        self.checkpoint()

    def _cache_settings(self) -> dict:
        return {"dir": str(self.cache.root) if self.cache.root else None, "hits": self.cache.hits,
                "misses": self.cache.misses, **({"note": self.cache.note} if self.cache.note else {})}

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
                "cache": self._cache_settings(),
            },
            "cases": cases,
            "score": score,
        }

    def _device_cases(self, device: str) -> list[dict]:
        return [{k: v for k, v in e.items() if k != "result_id"} for e in self.results.values()
                if e["device"] == device]

    def _farm_cases(self) -> list[dict]:
        return [{**{k: v for k, v in e.items() if k != "result_id"}, "id": e["result_id"]}
                for e in self.results.values()]

    def _device_report(self, device: str, facts: dict) -> dict:
        """The plain one-device report: what `aiotbench compare` and `aiotbench rank` read."""
        cases = self._device_cases(device)
        return self._base_report(facts, cases, self._score(cases))

    def _farm_report(self, facts: dict[str, dict]) -> dict:
        # Merged farm report: case ids carry their device; one score per device, ranked.
        cases = self._farm_cases()
        by_device = {d: self._score([c for c in cases if c["device"] == d]) for d in self.settings.devices}
        ranking = sorted(by_device, key=lambda d: -(by_device[d]["vips"] or 0.0))
        score = {**self._score(cases), "partial": True,
                 "partial_reasons": ["merged farm report: each device is scored in by_device"]}
        report = self._base_report({"target": "farm", "devices": self.settings.devices}, cases, score)
        report.update(devices=facts, by_device=by_device, ranking=ranking)
        return report

    def checkpoint(self) -> None:
        """Rewrite the report file with every case so far. The run-level header (machine, packages, dataset) is
        built once, each case is serialized once (when recorded), and the file is assembled from those texts:
        no hook fires, no device is asked anything, nothing measured earlier is serialized again."""
        path = self.settings.json_path
        if path is None or self.is_worker or self.final is not None:
            return
        if self._header is None:
            self._header = self._base_report({}, [], {})
        facts = {d: self.device_facts.get(d, {"target": d}) for d in self.settings.devices}
        if self.settings.farm:
            entries = self._farm_cases()
            head = {**self._header, "device": {"target": "farm", "devices": self.settings.devices},
                    "devices": facts}
        else:
            entries = self._device_cases(self.settings.devices[0])
            head = {**self._header, "device": facts[self.settings.devices[0]]}
        head["settings"] = {**head["settings"], "cache": self._cache_settings()}
        for key in ("cases", "score"):
            head.pop(key, None)
        texts = []
        for entry in entries:
            key = (entry["id"], entry["status"], entry.get("reason"))
            if self._entry_texts.get(entry["id"], (None,))[0] != key:
                self._entry_texts[entry["id"]] = (key, json.dumps(entry, allow_nan=False))
            texts.append(self._entry_texts[entry["id"]][1])
        head_text = json.dumps(head, indent=1, allow_nan=False)
        write_text_atomic(path, head_text[:-2] + ',\n "cases": [\n' + ",\n".join(texts) + '\n ],\n "score": '
                          + json.dumps(self._score(entries), allow_nan=False) + "\n}\n")

    def finalize(self) -> dict[str, dict]:
        """Build every report of the run once (device reports, and the merged one for a farm under key
        ``"farm"``), fire the report hook once per report, write them. Later calls return the same reports."""
        if self.final is not None:
            return self.final
        if self.is_worker:  # the controller reports the whole run
            return {}
        # Facts gathered while cases ran; only the host is described here (cheap): building a report never opens
        # a device connection.
        facts = {d: self.facts(d) if d == "host" else self.device_facts.get(d, {"target": d})
                 for d in self.settings.devices}
        reports = {d: self._device_report(d, facts[d]) for d in self.settings.devices}
        if self.settings.farm:
            reports["farm"] = self._farm_report(facts)
        for report in reports.values():
            self.config.hook.pytest_aiotbench_report(config=self.config, report=report)
        # Every report the run writes must load in the plugin's own tools (compare, rank, report).
        from .reports import first_schema_violation
        from .schema import REPORT

        self.report_problems = [f"{name} report: {problem}" for name, report in reports.items()
                                if (problem := first_schema_violation(report, REPORT))]
        self.final = reports
        path = self.settings.json_path
        if path is not None and not self.is_worker:
            write_json_atomic(path, self.main_report())
            if self.settings.farm:  # one plain report per device beside the merged one
                for device in self.settings.devices:
                    write_json_atomic(device_report_path(path, device), reports[device])
        return reports

    def main_report(self) -> dict:
        """The run's report (the merged one for a farm); finalizes the run if it was not yet."""
        reports = self.finalize()
        return reports["farm"] if self.settings.farm else reports[self.settings.devices[0]]


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
    return state.main_report()
