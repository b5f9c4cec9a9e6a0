"""Runner (b): stock Android without Python. TFLite's own ``benchmark_model`` binary (the user supplies it, built
for the device's ABI) measures latency on the device; it feeds random inputs, so accuracy comes from running the
same model file on the host, and the measurement says so (``session["accuracy_from"] == "host"``).

benchmark_model prints only aggregates per process, so each timed run is one process with ``--num_runs=1``
after its own warmup runs: per-run latencies are real device measurements (its "Inference (avg)" of one run),
all started by one device shell loop so no host<->device round trip is ever inside a timing.
"""

from __future__ import annotations

import re
import shlex
import secrets
import time
from pathlib import Path

from ..errors import one_line
from .adb import DEFAULT_WORKDIR, AdbTarget
from ..run.job import Job, Measurement, Timing
from .base import TargetError

DEFAULT_MAX_RUNS = 50  # one process each: bounded so a 500-image case does not start 500 processes
_TIMINGS = re.compile(r"Inference timings in us: Init: ([\d.]+), First inference: ([\d.]+), "
                      r"Warmup \(avg\): ([\d.eE+-]+|nan), Inference \(avg\): ([\d.eE+-]+)")


def parse_benchmark_output(text: str) -> list[tuple[float, float, float]]:
    """(init_s, first_s, inference_s) for every benchmark_model process in ``text``."""
    return [(float(m.group(1)) / 1e6, float(m.group(2)) / 1e6, float(m.group(4)) / 1e6)
            for m in _TIMINGS.finditer(text)]


class BenchmarkModelTarget(AdbTarget):
    def __init__(self, serial: str, *, benchmark_model: str, max_runs: int = DEFAULT_MAX_RUNS,
                 workdir_base: str = DEFAULT_WORKDIR, **options):
        self.binary = Path(benchmark_model).expanduser()
        if not self.binary.is_file():
            raise TargetError(f"adb:{serial}: benchmark_model binary {self.binary} not found")
        self.max_runs = max_runs
        super().__init__(serial, workdir_base=workdir_base, python=None, **options)

    def describe(self) -> dict:
        return {**super().describe(), "runner": "benchmark_model"}

    def run(self, job: Job, timing: Timing) -> Measurement:
        if job.framework != "tflite":
            raise TargetError(f"{self.name}: benchmark_model runs TFLite models only, not {job.framework}")
        if job.scenario != "single-stream":  # its runs are one inference at a time: never offline under that name
            raise TargetError(f"{self.name}: benchmark_model runs single-stream only, not the {job.scenario} "
                              "scenario (use the Python runner: leave out --aiotbench-benchmark-model)")
        reference = self._host_accuracy(job)
        latencies, init_s, first_s = self._device_latencies(job)
        timing.record(latencies)
        session = {**reference.session, "device": self.name, "runner": "benchmark_model",
                   "accuracy_from": "host", "latency_from": "device (benchmark_model, random inputs)"}
        from ..run.memory import figures

        # the device side is TFLite's own binary, whose per-process output this runner does not parse for memory
        memory = figures(None, None, None, "benchmark_model process",
                         ["not exposed: the benchmark_model runner reports no memory figures"])
        return Measurement(reference.topk, latencies, init_s, first_s, session, timed_on="device", memory=memory)

    def _host_accuracy(self, job: Job) -> Measurement:
        from .host import execute
        from ..run.timing import PerfCounterTiming

        from dataclasses import replace

        # accuracy only: no cooldown or sustained run on the host (startup refuses them with this runner)
        return execute(replace(job, cooldown=None, sustain_s=None), PerfCounterTiming(), where="host")

    def _device_latencies(self, job: Job) -> tuple[list[float], float, float]:
        deadline = time.monotonic() + self.deadline_s
        workdir = f"{self.workdir_base}/aiotbench-{secrets.token_hex(8)}"
        model_name = Path(job.model_file).name
        runs = max(1, min(len(job.pixels), self.max_runs))
        try:
            self._preflight(workdir, self.binary.stat().st_size + Path(job.model_file).stat().st_size, deadline)
            self._step("push benchmark_model", deadline, self.transport.push, self.binary, f"{workdir}/benchmark_model")
            self._step(f"push {model_name}", deadline, self.transport.push, Path(job.model_file),
                       f"{workdir}/{model_name}")
            q = shlex.quote
            one = (f"./benchmark_model --graph={q(model_name)} --num_threads={int(job.options.threads)} "
                   f"--warmup_runs={max(1, int(job.warmup))} --warmup_min_secs=0 --num_runs=1 --min_secs=0 "
                   f"--max_secs=60 --use_xnnpack={'false' if job.options.extra.get('delegate') == 'none' else 'true'}")
            remaining = self._remaining(deadline, "run")
            loop = f"i=0; while [ $i -lt {runs} ]; do {one} || exit $?; i=$((i+1)); done"
            command = (f"cd {q(workdir)} && chmod 700 benchmark_model && if command -v timeout >/dev/null 2>&1; "
                       f"then exec timeout -s KILL {max(1, int(remaining))} sh -c {q(loop)}; else {loop}; fi")
            code, out, err = self._shell("run benchmark_model", command, remaining + 2)
            if code != 0:
                raise TargetError(f"{self.name}: run benchmark_model: exit {code}: "
                                  f"{one_line(err or out, last=True)}")
            timings = parse_benchmark_output(out + "\n" + err)
            if len(timings) != runs or not all(t[2] > 0 for t in timings):
                raise TargetError(f"{self.name}: run benchmark_model: parsed {len(timings)} timings of {runs} runs "
                                  f"from its output (unexpected format?)")
            return [t[2] for t in timings], timings[0][0], timings[0][1]
        finally:
            self._cleanup(workdir)
