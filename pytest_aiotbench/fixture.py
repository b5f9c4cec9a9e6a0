"""The per-test object behind the ``aiotbench`` fixture: runs one case (model x framework x quant) on the
session's target, scores it, records it, and asserts its accuracy threshold."""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import pytest

from .catalog import Case
from .dataset import Dataset
from .entry import EntryError, case_entry, entry_property, plain_json
from .frameworks import FrameworkUnavailable, ModelLoadError, PrepareOptions, UnknownFramework, get_framework
from .preprocess import InputShapeError, PreprocessError
from . import thresholds
from .score import accuracy, latency_stats_ms, vips, vops, wilson_interval
from .session import AiotbenchState
from .storage import file_sha256
from .zoo import manifest
from .targets.base import Job, Measurement, TargetError
from .targets.host import InferenceError
from .timing import BenchmarkTiming, PerfCounterTiming
from .progress import CaseProgress, case_summary
from .validity import assess

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
    def __init__(self, case: Case, device: str, state: AiotbenchState, benchmark, node, repeat: int = 1) -> None:
        self.case = case
        self.repeat = repeat
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

    def _fail(self, message: str) -> None:
        pytest.fail(message, pytrace=False)

    def run(self) -> CaseResult:
        case, state = self.case, self.state
        if not case.file.is_file():
            self._skip_or_fail(_missing_file_hint(case))
        progress = CaseProgress(state.config, self.result_id)
        failure = skip = None
        try:
            get_framework(case.framework)
            weights = _manifest_check(case) or case.weights
            pixels = self._pixels(case.preprocess)
            job = Job(case_id=case.id, framework=case.framework, model_file=case.file,
                      options=PrepareOptions(threads=state.settings.threads, extra=case.options),
                      pixels=pixels, preprocess=case.preprocess, warmup=state.settings.warmup,
                      num_classes=case.num_classes, background=case.background, quant=case.quant,
                      memory=state.settings.memory != "off")
            timing = BenchmarkTiming(self.benchmark, progress.update, state.settings.threads) \
                if self.benchmark is not None else PerfCounterTiming(progress.update, state.settings.threads)
            started = perf_counter()
            baseline = state.baselines.get(case.id)
            baseline_problem = None
            if baseline is not None:  # interleaved A/B against the baseline (abrun)
                from .abrun import BaselineError

                try:
                    pair = self._time_pair(job, baseline, progress)
                except BaselineError as exc:  # the baseline's fault: NEW is measured alone, kept, and fails
                    baseline, baseline_problem = None, f"{exc}; {case.id} measured alone, not paired"
            if baseline is not None:
                measurement, timing.load = pair.new, pair.load
                timing.record(measurement.latencies_s)
            else:
                measurement = state.target(self.device).run(job, timing)
        except FrameworkUnavailable as exc:
            skip = f"{case.framework}: {exc.fix}"
        except CASE_ERRORS as exc:
            failure = str(exc)
        except BaseException:  # Ctrl-C, harness bugs: leave the terminal line clean
            progress.clear()
            raise
        # Outside the except blocks: the one-line message is all pytest prints (no chained traceback).
        if skip is not None or failure is not None:
            progress.clear()
        if skip is not None:
            self._skip_or_fail(skip)
        if failure is not None:
            self._fail(failure)
        try:
            entry = self._score(measurement, weights)
            entry["validity"] = assess(entry["per_image"]["latency_ms"], timing.load)
            if baseline is not None:
                from .abrun import pair_entry

                from .abrun import case_limits

                entry["ab"] = pair_entry(case.id, baseline, pair, entry, state.dataset.labels,
                                         state.dataset.labeled, case_limits(state.ab_limits, case.fail_on))
            if state.settings.repeat > 1:  # session.record combines the repeats (repeats.combine)
                entry["repeat"] = {"index": self.repeat, "of": state.settings.repeat}
            entry = plain_json(entry, case.id)
            facts = plain_json(state.facts(self.device), f"device {self.device}")
        except EntryError as exc:  # what cannot be written as JSON cannot travel to the xdist controller either
            failure = f"{case.id}: result cannot be reported: {exc}"
        if failure is not None:
            progress.clear()
            self._fail(failure)
        progress.finish(case_summary(entry, perf_counter() - started))
        if self.benchmark is not None:  # None under --benchmark-skip (see plugin.aiotbench)
            self.benchmark.extra_info.update({k: v for k, v in entry.items() if k != "per_image"})
            ds = state.dataset
            self.benchmark.extra_info["dataset"] = {"path": str(ds.root) if ds.root else None, "kind": ds.kind,
                                                    "images": len(ds), "fingerprint": ds.fingerprint(),
                                                    "labeled": ds.labeled}
        self._properties.append(("aiotbench_entry", entry_property(entry)))  # JSON: JUnit writes str()
        self._properties.append(("aiotbench_device", entry_property({"device": self.device, "facts": facts})))
        state.record(entry, checkpoint=False)  # the report hook checkpoints it once, with its outcome
        state.config.hook.pytest_aiotbench_case_result(config=state.config, result=entry)
        if baseline_problem is not None:
            self._fail(baseline_problem)
        return CaseResult(case, entry)

    def _pixels(self, spec):
        """The session's crops of this geometry; decoding them the first time shows its own progress."""
        decoding = CaseProgress(self.state.config, f"{self.result_id}: decoding")
        try:
            return self.state.pixels(spec, decoding.update)
        finally:
            decoding.clear()

    def _time_pair(self, job: Job, baseline: Case, progress):
        from .abrun import time_pair

        if self.device != "host":
            raise TargetError(f"{self.case.id}: A/B (--aiotbench-baseline) runs on the host only, not {self.device}")
        from .abrun import BaselineError

        if not baseline.file.is_file():
            raise BaselineError(f"A/B baseline {baseline.file}: model file not found")
        try:
            _manifest_check(baseline)
        except manifest.ManifestMismatch as exc:
            raise BaselineError(f"A/B baseline {baseline.file}: {exc}") from None
        options = PrepareOptions(threads=job.options.threads, extra=baseline.options)
        base_job = Job(case_id=baseline.id, framework=baseline.framework, model_file=baseline.file, options=options,
                       pixels=self._pixels(baseline.preprocess), preprocess=baseline.preprocess,
                       warmup=job.warmup, num_classes=baseline.num_classes, background=baseline.background,
                       quant=baseline.quant, memory=job.memory)
        from .targets.host import fresh_memory

        memory = fresh_memory(job), fresh_memory(base_job)  # each side in its own fresh process, before timing
        pair = time_pair(job, base_job, progress.update, self.state.settings.threads)
        pair.new.memory, pair.base.memory = memory
        return pair

    def _score(self, m: Measurement, weights: str | None) -> dict:
        return measured_entry(self.case, self.result_id, self.device, m, self.state.dataset, weights,
                              self.required_top1(), self.state.settings.warmup, self._relative_rule(),
                              self._reference_top1())

    def required_top1(self) -> float | None:
        if self._relative_rule() is not None:
            reference = self._reference_top1()
            return None if reference is None else self.case.min_top1_rule.fraction * reference
        return self.state.required_top1(self.case)

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
            missing = None
            try:  # a reference that was not measured fails the case, saying why: never passes unchecked
                required, reference = thresholds.requirement(self.case, self.device, self.state)
            except thresholds.ReferenceMissing as exc:
                missing = str(exc)
            if missing is not None:  # outside the except block: said once, with no chained "During handling"
                pytest.fail(missing, pytrace=False)
            relative = f" = {rule.text}'s top-1 {reference:.4f}"
        else:
            required = self.required_top1()
        if required is not None and top1 < required:
            pytest.fail(f"{self.case.id}: top-1 {top1:.4f} < required {required:.4f}{relative} "
                        f"on {result.entry['images']} images", pytrace=False)


