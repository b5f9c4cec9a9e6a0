"""The host target: the case runs in this process. ``execute`` is also what the on-device runner calls, so a job
means the same thing wherever it runs."""

from __future__ import annotations

import json
import platform
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from time import perf_counter
from typing import Iterator

import numpy as np

from ..run.emulation import with_emulation
from ..run.memory import Probe, ProbeError, emulation_reason, figures, measure_fresh
from ..frameworks import coverage
from ..frameworks import get_framework
from ..run import conditions
from ..frameworks.base import OutputError, check_outputs, check_quant, one_line
from ..run import offline  # module level: the device runner bundle follows these imports only
from ..inputs.pixels import ModelInputs
from ..run.job import topk
from ..run.job import Job, Measurement, Timing
from .base import DeviceSpec


class InferenceError(Exception):
    """The model ran but its first answer is unusable (exception inside the runtime, wrong output size)."""


@dataclass
class Prepared:
    """A job's session with its inputs (converted a chunk at a time, ``stream.ModelInputs``) and its first answer
    checked: ready to be timed."""
    job: Job
    session: object
    inputs: ModelInputs
    prepare_s: float
    first_s: float
    kept: int = 0  # answers checked and kept so far (``keep``)

    def keep(self, outputs: list) -> list[np.ndarray]:
        """What is kept of a chunk's outputs: their top-k rows (a model's whole answers are not). Every answer is
        checked first, between timed calls (never inside one): one NaN among 500 images fails the case."""
        try:
            check_outputs(outputs, self.job.model_file.name, self.job.num_classes, first_image=self.kept + 1,
                          total=None if self.inputs is None else len(self.inputs))
        except OutputError as exc:
            raise InferenceError(str(exc)) from None
        self.kept += len(outputs)
        # copy(): topk's rows are views of a whole-output argsort (8 KB an image for 1000 classes)
        return [topk(o, self.job.top_k, self.job.background).copy() for o in outputs]

    def measurement(self, ranked, latencies, where: str = "host") -> Measurement:
        """From the top-k rows (``keep``) of every image."""
        ranked = np.stack(ranked)
        info = with_emulation(dict(self.session.info))
        if hasattr(self.session, "coverage"):  # after timing: inspecting the model never counts as its latency
            info["coverage"] = coverage.collect(self.session.coverage)
        return Measurement(ranked, list(latencies), self.prepare_s, self.first_s, info, timed_on=where)


def check_output_shape(output: np.ndarray, job: Job, batched: bool) -> None:
    """One line naming the file, the expected and the actual shape when the model's answer is not one row of
    ``num_classes`` scores (e.g. a TorchScript model fed a larger input_size answers 4 rows: scoring row 0 would
    be garbage that passes)."""
    expected = (1, job.num_classes) if batched else (job.num_classes,)
    shape = tuple(output.shape)
    if (batched and (not shape or shape[0] != 1)) or output.size != job.num_classes:
        raise InferenceError(
            f"{job.model_file.name}: model output is {'x'.join(map(str, shape)) or 'a scalar'}, expected "
            f"{'x'.join(map(str, expected))} ({'batch 1 x ' if batched else ''}num_classes = {job.num_classes}); "
            "check input_size, layout and num_classes in the catalog")


@contextmanager
def prepared(job: Job, framework=None, inputs: ModelInputs | None = None, probe: Probe | None = None
             ) -> Iterator[Prepared]:
    """Prepare, convert the first chunk of pixels to the model's input (or take ``inputs``, another session's of
    this job) and check the first answer (nothing timed but prepare and the first inference); the session is
    closed on exit. ``probe`` (run.memory) reads the process's memory before and after ``prepare``, untimed."""
    framework = framework or get_framework(job.framework)
    if probe is not None:
        probe.start()
    start = perf_counter()
    session = framework.prepare(str(job.model_file), job.options)
    prepare_s = perf_counter() - start
    if probe is not None:
        probe.prepared()
    try:
        if inputs is None:
            inputs = ModelInputs(job.pixels, job.preprocess, session.input, job.model_file.name, job.chunk)
        # The first inference (timed alone, as first_ms) also checks the output: batch 1 x num_classes.
        # Sessions that can return the whole output tensor show its batch dimension too.
        infer_full = getattr(session, "infer_full", None)
        start = perf_counter()
        try:
            x = inputs.first()[0]
            first = infer_full(x) if infer_full is not None else session.infer(x)
        except Exception as exc:  # the runtime's own error types: report one line, not its traceback
            raise InferenceError(f"{job.model_file.name}: first inference failed: {one_line(exc)}") from None
        first_s = perf_counter() - start
        check_output_shape(np.asarray(first), job, batched=infer_full is not None)
        try:  # the first answer is checked before anything is timed; the rest between timed chunks (keep)
            check_outputs([first], job.model_file.name, job.num_classes, total=len(inputs))
            check_quant(job.quant, job.model_file.name, session.input.dtype, np.asarray(first).dtype,
                        getattr(session, "integer_quantized", None))
        except OutputError as exc:
            raise InferenceError(str(exc)) from None
        yield Prepared(job, session, inputs, prepare_s, first_s)
    finally:
        session.close()


