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
from time import perf_counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..inputs.catalog import Case
from ..inputs.thresholds import Requirement, requirement
from ..inputs.dataset import Dataset
from ..run.environment import machine_facts, package_versions
from ..inputs.preprocess import PixelCache, PreprocessSpec
from ..report.schema import SCHEMA_ID
from ..verdicts.score import report_score
from ..inputs.pixels import PixelStore, stream_store_dir
from .options import Settings
from .workers import is_worker
from ..report.storage import is_measured, measured_cases_in
from ..files import write_atomic, write_json_atomic
from ..targets import Target, TargetError, resolve_target

__all__ = ["STATE_KEY", "AiotbenchState", "Settings", "current_report", "device_report_path", "fail_session",
           "get_state", "not_green_reasons"]

STATE_KEY = pytest.StashKey["AiotbenchState"]()
CHECKPOINT_SPACING = 20  # a costly checkpoint waits 20x its last cost after it: <= ~5 % of the run
CHECKPOINT_FREE_S = 0.05  # a checkpoint cheaper than this never waits (small reports: every case)


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
    write_failures: dict[str, str] = field(default_factory=dict)  # report path -> why its last write failed
    kept_reports: dict[str, str] = field(default_factory=dict)  # report path -> why this run did not replace it
    _written: dict[str, int] = field(default_factory=dict)  # report path -> cases in its last good write
    _held: dict[str, int | None] = field(default_factory=dict)  # report path -> measured cases it held at start
    _checkpointed: tuple[float, float] | None = None  # (when the last checkpoint ended, what it cost), perf_counter
    _devices_used: set = field(default_factory=set)  # devices that ran a case: a cooldown comes before the next

    def cooldown_before_case(self, device: str) -> dict | None:
        """--aiotbench-cooldown, for every case on a device but its first (the wait is between cases)."""
        if device in self._devices_used:
            return self.settings.cooldown
        self._devices_used.add(device)
        return None

    def __post_init__(self) -> None:
        self.cache = PixelCache(self.settings.cache_dir)
        self.is_worker = is_worker(self.config)  # an xdist worker: the controller reports
        self.collect_only = bool(getattr(getattr(self.config, "option", None), "collectonly", False))
        self.usage_error = False  # pytest stopped the session with a usage error (a test path not found, a bad -k)
        self.finished = False  # the test loop reached its end (plugin.SessionHooks.pytest_runtestloop)

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

    def release_pixels(self, needed: set[str]) -> None:
        """Remove the packed crops of every geometry not in ``needed`` (no later case of this session reads it):
        disk holds the geometries still to come, not every one the session used. A geometry asked for again
        (an xdist worker handed an earlier case out of order) is written again from the pixel cache."""
        for geometry in [g for g in self._pixels if g not in needed]:  # usually none: a dict scan per case
            self._pixels.pop(geometry).path.unlink(missing_ok=True)

    def drop_stores(self) -> None:
        """Remove this session's packed crops (end of the session)."""
        self._pixels.clear()
        if self._store_dir is not None:
            shutil.rmtree(self._store_dir, ignore_errors=True)
            self._store_dir = None

    def requirement(self, case: Case, device: str) -> Requirement:
        """The top-1 ``case`` is held to on ``device`` (``inputs/thresholds.requirement``, the one rule): a relative
        threshold reads its reference's entry recorded earlier in this run."""
        rule, reference = case.min_top1_rule, None
        if rule is not None and self.settings.min_top1 is None:
            ref_case = next((c for c in self.cases if c.id == rule.reference_id), None)
            reference = self.results.get(self.result_id(ref_case, device)) if ref_case is not None else None
        return requirement(case, self.settings.min_top1, reference)

    def record(self, entry: dict, checkpoint: bool = True) -> None:
        """Keep a case's entry (the fixture records it as soon as it is measured, so a relative threshold can read
        it; the report hook records it again with its outcome and that one is checkpointed: one write per case)."""
        if entry.get("repeat"):  # one repeat of a case: the report keeps their combination
            from ..verdicts.repeats import combine

            done = self.repeats.setdefault(entry["result_id"], {})
            done[entry["repeat"]["index"]] = entry
            entry = combine([done[i] for i in sorted(done)], self.ab_limits)
        self.results[entry["result_id"]] = entry
        if checkpoint:
            self.checkpoint()

    def _cache_settings(self) -> dict:
        return {"dir": str(self.cache.root) if self.cache.root else None, "hits": self.cache.hits,
                "misses": self.cache.misses, **({"note": self.cache.note} if self.cache.note else {})}

    # -- reports -------------------------------------------------------------------------------------------------
    def _score(self, results: list[dict]) -> dict:
        return report_score(results, self.canonical_ids, self.dataset.gaps())

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
                "scenario": self.settings.scenario,
                **({"offline": {"sessions": self.settings.offline_sessions, "batch": self.settings.offline_batch}}
                   if self.settings.scenario == "offline" else {}),
                **({"cooldown": self.settings.cooldown} if self.settings.cooldown else {}),
                **({"sustain_s": self.settings.sustain_s} if self.settings.sustain_s else {}),
            },
            # False in every checkpoint and after Ctrl-C: the cases it never reached are not in it
            "finished": self.finished,
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

    # -- writing reports: what may be replaced, and a write that fails ------------------------------------------
    def measured(self) -> int:
        return sum(1 for e in self.results.values() if is_measured(e))

    def write_refusal(self, path: Path) -> str | None:
        """Why this run must not write the report ``path`` now (None: write it). ``--collect-only`` writes nothing;
        a run that measured no case never replaces a file that holds measurements (or might: not a report we can
        read), so ``-k`` selecting nothing or every case skipped leaves the last real report as it was. The one
        rule for every report file of the run (the JSON here, the HTML in gate.py)."""
        if self.collect_only:
            return "--collect-only writes no report"
        if self.measured():
            return None
        if self.usage_error:  # exit 4 writes nothing: not even an empty report where none was
            return "a usage error stopped the run before any case: nothing written"
        key = str(path)
        if key not in self._held:  # read once: what the file held before this run wrote anything
            self._held[key] = measured_cases_in(path) if Path(path).suffix.lower() == ".json" else \
                (None if Path(path).exists() else 0)
        held = self._held[key]
        if held == 0:
            return None
        what = f"it holds {held} measured case(s)" if held else "it is a previous report"
        return f"this run measured no case and {what}: left as it was"

    def nothing_measured(self) -> str:
        """One line: why no case was measured (the first reason of the commonest outcome)."""
        entries = list(self.results.values())
        if not entries:
            return "no aiotbench case ran (none selected)"
        counts: dict[str, int] = {}
        for e in entries:
            counts[e["status"]] = counts.get(e["status"], 0) + 1
        first = next((e["reason"] for e in entries if e.get("reason")), None)
        tally = ", ".join(f"{n} {status}" for status, n in counts.items())
        return f"no aiotbench case was measured ({tally}{': ' + first if first else ''})"

    def _write_report(self, path: Path, write, cases: int) -> bool:
        """Write one report file (atomically), or say in one line why not: a full disk or a lost folder is never a
        traceback, the file keeps its last good version and the run goes on (it ends non-zero)."""
        refusal = self.write_refusal(path)
        if refusal is not None:
            if not self.collect_only:
                self.kept_reports[str(path)] = refusal
            return False
        try:
            write()
        except OSError as exc:
            kept = self._written.get(str(path))
            keeps = f"it keeps the {kept} case(s) of its last good write" if kept else "nothing of this run is in it"
            self.write_failures[str(path)] = f"cannot write the report {path} ({exc.strerror or exc}); {keeps}"
            return False
        self._written[str(path)] = cases
        self.write_failures.pop(str(path), None)
        return True

    def checkpoint(self) -> None:
        """Rewrite the report file with every case so far. The run-level header (machine, packages, dataset) is
        built once, each case is serialized once (when recorded), and the file is assembled from those texts:
        no hook fires, no device is asked anything, nothing measured earlier is serialized again.

        The whole file is rewritten (it must be a valid report at every moment), so a write costs more as the run
        grows (300 cases x 500 images: 3.5 MB, tens of ms with the fsync). Once one costs CHECKPOINT_FREE_S or more,
        the next waits until CHECKPOINT_SPACING times that cost has passed: at most ~5 % of the run goes into
        checkpoints while they are costly, a crash loses at most that window's cases, finalize writes everything."""
        path = self.settings.json_path
        if path is None or self.is_worker or self.final is not None:
            return
        if self._header is None:  # once (machine facts, packages, dataset): not part of a checkpoint's cost
            self._header = self._base_report({}, [], {})
        started = perf_counter()
        if self._checkpointed is not None:
            ended, cost = self._checkpointed
            if cost >= CHECKPOINT_FREE_S and started - ended < CHECKPOINT_SPACING * cost:
                return
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
                self._entry_texts[entry["id"]] = (key, json.dumps(entry, allow_nan=False).encode())
            texts.append(self._entry_texts[entry["id"]][1])
        if self.write_refusal(path) is not None:
            return
        head_text = json.dumps(head, indent=1, allow_nan=False)
        tail = '\n ],\n "score": ' + json.dumps(self._score(entries), allow_nan=False) + "\n}\n"

        def write(fh) -> None:  # piece by piece: no copy of the whole report in memory
            fh.write((head_text[:-2] + ',\n "cases": [\n').encode())
            for i, text in enumerate(texts):
                fh.write(b",\n" + text if i else text)
            fh.write(tail.encode())

        if self._write_report(path, lambda: write_atomic(path, write), len(entries)):
            self._checkpointed = (perf_counter(), perf_counter() - started)

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
        from ..report.read import first_schema_violation
        from ..report.schema import REPORT

        self.report_problems = [f"{name} report: {problem}" for name, report in reports.items()
                                if (problem := first_schema_violation(report, REPORT))]
        self.final = reports
        path = self.settings.json_path
        if path is not None and not self.is_worker:
            main = reports["farm"] if self.settings.farm else reports[self.settings.devices[0]]
            self._write_report(path, lambda: write_json_atomic(path, main), len(main["cases"]))
            if self.settings.farm:  # one plain report per device beside the merged one
                for device in self.settings.devices:
                    device_path = device_report_path(path, device)
                    self._write_report(device_path, lambda: write_json_atomic(device_path, reports[device]),
                                       len(reports[device]["cases"]))
        return reports

    def main_report(self) -> dict:
        """The run's report (the merged one for a farm); finalizes the run if it was not yet."""
        reports = self.finalize()
        return reports["farm"] if self.settings.farm else reports[self.settings.devices[0]]


