"""Device conditions on the host: sampled only between two timed calls (never during one), through both clocks
and sustained mode; the plugin's options, entries and verdicts on a constructed sysfs tree."""

from __future__ import annotations

import json
from time import perf_counter, sleep

import pytest

from pytest_aiotbench.report.read import first_schema_violation
from pytest_aiotbench.report.schema import REPORT
from pytest_aiotbench.run.conditions import NOT_EXPOSED, SYSFS_ENV, Sampler, Source
from pytest_aiotbench.targets.host import HostTarget, prepared
from pytest_aiotbench.run.timing import BenchmarkTiming, PerfCounterTiming, time_sustained

from tests.helpers.adbdevice.jobs import REPO, make_job, shared_model
from tests.helpers.sysfs import build_tree, conditions_run


class RecordingSource(Source):
    def __init__(self, root):
        super().__init__(root)
        self.reads: list[float] = []

    def read(self):
        self.reads.append(perf_counter())
        return super().read()


def _slow(infer, spans):
    def timed(x):  # what the clock times: the inference (made 10 ms slower so a sample could fall inside)
        start = perf_counter()
        out = infer(x)
        sleep(0.01)
        spans.append((start, perf_counter()))
        return out
    return timed


def _assert_between(reads, spans):
    inside = [r for r in reads if any(a <= r <= b for a, b in spans)]
    assert not inside, f"{len(inside)} sysfs reads during a timed inference"


@pytest.mark.parametrize("clock", ["perf_counter", "benchmark"])
def test_samples_only_between_timed_calls(clock, tmp_path, request):
    source = RecordingSource(build_tree(tmp_path))
    job = make_job(shared_model(), images=24, warmup=1)
    spans: list = []
    if clock == "perf_counter":
        timing = PerfCounterTiming()
    else:
        bench = request.getfixturevalue("benchmark")
        bench.disabled = False  # pytest-benchmark switches itself off under xdist: this case is its timed path
        timing = BenchmarkTiming(bench)
    timing.sampler = Sampler(source, interval_s=0.03)
    with prepared(job) as ready:
        _, latencies = timing.time_each(_slow(ready.session.infer, spans), ready.inputs, job.warmup, ready.keep)
    assert len(latencies) == 24 and len(timing.sampler.samples) >= 6
    _assert_between(source.reads, spans[1:])  # spans[0]: the warmup round


def test_sustained_loop_cycles_and_samples_between_calls(tmp_path):
    source = RecordingSource(build_tree(tmp_path))
    job = make_job(shared_model(), images=6, warmup=1)
    spans: list = []
    with prepared(job) as ready:
        kept, latencies, curve, load = time_sustained(_slow(ready.session.infer, spans), ready.inputs, 1,
                                                      ready.keep, 0.6, Sampler(source, 0.03))
    assert len(kept) == 6 and len(latencies) == 6  # accuracy and the case's latency: the dataset once
    assert curve["cycles"] >= 3 and curve["images"] == len(spans) - 1 and curve["duration_s"] >= 0.6
    assert sum(w["images"] for w in curve["windows"]) == curve["images"]
    _assert_between(source.reads, spans[1:])


def test_host_case_reports_not_exposed_on_this_machine_or_its_values(monkeypatch):
    monkeypatch.delenv(SYSFS_ENV, raising=False)
    m = HostTarget().run(make_job(shared_model(), images=4), PerfCounterTiming())
    real = Source("/")
    assert (m.conditions["temp_c"] == NOT_EXPOSED) == (not real.zones)
    assert (m.conditions["cpu_khz"] == NOT_EXPOSED) == (not real.cpus)


@pytest.mark.slow
def test_plugin_on_a_hot_host_tree(pytester, tmp_path, monkeypatch):
    """The plugin on the host with a constructed /sys above its trip point: throttled (INVALID), the cooldown
    before the second case only, the sustained curve in every entry; the JSON report passes its schema."""
    shared_model()
    monkeypatch.setenv(SYSFS_ENV, str(build_tree(tmp_path / "sys", temp_c=65, trip_c=60, battery_c=None)))
    result = conditions_run(pytester, tmp_path / "r.json", "--aiotbench-cooldown=0.3", "--aiotbench-sustain=1s",
                            f"--aiotbench-html={tmp_path / 'r.html'}")
    result.assert_outcomes(passed=2)
    report = json.loads((tmp_path / "r.json").read_text())
    assert first_schema_violation(report, REPORT) is None
    first, second = report["cases"]
    assert "cooldown" not in first["conditions"]
    assert second["conditions"]["cooldown"]["mode"] == "seconds" and second["conditions"]["cooldown"]["waited_s"] >= 0.3
    for case in (first, second):
        assert case["conditions"]["start_temp_c"] == 65.0
        assert case["conditions"]["temp_c"]["cpu-thermal"]["max"] == 65.0
        assert case["validity"]["valid"] is False
        assert any(r.startswith("throttled: cpu-thermal reached 65.0 C") for r in case["validity"]["reasons"])
        assert case["sustained"]["duration_s"] >= 1 and case["sustained"]["last_first_ratio"] > 0
    out = " ".join(result.stdout.str().replace("\n    ", " ").split())  # the summary lines wrap to the terminal
    assert "throttled)" in out and "sustained last/first window" in out and "65-65 C" in out
    html = (tmp_path / "r.html").read_text()
    assert 'id="chart-sustained"' in html


@pytest.mark.parametrize("args, message", [
    (["--aiotbench-cooldown=soon"], "--aiotbench-cooldown soon: expected SECONDS"),
    (["--aiotbench-cooldown=until=45,max=-1"], "--aiotbench-cooldown until=45,max=-1: expected SECONDS"),
    (["--aiotbench-sustain=forever"], "--aiotbench-sustain forever: expected a duration"),
    (["--aiotbench-sustain=0s"], "--aiotbench-sustain 0s: expected a duration"),
])
def test_bad_values_are_usage_errors(pytester, args, message):
    result = pytester.runpytest_inprocess("--aiotbench", "-p", "no:cacheprovider", *args)
    assert result.ret == 4
    assert message in result.stderr.str() + result.stdout.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_sustain_with_ab_or_benchmark_model_is_refused_at_start(pytester, tmp_path):
    catalog = REPO / "models" / "shared.toml"
    ab = pytester.runpytest_inprocess("--aiotbench", "-p", "no:cacheprovider", "--aiotbench-suite=none",
                                      f"--aiotbench-catalog={catalog}", f"--aiotbench-baseline={catalog}",
                                      "--aiotbench-sustain=5s")
    assert ab.ret == 4 and "--aiotbench-sustain cannot be combined with A/B" in ab.stderr.str() + ab.stdout.str()
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")
    for option in ("--aiotbench-sustain=5s", "--aiotbench-cooldown=until=40"):
        result = pytester.runpytest_inprocess(
            "--aiotbench", "-p", "no:cacheprovider", "--aiotbench-suite=none", f"--aiotbench-catalog={catalog}",
            f"--aiotbench-benchmark-model={binary}", "--aiotbench-device=adb:emulator-5554", option)
        out = result.stderr.str() + result.stdout.str()
        assert result.ret == 4 and "need the Python runner on the device, not --aiotbench-benchmark-model" in out
        assert "Traceback" not in out