def measured_entry(case: Case, result_id: str, device: str, m: Measurement, ds: Dataset, weights: str | None,
                   min_top1: float | None, warmup: int, rule: thresholds.RelativeThreshold | None = None,
                   rule_reference_top1: float | None = None) -> dict:
    """The report entry of a measured case (scored against the dataset's labels unless weights are random)."""
    scored = ds.labeled and weights != "random"
    top1 = accuracy(m.topk, ds.labels, 1) if scored else None
    top5 = accuracy(m.topk, ds.labels, 5) if scored else None
    stats = latency_stats_ms(m.latencies_s)
    vips_value = vips(top1, stats["mean"] / 1e3)
    images = len(m.latencies_s)
    return case_entry(
        id=case.id, result_id=result_id, device=device, model=case.model, framework=case.framework,
        quant=case.quant, file=str(case.file), file_sha256=file_sha256(case.file),
        weights=weights or "unspecified", images=images, top1=top1, top5=top5,
        top1_ci95=wilson_interval(round(top1 * images), images) if top1 is not None else None,
        min_top1=min_top1, min_top1_rule=rule.text if rule else None,
        min_top1_reference={"id": rule.reference_id, "top1": rule_reference_top1}
        if rule is not None and rule_reference_top1 is not None else None,
        reference_top1=case.reference_top1, latency_ms=stats,
        prepare_ms=m.prepare_s * 1e3, first_ms=m.first_s * 1e3, warmup=warmup,
        images_per_s=1e3 / stats["mean"] if stats["mean"] > 0 else None,
        vips=vips_value, vops=vops(vips_value, case.gflops), gflops=case.gflops,
        status="passed", reason=None,
        runtime={**m.session, "timed_on": m.timed_on}, fail_on=list(case.fail_on) or None, memory=m.memory,
        per_image={"top5": m.topk.tolist(), "latency_ms": [s * 1e3 for s in m.latencies_s]},
    )


def _missing_file_hint(case: Case) -> str:
    if case.builtin:
        how = f"build it with `aiotbench zoo build --models {case.model}`"
    else:
        how = f"fix the path in {case.catalog}" if case.catalog else "check the catalog entry"
    return f"model file not found: {case.file} ({how})"