def device_report_path(path: Path, device: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", device).strip("_")
    return path.with_name(f"{path.stem}.{safe}{path.suffix}")


NOT_GREEN_KEY = pytest.StashKey[list]()


def fail_session(session: pytest.Session, reason: str, code: int = pytest.ExitCode.TESTS_FAILED) -> None:
    """The one place the plugin sets the session's exit status (core, gate, A/B). ``reason`` (one line) joins the
    reasons this run is not green (``not_green_reasons``); the status becomes ``code`` unless pytest decided
    something graver: an interrupted run, an internal or usage error and failed tests (1) stand, and "no tests
    ran" (5) becomes 1 only for a failure."""
    session.config.stash.setdefault(NOT_GREEN_KEY, []).append(reason)
    current = session.exitstatus
    if current == pytest.ExitCode.OK or (current == pytest.ExitCode.NO_TESTS_COLLECTED
                                         and code == pytest.ExitCode.TESTS_FAILED):
        session.exitstatus = code


def not_green_reasons(config: pytest.Config) -> list[str]:
    """Every reason given to ``fail_session`` in this run, in order."""
    return list(config.stash.get(NOT_GREEN_KEY, []))


def get_state(config: pytest.Config) -> AiotbenchState | None:
    return config.stash.get(STATE_KEY, None)


def current_report(config: pytest.Config) -> dict | None:
    """The report of this run so far, or None when no aiotbench case ran (used by gate/report plugins)."""
    state = get_state(config)
    if state is None or not state.results:
        return None
    return state.main_report()
