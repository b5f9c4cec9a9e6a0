"""Report lifecycle and exit status (issues 17 #2-3, 22 #5-6): a run that measured nothing never replaces a report
that holds measurements and is never green; ``--collect-only`` writes and creates nothing; no pytest-benchmark
switch turns an accuracy gate off while saying green.

Every run is a real ``pytest --aiotbench`` subprocess on 20 shared images with the small MobileNet v1 0.25 int8
model (about 2 s a run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.catalogs import Run, write_catalog
from tests.helpers.copies import labeled_dataset
from tests.inputs.test_faults_catalog import small_tflite

pytestmark = pytest.mark.real

NO_CASE_MEASURED = "a run that measured nothing is not green (exit 5"


@pytest.fixture
def project(tmp_path, shared):
    """A user's folder: a two-case catalog, 20 labelled images, and ``run(*args)`` = ``pytest --aiotbench`` there."""
    data = labeled_dataset(tmp_path / "data")
    catalog = write_catalog(tmp_path / "cat.toml", [small_tflite(), small_tflite(name="other")])
    report = tmp_path / "out" / "run.json"

    def run(*args: str, json_path: Path | None = report, cwd: Path = tmp_path) -> Run:
        cmd = [sys.executable, "-m", "pytest", "--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
               f"--aiotbench-catalog={catalog}", f"--aiotbench-dataset={data}",
               f"--aiotbench-cache={tmp_path / 'pixel-cache'}", "--aiotbench-warmup=1"]
        cmd += [f"--aiotbench-json={json_path}"] if json_path is not None else []
        proc = subprocess.run(cmd + list(args), cwd=cwd, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "COLUMNS": "200"})
        return Run(proc.returncode, proc.stdout, proc.stderr, json_path)

    run.report, run.catalog, run.root = report, catalog, tmp_path
    return run


def _measured(report: dict) -> list[str]:
    return [c["id"] for c in report["cases"] if c["latency_ms"] is not None]


def _out(run: Run) -> str:
    assert "Traceback" not in run.stdout + run.stderr and "INTERNALERROR" not in run.stdout + run.stderr, \
        run.stdout[-3000:] + run.stderr[-2000:]
    return run.stdout + run.stderr


@pytest.mark.slow
def test_collect_only_writes_nothing_and_creates_nothing(project):
    first = project()
    assert first.returncode == 0, _out(first)[-3000:]
    saved = project.report.read_bytes()
    assert len(_measured(json.loads(saved))) == 2
    listed = project("--collect-only", "-q")
    assert listed.returncode == 0 and "test_aiotbench[other-tflite-int8]" in _out(listed)
    assert project.report.read_bytes() == saved
    assert "JSON report" not in listed.stdout
    # A report path in folders that do not exist: none is created (not even at /), nor the pixel cache.
    for missing in (project.root / "new" / "deeper" / "r.json", Path("/aiotbench-lifecycle-probe/r.json")):
        cache = project.root / "fresh-cache"
        listed = project("--collect-only", "-q", f"--aiotbench-cache={cache}", json_path=missing)
        assert listed.returncode == 0, _out(listed)[-3000:]
        assert not missing.parent.exists() and not cache.exists()


@pytest.mark.parametrize("selection", [["-k", "no_such_case"], ["-m", "not tflite"], ["-k", "nothing or none"]])
@pytest.mark.slow
def test_a_selection_of_nothing_keeps_the_saved_report_and_html(project, selection):
    html = project.root / "run.html"
    first = project(f"--aiotbench-html={html}")
    assert first.returncode == 0, _out(first)[-3000:]
    saved, saved_html = project.report.read_bytes(), html.read_bytes()
    again = project(f"--aiotbench-html={html}", *selection)
    assert again.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, _out(again)[-3000:]
    assert project.report.read_bytes() == saved and html.read_bytes() == saved_html
    assert f"JSON report {project.report}: this run measured no case and it holds 2 measured case(s)" in again.stdout
    assert "no aiotbench case ran: nothing to compare or report" in again.stdout


@pytest.mark.slow
def test_every_case_skipped_is_not_green_and_keeps_the_saved_report(project):
    html = project.root / "run.html"
    first = project(f"--aiotbench-html={html}")
    saved, saved_html = project.report.read_bytes(), html.read_bytes()
    write_catalog(project.catalog, [small_tflite(file=str(project.root / "typo.tflite")),
                                    small_tflite(name="other", file=str(project.root / "typo2.tflite"))])
    skipped = project(f"--aiotbench-html={html}")
    out = _out(skipped)
    assert html.read_bytes() == saved_html and f"HTML report {html}: this run measured no case" in out
    assert first.returncode == 0 and skipped.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, out[-3000:]
    lines = [line for line in out.splitlines() if NO_CASE_MEASURED in line]
    assert len(lines) == 1 and "no aiotbench case was measured (2 skipped: model file not found:" in lines[0]
    assert project.report.read_bytes() == saved
    # With no report to protect, the skips are written down (with their reasons), and the run is still red.
    fresh = project.root / "fresh.json"
    skipped = project(json_path=fresh)
    assert skipped.returncode == pytest.ExitCode.NO_TESTS_COLLECTED
    assert [c["status"] for c in skipped.report["cases"]] == ["skipped", "skipped"]
    # The explicit opt-out, as a flag and as an ini key.
    allowed = project("--aiotbench-allow-empty")
    assert allowed.returncode == 0 and "accepted (--aiotbench-allow-empty)" in allowed.stdout, _out(allowed)[-2000:]
    (project.root / "pytest.ini").write_text("[pytest]\naiotbench_allow_empty = true\n")
    assert project().returncode == 0


