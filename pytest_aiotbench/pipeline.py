"""One case, start to end, without pytest: ``run_case(case, dataset, target)`` -> the case's report entry.

The walk goes down the stages once: the catalog case and its zoo manifest (inputs) -> the dataset's crops for the
model's geometry (inputs) -> a job (run) -> the target prepares the framework session and times ``infer()`` alone
(targets, frameworks, run) -> accuracy, VIPS/VOPS, validity and the A/B verdict (verdicts) -> the entry (report).
The ``aiotbench`` fixture only adapts this to pytest (skip/fail, progress, properties, the session's record), and
so do the repeats; the benchmark scripts call it too.

    from pytest_aiotbench.inputs.catalog import load
    from pytest_aiotbench.inputs.dataset import open_dataset
    from pytest_aiotbench.pipeline import run_case
    from pytest_aiotbench.targets import resolve_target

    entry = run_case(load("aiotbench.toml")[0], open_dataset("imagenet-val-500"), resolve_target("host"))
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Callable

from .files import file_sha256
from .frameworks import FrameworkUnavailable, ModelLoadError, PrepareOptions, UnknownFramework, get_framework
from .inputs import manifest
from .inputs.catalog import Case
from .inputs.dataset import Dataset
from .inputs.preprocess import InputShapeError, PixelCache, PreprocessError, PreprocessSpec
from .inputs.thresholds import Requirement
from .report.entry import case_entry, plain_json
from .run.job import Job, Measurement, RunSettings, Timing
from .run.pairs import SESSIONS, PairTiming, creation_order, time_prepared
from .run.timing import PerfCounterTiming
from .targets.base import Target, TargetError
from .targets.host import InferenceError, Prepared, fresh_memory, prepared
from .verdicts import ab
from .verdicts.score import accuracy, images_per_s, latency_stats_ms, vips, vops, wilson_interval
from .verdicts.validity import assess

# Failures that are the model's, the data's or the device's, not the harness's: one line, no traceback.
CASE_ERRORS = (ModelLoadError, InputShapeError, PreprocessError, InferenceError, TargetError, UnknownFramework,
               manifest.ManifestMismatch)
PREPARE_ERRORS = (ModelLoadError, InputShapeError, PreprocessError, InferenceError)


class CaseSkipped(Exception):
    """The case cannot run here (its runtime is not installed, its file is missing): a skip, or a failure under
    ``--aiotbench-strict``. One line saying what to install or fix."""


class CaseFailed(Exception):
    """The case ran into its model's, data's or device's problem. One line. ``entry`` is the measured entry when
    there is one to keep (the candidate of an A/B whose baseline could not run)."""

    def __init__(self, reason: str, entry: dict | None = None) -> None:
        super().__init__(reason)
        self.entry = entry


class BaselineError(Exception):
    """The baseline side of an A/B cannot run (missing file, load or output-shape error). Names the baseline
    file; the candidate is then measured alone, its measurement kept, and the case fails saying why."""


PixelSource = Callable[[PreprocessSpec], object]  # spec -> the crops (an array, or a pixels.PixelStore on disk)


def run_case(case: Case, dataset: Dataset, target: Target, timing: Timing | None = None, *,
             run: RunSettings = RunSettings(), pixels: PixelSource | None = None, device: str = "host",
             result_id: str | None = None, requirement: Requirement | None = None, baseline: Case | None = None,
             ab_limits=(), cooldown: dict | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
    """Measure ``case`` on ``target`` over ``dataset`` and return its report entry (plain JSON values).

    ``run`` is how the run executes its cases (threads, warmup, scenario, sustained mode, memory: ``run/job.py``);
    ``timing`` times ``infer()`` (default: a bare perf_counter); ``pixels`` gives the crops of a geometry (default:
    decoded into memory: fine for small sets; the plugin passes its on-disk store); ``requirement`` is the top-1
    the case is held to (``inputs/thresholds.py``), written into the entry; ``baseline`` makes it an interleaved
    A/B on the host (``run/pairs.py``), judged against ``ab_limits``; ``cooldown`` waits before the case, where it
    runs (``run/conditions.py``). Raises CaseSkipped or CaseFailed."""
    if not case.file.is_file():
        raise CaseSkipped(missing_file_hint(case))
    timing = timing or PerfCounterTiming(progress or (lambda done, total: None), run.threads)
    pixels = pixels or _in_memory(dataset)
    requirement = requirement or Requirement(case.min_top1)
    problem = None
    try:
        get_framework(case.framework)
        weights = manifest_weights(case) or case.weights
        job = _job(case, pixels, run, cooldown)
        pair = None
        if baseline is not None:
            try:
                pair = _time_pair(job, baseline, pixels, device, progress, run)
            except BaselineError as exc:  # the baseline's fault: NEW is measured alone, kept, and fails
                problem = f"{exc}; {case.id} measured alone, not paired"
        if pair is not None:
            measurement, timing.load = pair.new, pair.load
            timing.record(measurement.latencies_s)
        else:
            measurement = target.run(job, timing)
    except FrameworkUnavailable as exc:
        raise CaseSkipped(f"{case.framework}: {exc.fix}") from None
    except CASE_ERRORS as exc:
        raise CaseFailed(str(exc)) from None
    entry = measured_entry(case, measurement, dataset, weights, requirement, run.warmup, result_id, device)
    entry["validity"] = assess(None if measurement.offline else entry["per_image"]["latency_ms"], timing.load,
                               conditions=entry.get("conditions"))
    if pair is not None:
        from .inputs.limits import case_limits

        entry["ab"] = pair_entry(case.id, baseline, pair, entry, dataset.labels, dataset.labeled,
                                 case_limits(ab_limits, case.fail_on))
    entry = plain_json(entry, case.id)  # raises EntryError: what cannot be JSON cannot be reported
    if problem is not None:
        raise CaseFailed(problem, entry)
    return entry


def missing_file_hint(case: Case) -> str:
    if case.builtin:
        how = f"build it with `aiotbench zoo build --models {case.model}`"
    else:
        how = f"fix the path in {case.catalog}" if case.catalog else "check the catalog entry"
    return f"model file not found: {case.file} ({how})"


def manifest_weights(case: Case) -> str | None:
    """Zoo artifacts carry a manifest: verify the file (and its preprocessing) against it and return the weights
    tag. None when no manifest lists the file. Raises ManifestMismatch."""
    manifest.verify(case.file)
    found = manifest.lookup(case.file)
    if found:
        manifest.check_input(case.file, found, case.preprocess)
    return found.get("weights") if found else None


def _in_memory(dataset: Dataset) -> PixelSource:
    crops: dict[str, object] = {}
    cache = PixelCache(None)

    def pixels(spec: PreprocessSpec):
        if spec.geometry not in crops:
            crops[spec.geometry] = dataset.pixels(spec, cache)
        return crops[spec.geometry]

    return pixels


def _job(case: Case, pixels: PixelSource, run: RunSettings, cooldown: dict | None = None) -> Job:
    return Job(case_id=case.id, framework=case.framework, model_file=case.file,
               options=PrepareOptions(threads=run.threads, extra=case.options), pixels=pixels(case.preprocess),
               preprocess=case.preprocess, warmup=run.warmup, num_classes=case.num_classes, background=case.background,
               quant=case.quant, scenario=run.scenario, sessions=run.sessions, batch=run.batch, cooldown=cooldown,
               sustain_s=run.sustain_s, memory=run.memory)


# -- the A/B ----------------------------------------------------------------------------------------------------

def _time_pair(job: Job, baseline: Case, pixels: PixelSource, device: str, progress, run: RunSettings) -> PairTiming:
    if device != "host":
        raise TargetError(f"{job.case_id}: A/B (--aiotbench-baseline) runs on the host only, not {device}")
    if not baseline.file.is_file():
        raise BaselineError(f"A/B baseline {baseline.file}: model file not found")
    try:
        manifest_weights(baseline)
    except manifest.ManifestMismatch as exc:
        raise BaselineError(f"A/B baseline {baseline.file}: {exc}") from None
    base_job = _job(baseline, pixels, run)

    memory = fresh_memory(job), fresh_memory(base_job)  # each side in its own fresh process, before timing
    pair = time_pair(job, base_job, progress or (lambda done, total: None), run.threads)
    pair.new.memory, pair.base.memory = memory
    return pair


def time_pair(new: Job, base: Job, progress=lambda done, total: None, threads: int = 1,
              sessions: int = SESSIONS) -> PairTiming:
    """Prepare ``sessions`` sessions of NEW and of BASE on the host (in ``creation_order``; a side's sessions share
    its converted inputs), then time them alternately on the same images (``run/pairs.py``)."""
    with ExitStack() as stack:
        made: dict[tuple[str, int], Prepared] = {}
        for side, k in creation_order(sessions):
            job, first = (new, made.get(("new", 0))) if side == "new" else (base, made.get(("base", 0)))
            try:
                made[side, k] = stack.enter_context(prepared(job, inputs=first.inputs if first else None))
            except PREPARE_ERRORS as exc:
                if side == "new":  # the candidate's own problem: the case fails naming its file
                    raise
                raise BaselineError(f"A/B baseline {base.model_file}: "
                                    f"{str(exc).removeprefix(f'{base.model_file.name}: ')}") from None
        return time_prepared([made["new", k] for k in range(sessions)], [made["base", k] for k in range(sessions)],
                             max(new.warmup, base.warmup), progress, threads)


# -- the entry --------------------------------------------------------------------------------------------------

def measured_entry(case: Case, m: Measurement, ds: Dataset, weights: str | None, requirement: Requirement,
                   warmup: int, result_id: str | None = None, device: str = "host") -> dict:
    """The report entry of a measured case (scored against the dataset's labels unless weights are random)."""
    scored = ds.labeled and weights != "random"
    top1 = accuracy(m.topk, ds.labels, 1) if scored else None
    top5 = accuracy(m.topk, ds.labels, 5) if scored else None
    if m.offline is not None:
        return offline_entry(case, m, weights, requirement, warmup, result_id, device, top1, top5)
    stats = latency_stats_ms(m.latencies_s)
    vips_value = vips(top1, stats["mean"] / 1e3)
    return case_entry(
        **_measured_fields(case, m, weights, requirement, warmup, result_id, device, top1, top5, len(m.latencies_s)),
        latency_ms=stats, images_per_s=images_per_s(stats["mean"]), vips=vips_value,
        vops=vops(vips_value, case.gflops), conditions=m.conditions, sustained=m.sustained, memory=m.memory,
        per_image={"top5": m.topk.tolist(), "latency_ms": [s * 1e3 for s in m.latencies_s]},
    )


def _measured_fields(case: Case, m: Measurement, weights: str | None, requirement: Requirement, warmup: int,
                     result_id: str | None, device: str, top1: float | None, top5: float | None,
                     images: int) -> dict:
    """What every measured case's entry holds, whatever its scenario: identity, accuracy, requirement, the
    runtime and the prepare/first-call times."""
    return dict(
        id=case.id, result_id=result_id or case.id, device=device, model=case.model, framework=case.framework,
        quant=case.quant, file=str(case.file), file_sha256=file_sha256(case.file),
        weights=weights or "unspecified", images=images, top1=top1, top5=top5,
        top1_ci95=wilson_interval(round(top1 * images), images) if top1 is not None else None,
        **requirement.entry_fields(),
        reference_top1=case.reference_top1, prepare_ms=m.prepare_s * 1e3, first_ms=m.first_s * 1e3, warmup=warmup,
        gflops=case.gflops, status="passed", reason=None,
        runtime={**m.session, "timed_on": m.timed_on}, fail_on=list(case.fail_on) or None,
    )


def offline_entry(case: Case, m: Measurement, weights: str | None, requirement: Requirement, warmup: int,
                  result_id: str | None, device: str, top1: float | None, top5: float | None) -> dict:
    """An offline-scenario case (run/offline.py): accuracy as single-stream's, ``images_per_s`` the throughput,
    no latency, and ``vips``/``vops`` null, so the case never enters the single-stream AIoTBench score, ranking
    or latency comparisons. Its own VIPS is ``offline.vips`` = top-1 x offline images/s (single-stream VIPS is
    top-1 / mean latency, i.e. top-1 x single-stream images/s: the same quantity at the other scenario's rate)."""
    off = dict(m.offline)
    off.pop("load", None)  # judged in the entry's validity
    rate = off.get("images_per_s")
    off["vips"] = top1 * rate if top1 is not None and rate else None
    off["vops"] = vops(off["vips"], case.gflops)
    return case_entry(
        **_measured_fields(case, m, weights, requirement, warmup, result_id, device, top1, top5, len(m.topk)),
        latency_ms=None, images_per_s=rate, vips=None, vops=None, scenario="offline", offline=off,
        per_image={"top5": m.topk.tolist(), "latency_ms": []},
    )


def pair_entry(case_id: str, baseline: Case, timing: PairTiming, new_entry: dict, labels, scored: bool,
               limits: list) -> dict:
    """The ``ab`` block of the candidate's entry: the baseline's numbers, the paired ratio, the verdict."""
    base = timing.base
    base_ms = [s * 1e3 for s in base.latencies_s]
    base_acc = {"top1": accuracy(base.topk, labels, 1) if scored else None,
                "top5": accuracy(base.topk, labels, 5) if scored else None}
    base_stats = latency_stats_ms(base.latencies_s)
    # The baseline's own work figures: VOPS limits need its GFLOPs (another model may do other work per image).
    base_vips = vips(base_acc["top1"], base_stats["mean"] / 1e3)
    base_work = {"gflops": baseline.gflops, "vips": base_vips, "vops": vops(base_vips, baseline.gflops)}
    new_acc = {"top1": new_entry["top1"], "top5": new_entry["top5"], "gflops": new_entry.get("gflops"),
               "memory": (new_entry.get("memory") or {}).get("peak_mb")}
    base_memory = base.memory
    result = ab.compare_pair(new_entry["per_image"]["latency_ms"], base_ms, limits,
                             {**base_acc, "gflops": baseline.gflops,
                              "memory": (base_memory or {}).get("peak_mb")}, new_acc, case_id, timing.timed_with)
    return {"baseline": {"file": str(baseline.file), "file_sha256": file_sha256(baseline.file), **base_acc,
                         **base_work, "latency_ms": base_stats, "runtime": dict(base.session),
                         **({"memory": base_memory} if base_memory is not None else {}),
                         "validity": assess(base_ms, timing.load),
                         "per_image": {"latency_ms": base_ms}},
            "timed_with": timing.timed_with,
            **result.as_dict()}


__all__ = ["CASE_ERRORS", "BaselineError", "CaseFailed", "CaseSkipped", "measured_entry", "missing_file_hint",
           "pair_entry", "run_case", "time_pair"]