def execute(job: Job, timing: Timing, where: str = "host", framework=None, probe: Probe | None = None
            ) -> Measurement:
    """Prepare, check the first answer, then time every image, converting the pixels to the model's input a chunk
    at a time between two timed calls; only top-k rows of the answers are kept.
    ``framework`` defaults to the registered one (a device runner, which has no entry points, passes its own).
    A job of the offline scenario is issued all at once instead (``execute_offline``). Where a single-stream case
    runs, before it: the cooldown, then the start temperature; while it runs (between timed calls): the clocks and
    temperatures (``run.conditions``). ``probe``: the process's memory read around prepare and around the whole
    timed loop (never inside it)."""
    if job.scenario == "offline":
        return execute_offline(job, timing, where, framework)
    from ..run.timing import SUSTAIN_WINDOWS, time_sustained

    source = conditions.Source()
    waited = conditions.cooldown(job.cooldown, source) if job.cooldown else None
    start_temp = source.hottest()
    with prepared(job, framework, probe=probe) as ready:
        if probe is not None:
            probe.loop_start(held=ready.inputs.held_bytes())
        sustained = None
        if job.sustain_s:  # at least two samples a window
            sampler = conditions.Sampler(source, min(conditions.SAMPLE_INTERVAL_S,
                                                     job.sustain_s / SUSTAIN_WINDOWS / 2))
            ranked, latencies, sustained, load = time_sustained(
                ready.session.infer, ready.inputs, job.warmup, ready.keep, job.sustain_s, sampler,
                getattr(timing, "progress", None) or (lambda done, total: None), job.options.threads)
            timing.record(latencies)  # the first pass: the case's latency, as without sustained mode
            timing.load = load
        else:
            sampler = conditions.Sampler(source)
            timing.sampler = sampler
            ranked, latencies = timing.time_each(ready.session.infer, ready.inputs, job.warmup, ready.keep)
        if probe is not None:
            probe.loop_end()
        m = ready.measurement(ranked, latencies, where)
        m.conditions = conditions.summarize(sampler.samples, source, start_temp, waited)
        m.sustained = sustained
    if probe is not None:
        m.memory = probe.figures()
    return m


def execute_offline(job: Job, timing: Timing, where: str = "host", framework=None) -> Measurement:
    """The offline scenario (run/offline.py): ``job.sessions`` sessions (None: as many as the cores hold), each
    prepared and its first answer checked as single-stream's, serving batches of ``job.batch`` where the model
    allows (else 1, said in the result). Nothing but the requests is timed; prepare_s/first_s are the first
    session's. The per-chunk wall times, amortized per image, feed ``timing.record`` (pytest-benchmark's stats)."""
    from contextlib import ExitStack
    from dataclasses import replace

    framework = framework or get_framework(job.framework)
    threads = job.options.threads
    count = job.sessions or offline.auto_sessions(threads)
    group = count * max(1, job.batch)
    job = replace(job, chunk=offline.offline_chunk(job.chunk, job.preprocess.input_size, group))
    with ExitStack() as stack:
        ready = stack.enter_context(prepared(job, framework))
        more = [stack.enter_context(prepared(job, framework, ready.inputs)) for _ in range(count - 1)]
        sessions = [ready.session] + [p.session for p in more]
        first = ready.inputs.first()
        probe = np.concatenate(first[:job.batch], axis=0) if job.batch > 1 else None
        del first
        runs, batch, note = offline.runners(sessions, job.batch, probe, job.num_classes, job.model_file.name)
        try:
            run = offline.issue_all(runs, ready.inputs, batch, job.warmup, job.model_file.name, ready.keep,
                                    getattr(timing, "progress", None), threads * count)
        except offline.OfflineError as exc:
            raise InferenceError(str(exc)) from None
        timing.load = run.load
        timing.record([s / n for s, n in zip(run.chunk_s, run.chunk_images)])
        m = ready.measurement(run.kept, [], where)
        m.offline = offline.summary(run, count, threads, batch, job.batch, note)
        return m


def fresh_memory(job: Job) -> dict:
    """The job's memory measured in a fresh process (run.memory.measure_fresh): what the host reports, so that no
    earlier case of this process counts. A probe that fails gives null figures and its reason, never 0."""
    if not job.memory:
        return figures(None, None, None, "not measured", ["not measured (--aiotbench-memory off)"])
    if emulation_reason():  # the probe would measure the emulator (and cost a minute under it)
        return figures(None, None, None, "fresh process", [emulation_reason()])
    try:
        stat = job.model_file.stat()
    except OSError as exc:
        return figures(None, None, None, "fresh process", [f"probe not run: {exc.strerror or exc}"])
    key = json.dumps([job.framework, str(job.model_file), stat.st_size, stat.st_mtime_ns, job.options.threads,
                      job.options.extra, asdict(job.preprocess)], sort_keys=True, default=str)
    if key not in _FRESH:  # a repeat or an A/B baseline seen again: the same file measured once a session
        try:
            _FRESH[key] = measure_fresh(job.framework, str(job.model_file), job.options.threads,
                                        dict(job.options.extra), asdict(job.preprocess))
        except ProbeError as exc:
            return figures(None, None, None, "fresh process", [str(exc)])
    return dict(_FRESH[key])


_FRESH: dict[str, dict] = {}  # fresh_memory's figures by job (file identity, options, preprocessing)


class HostTarget:
    """``--device=host`` (the default): this process. Registered as the ``host`` entry point (targets/__init__)."""

    name = "host"
    scheme = "host"
    forms = "host"
    options: frozenset[str] = frozenset()  # the device options (runner, work dir, timeouts) mean nothing here

    @classmethod
    def accepts(cls, text: str) -> DeviceSpec | None:
        return DeviceSpec("host", "", text=text) if text == "host" else None

    @classmethod
    def from_spec(cls, device: DeviceSpec, **options) -> "HostTarget":
        return cls()

    def describe(self) -> dict:
        from ..run.environment import machine_facts

        return {"target": "host", "name": platform.node(), **machine_facts()}

    def run(self, job: Job, timing: Timing) -> Measurement:
        memory = fresh_memory(job)  # before the timed run, in another process: never during it
        measurement = execute(job, timing)
        measurement.memory = memory
        return measurement

    def close(self) -> None:
        pass  # sessions are closed after each job: nothing held between cases
