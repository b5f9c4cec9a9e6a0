"""The per-test object behind the ``aiotbench`` fixture: runs one case (model x framework x quant) on the
session's target, scores it, records it, and asserts its accuracy threshold."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .catalog import Case
from .frameworks import FrameworkUnavailable, ModelLoadError, PrepareOptions, UnknownFramework, get_framework
from .preprocess import InputShapeError, PreprocessError
from . import thresholds
from .score import accuracy, latency_stats_ms, vips, vops, wilson_interval
from .session import AiotbenchState
from .storage import file_sha256
from .zoo import manifest
from .targets.base import Job, Measurement, TargetError
from .targets.host import InferenceError
from .timing import BenchmarkTiming

# Failures that are the model's, the data's or the device's, not the harness's: one line, no traceback.
CASE_ERRORS = (ModelLoadError, InputShapeError, PreprocessError, InferenceError, TargetError, UnknownFramework,
               manifest.ManifestMismatch)


@dataclass
class CaseResult:
    case: Case
    entry: dict  # the JSON report's case entry

    @property
    def top1(self) -> float | None:
        return self.entry["top1"]


def _manifest_check(case: Case) -> str | None:
    """Zoo artifacts carry a manifest: verify the checksum and return the weights tag. None when not a zoo file."""
    manifest.verify(case.file)  # raises ManifestMismatch with a clear message
    found = manifest.lookup(case.file)
    if found:
        manifest.check_input(case.file, found, case.preprocess)
    return found.get("weights") if found else None


class AiotbenchFixture:
    def __init__(self, case: Case, device: str, state: AiotbenchState, benchmark, node) -> None:
        self.case = case
        self.device = device
        self.state = state
        self.benchmark = benchmark
        self.result_id = state.result_id(case, device)
        # The report travels with the test's reports (and so from xdist workers to the controller).
        self._properties = node.user_properties
        self._properties.append(("aiotbench_id", self.result_id))

    def _skip_or_fail(self, reason: str) -> None:
        if self.state.settings.strict:
            pytest.fail(f"{reason} (--aiotbench-strict)", pytrace=False)
        pytest.skip(reason)

    def run(self) -> CaseResult:
        case, state = self.case, self.state
        if not case.file.is_file():
            self._skip_or_fail(_missing_file_hint(case))
        try:
            get_framework(case.framework)
            weights = _manifest_check(case) or case.weights
            pixels = state.pixels(case.preprocess)
            job = Job(case.id, case.framework, case.file,
                      PrepareOptions(threads=state.settings.threads, extra=case.options),
                      pixels, case.preprocess, state.settings.warmup, case.num_classes, case.background)
            measurement = state.target(self.device).run(job, BenchmarkTiming(self.benchmark))
        except FrameworkUnavailable as exc:
            self._skip_or_fail(f"{case.framework}: {exc.fix}")
        except CASE_ERRORS as exc:
            pytest.fail(str(exc), pytrace=False)
        entry = self._score(measurement, weights)
        self.benchmark.extra_info.update({k: v for k, v in entry.items() if k != "per_image"})
        ds = state.dataset
        self.benchmark.extra_info["dataset"] = {"path": str(ds.root) if ds.root else None, "kind": ds.kind,
                                                "images": len(ds), "fingerprint": ds.fingerprint(),
                                                "labeled": ds.labeled}
        self._properties.append(("aiotbench_entry", entry))
        self._properties.append(("aiotbench_device", (self.device, state.facts(self.device))))
        state.record(entry)
        state.config.hook.pytest_aiotbench_case_result(config=state.config, result=entry)
        return CaseResult(case, entry)

    def _score(self, m: Measurement, weights: str | None) -> dict:
        case, ds = self.case, self.state.dataset
        scored = ds.labeled and weights != "random"
        top1 = accuracy(m.topk, ds.labels, 1) if scored else None
        top5 = accuracy(m.topk, ds.labels, 5) if scored else None
        stats = latency_stats_ms(m.latencies_s)
        vips_value = vips(top1, stats["mean"] / 1e3)
        images = len(m.latencies_s)
        rule, reference = self._relative_rule(), self._reference_top1()
        return {
            "id": case.id, "result_id": self.result_id, "device": self.device, "model": case.model, "framework": case.framework, "quant": case.quant,
            "file": str(case.file), "file_sha256": file_sha256(case.file), "weights": weights or "unspecified",
            "images": images, "top1": top1, "top5": top5,
            "top1_ci95": wilson_interval(round(top1 * images), images) if top1 is not None else None,
            "min_top1": self.required_top1(),
            "min_top1_rule": rule.text if rule else None,
            "min_top1_reference": {"id": rule.reference_id, "top1": reference} if reference is not None else None,
            "reference_top1": case.reference_top1, "latency_ms": stats,
            "prepare_ms": m.prepare_s * 1e3, "first_ms": m.first_s * 1e3, "warmup": self.state.settings.warmup,
            "images_per_s": 1e3 / stats["mean"] if stats["mean"] > 0 else None,
            "vips": vips_value, "vops": vops(vips_value, case.gflops), "gflops": case.gflops,
            "status": "passed", "reason": None,
            "runtime": {**m.session, "timed_on": m.timed_on},
            "per_image": {"top5": m.topk.tolist(), "latency_ms": [s * 1e3 for s in m.latencies_s]},
        }

    def required_top1(self) -> float | None:
        override = self.state.settings.min_top1
        if self._relative_rule() is not None:
            reference = self._reference_top1()
            return None if reference is None else self.case.min_top1_rule.fraction * reference
        return override if override is not None else self.case.min_top1

    def _relative_rule(self) -> thresholds.RelativeThreshold | None:
        """The catalog's relative threshold, unless --aiotbench-min-top1 overrides every threshold."""
        return self.case.min_top1_rule if self.state.settings.min_top1 is None else None

    def _reference_top1(self) -> float | None:
        """The reference case's top-1 for a relative threshold (None when not measured: check() then fails)."""
        if self._relative_rule() is None:
            return None
        try:
            return thresholds.reference_top1(self.case, self.device, self.state)
        except thresholds.ReferenceMissing:
            return None

    def check(self, result: CaseResult) -> None:
        """Fail the case when its top-1 is under the threshold (catalog min_top1, or --aiotbench-min-top1)."""
        top1, rule = result.top1, self._relative_rule()
        if top1 is None:
            return
        relative = ""
        if rule is not None:
            try:  # a reference that was not measured fails the case, saying why: never passes unchecked
                required, reference = thresholds.requirement(self.case, self.device, self.state)
            except thresholds.ReferenceMissing as exc:
                pytest.fail(str(exc), pytrace=False)
            relative = f" = {rule.text}'s top-1 {reference:.4f}"
        else:
            required = self.required_top1()
        if required is not None and top1 < required:
            pytest.fail(f"{self.case.id}: top-1 {top1:.4f} < required {required:.4f}{relative} "
                        f"on {result.entry['images']} images", pytrace=False)


def _missing_file_hint(case: Case) -> str:
    if case.builtin:
        how = f"build it with `aiotbench zoo build --models {case.model}`"
    else:
        how = f"fix the path in {case.catalog}" if case.catalog else "check the catalog entry"
    return f"model file not found: {case.file} ({how})"