@pytest.mark.slow
def test_a_report_holding_no_measurement_is_replaced_and_a_subset_that_measured_is_green(project):
    write_catalog(project.catalog, [small_tflite(file=str(project.root / "typo.tflite")),
                                    small_tflite(name="other")])
    skipped = project("-k", "mobilenet")
    assert skipped.returncode == pytest.ExitCode.NO_TESTS_COLLECTED and _measured(skipped.report) == []
    subset = project("-k", "other")
    assert subset.returncode == 0, _out(subset)[-3000:]
    assert _measured(subset.report) == ["other-tflite-int8"]


@pytest.mark.slow
def test_xdist_controller_decides_that_nothing_was_measured(project):
    write_catalog(project.catalog, [small_tflite(file=str(project.root / "typo.tflite")),
                                    small_tflite(name="other", file=str(project.root / "typo2.tflite"))])
    run = project("-n", "2")
    out = _out(run)
    assert run.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, out[-3000:]
    assert sum(NO_CASE_MEASURED in line for line in out.splitlines()) == 1


def test_a_pytest_unit_test_that_passes_does_not_make_a_run_of_no_case_green(project):
    tests = project.root / "tests"
    tests.mkdir()
    (tests / "test_unit.py").write_text("def test_unit():\n    assert True\n")
    write_catalog(project.catalog, [small_tflite(file=str(project.root / "typo.tflite"))])
    run = project(str(tests), str(Path(__file__).parents[2] / "bench_cases"))
    assert run.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, _out(run)[-3000:]
    assert "1 passed, 1 skipped" in run.stdout


# ---------------------------------------------------------------- pytest-benchmark's switches with --aiotbench

SWITCHES = {
    "none": [],
    "skip": ["--benchmark-skip"],
    "disable": ["--benchmark-disable"],
    "only": ["--benchmark-only"],
    "skip+only": ["--benchmark-skip", "--benchmark-only"],
    "autosave": ["--benchmark-autosave"],
    "json": ["--benchmark-json=bench.json"],
    "compare": ["--benchmark-compare", "--benchmark-compare-fail=mean:1000%"],
    "no plugin": ["-p", "no:benchmark"],
}


@pytest.mark.parametrize("switch", list(SWITCHES))
@pytest.mark.slow
def test_no_benchmark_switch_turns_the_accuracy_gate_off(project, switch):
    """Every case is measured whatever the switch, so an unmet threshold fails the run, and a met one passes
    with a real latency for every image (never a made-up number)."""
    if switch == "compare":  # a saved pytest-benchmark run to compare with
        assert project("--benchmark-autosave").returncode == 0
    gated = project(*SWITCHES[switch], "--aiotbench-min-top1=0.99")
    out = _out(gated)
    assert gated.returncode == pytest.ExitCode.TESTS_FAILED, out[-3000:]
    assert "other-tflite-int8: top-1 0.4500 < required 0.9900 on 20 images" in out
    passed = project(*SWITCHES[switch])
    assert passed.returncode == 0, _out(passed)[-3000:]
    for case in passed.report["cases"]:
        assert case["status"] == "passed" and case["images"] == 20
        latencies = case["per_image"]["latency_ms"]
        assert len(latencies) == 20 and all(ms > 0 for ms in latencies) and len(set(latencies)) > 1
        assert case["latency_ms"]["median"] > 0


@pytest.mark.slow
def test_benchmark_skip_in_addopts_still_runs_the_cases_and_skips_ordinary_benchmarks(project):
    (project.root / "pytest.ini").write_text("[pytest]\naddopts = --benchmark-skip\n")
    tests = project.root / "tests"
    tests.mkdir()
    (tests / "test_mine.py").write_text("def test_speed(benchmark):\n    benchmark(sum, [1, 2])\n\n"
                                        "def test_unit():\n    pass\n")
    run = project(str(tests), str(Path(__file__).parents[2] / "bench_cases"))
    out = _out(run)
    assert run.returncode == 0, out[-3000:]
    assert "3 passed, 1 skipped" in out  # the user's own benchmark is the one skipped
    assert "--benchmark-skip skips pytest-benchmark's own benchmarks; the aiotbench cases ran" in out
    assert len(_measured(run.report)) == 2
    bench_json = project(str(tests), str(Path(__file__).parents[2] / "bench_cases"), "--benchmark-only",
                         "--benchmark-json=b.json")
    assert bench_json.returncode == 0, _out(bench_json)[-3000:]
    names = {b["name"] for b in json.loads((project.root / "b.json").read_text())["benchmarks"]}
    assert {"test_speed", "test_aiotbench[mobilenet_v1_025-tflite-int8]"} <= names
