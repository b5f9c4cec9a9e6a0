"""The ``aiotbench`` fixture: adapts ``pipeline.run_case`` to pytest. It picks the session's target, clock and
crops, shows progress, turns the pipeline's CaseSkipped/CaseFailed into a skip or a one-line failure, hands the entry
to the session (and through the test's user properties to the xdist controller and JUnit), and fails a case under
its top-1 threshold (``inputs/thresholds.py`` decides)."""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import pytest

from ..inputs.catalog import Case
from ..pipeline import CaseFailed, CaseSkipped, run_case
from ..report.entry import EntryError, entry_property, plain_json
from ..run.timing import BenchmarkTiming, PerfCounterTiming
from .progress import CaseProgress, case_summary
from .state import AiotbenchState


@dataclass
class CaseResult:
    case: Case
    entry: dict  # the JSON report's case entry

    @property
    def top1(self) -> float | None:
        return self.entry["top1"]


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

    def run(self) -> CaseResult:
        case, state, settings = self.case, self.state, self.state.settings
        progress = CaseProgress(state.config, self.result_id)
        timing = BenchmarkTiming(self.benchmark, progress.update, settings.threads) \
            if self.benchmark is not None else PerfCounterTiming(progress.update, settings.threads)
        started = perf_counter()
        skip = failure = entry = None
        try:
            entry = run_case(case, state.dataset, state.target(self.device), timing, run=settings.run,
                             pixels=self._pixels, device=self.device, result_id=self.result_id,
                             requirement=state.requirement(case, self.device), baseline=state.baselines.get(case.id),
                             ab_limits=state.ab_limits, progress=progress.update,
                             # between cases: none before a device's first case (nor for a missing file)
                             cooldown=state.cooldown_before_case(self.device) if case.file.is_file() else None)
        except CaseSkipped as exc:
            skip = str(exc)
        except CaseFailed as exc:  # with an entry: measured, kept, and failed (an A/B whose baseline could not run)
            failure, entry = str(exc), exc.entry
        except EntryError as exc:  # what cannot be written as JSON cannot travel to the xdist controller either
            failure = f"{case.id}: result cannot be reported: {exc}"
        except BaseException:  # Ctrl-C, harness bugs: leave the terminal line clean
            progress.clear()
            raise
        # Outside the except blocks: the one-line message is all pytest prints (no chained traceback).
        if entry is None:
            progress.clear()
            self._skip_or_fail(skip) if skip is not None else pytest.fail(failure, pytrace=False)
        try:
            if settings.repeat > 1:  # state.record combines the repeats (repeats.combine)
                entry["repeat"] = {"index": self.repeat, "of": settings.repeat}
            facts = plain_json(state.facts(self.device), f"device {self.device}")
        except EntryError as exc:
            progress.clear()
            pytest.fail(f"{case.id}: result cannot be reported: {exc}", pytrace=False)
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
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        return CaseResult(case, entry)

    def _pixels(self, spec):
        """The session's crops of this geometry; decoding them the first time shows its own progress."""
        decoding = CaseProgress(self.state.config, f"{self.result_id}: decoding")
        try:
            return self.state.pixels(spec, decoding.update)
        finally:
            decoding.clear()

    def check(self, result: CaseResult) -> None:
        """Fail the case when its top-1 is under its threshold (catalog min_top1, relative or absolute, or
        --aiotbench-min-top1); a relative threshold whose reference was not measured fails, saying why."""
        failure = self.state.requirement(self.case, self.device).failure(self.case.id, result.top1,
                                                                          result.entry["images"])
        if failure is not None:
            pytest.fail(failure, pytrace=False)
