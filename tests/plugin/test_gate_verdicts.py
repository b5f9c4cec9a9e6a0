"""Gate verdicts where CI looks (issue 17 items 4, 5): the pytest gate's verdict is a test report of its own
(summary line, JUnit XML, ``--lf``), a Markdown job summary goes to ``$GITHUB_STEP_SUMMARY``, the JUnit properties
are JSON without a stale status; a limit that could not be judged is NOT JUDGED, said first, and non-zero."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from pytest_aiotbench.report.compare import EXIT_CANNOT_JUDGE, compare_reports, parse_limits, verdict
from pytest_aiotbench.report.read import normalize_report
from tests.helpers.realrun import requires_real_run, run_benchmark
from tests.helpers.reports import gate_plugin_args, make_case, make_report, run_cli, write_json


def _invalid(case, reason="load: other processes kept 1.00 of 2 cores busy"):
    case["validity"] = {"valid": False, "reasons": [reason], "notes": [], "checks": {}}
    return case


def _both_invalid_slow(tmp_path):
    """The issue's example: a 3.6x slower model, both runs INVALID from machine load."""
    base = write_json(tmp_path / "b.json", make_report([_invalid(make_case("m-tflite-int8", latency_ms=5.0))]))
    new = write_json(tmp_path / "n.json", make_report([_invalid(make_case("m-tflite-int8", latency_ms=18.0,
                                                                          seed=3))]))
    return base, new


# ----------------------------------------------------------------------------------------------------- compare

@pytest.mark.parametrize("limit", ["p90:+10%", "median:+5%", "vips:-5%", "mean:+1%"])
def test_compare_unjudged_limit_is_not_judged_first_and_exit_3(tmp_path, limit):
    base, new = _both_invalid_slow(tmp_path)
    result = run_cli("compare", base, new, "--fail-on", limit)
    assert result.returncode == EXIT_CANNOT_JUDGE, result.stdout + result.stderr
    verdict_part = result.stdout[result.stdout.rindex("\n\n"):]
    assert verdict_part.strip().startswith("NOT JUDGED: 1 limit check(s)"), verdict_part
    assert "no regression found" not in result.stdout and "OK:" not in result.stdout
    assert "BASE INVALID (load) / NEW INVALID (load)" in result.stdout


def test_compare_allow_not_judged_is_the_explicit_opt_out(tmp_path):
    base, new = _both_invalid_slow(tmp_path)
    result = run_cli("compare", base, new, "--fail-on", "p90:+10%", "--allow-not-judged")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NOT JUDGED (allowed by --allow-not-judged): 1 limit check(s)" in result.stdout
    contradiction = run_cli("compare", base, new, "--fail-on", "p90:+10%", "--allow-not-judged", "--fail-invalid")
    assert contradiction.returncode == 2 and "contradict" in contradiction.stderr


def test_compare_regression_beats_not_judged(tmp_path):
    base = write_json(tmp_path / "b.json", make_report([make_case("a-tflite-int8", top1=0.70),
                                                        make_case("b-tflite-int8", top1=0.70)]))
    new = write_json(tmp_path / "n.json", make_report([make_case("a-tflite-int8", top1=0.60, seed=1),
                                                       _invalid(make_case("b-tflite-int8", latency_ms=9, seed=2))]))
    result = run_cli("compare", base, new, "--fail-on", "top1:-0.5pt,p90:+10%")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL: 1 regression(s)" in result.stdout and "NOT JUDGED: 1 limit check(s)" in result.stdout


def test_accuracy_limit_on_a_case_without_accuracy_is_not_judged():
    """Some compared cases have top-1, one does not (random weights): that one is NOT JUDGED, not skipped."""
    base = make_report([make_case("a-tflite-int8"), make_case("b-tflite-int8")])
    new = make_report([make_case("a-tflite-int8", seed=1), make_case("b-tflite-int8", seed=2, top1=None, top5=None)])
    comparison = compare_reports(normalize_report(base), normalize_report(new), parse_limits(["top1:-1pt"]))
    assert comparison.cannot_judge and not comparison.failed
    assert comparison.exit_code() == EXIT_CANNOT_JUDGE and comparison.exit_code(allow_not_judged=True) == 0
    text = verdict(comparison)
    assert text.startswith("NOT JUDGED") and "b-tflite-int8: top1 n/a not judged against top1:-1pt" in text


# --------------------------------------------------------------------------------------------- the pytest gate

def _junit(path):
    return {case.get("name"): case for case in ET.parse(path).getroot().iter("testcase")}


def test_gate_regression_is_a_failed_test_in_summary_and_junit(gated, pytester, monkeypatch):
    summary = pytester.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = gated([make_case("a-tflite-int8", top1=0.72, seed=1), make_case("b-onnx-fp32", seed=3)],
                   [make_case("a-tflite-int8", top1=0.70, seed=2), make_case("b-onnx-fp32", seed=4)],
                   "--aiotbench-compare", "base.json", "--aiotbench-fail-on", "top1:-0.5pt",
                   "--junitxml", "junit.xml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*FAILED aiotbench::compare-gate - FAIL: 1 regression(s)*", "*1 failed, 1 passed*"])
    cases = _junit(pytester.path / "junit.xml")
    failure = cases["compare-gate"].find("failure")
    assert failure is not None and failure.get("message").startswith("FAIL: 1 regression(s)")
    assert "a-tflite-int8: top1 -2.00pt" in failure.text
    props = {p.get("name"): p.get("value") for p in cases["compare-gate"].iter("property")}
    assert props["aiotbench_gate"].startswith("FAIL: 1 regression(s)")
    markdown = summary.read_text()
    assert "### aiotbench compare gate: REGRESSION" in markdown
    assert "| `a-tflite-int8` | REGRESSION | top1 -2.00pt (limit top1:-0.5pt) |" in markdown
    assert "| `b-onnx-fp32` | ok | - |" in markdown


def test_gate_pass_is_a_passed_test_and_lf_reruns_after_a_failure(gated, pytester):
    result = gated([make_case("a-tflite-int8", top1=0.72)], [make_case("a-tflite-int8", top1=0.60)],
                   "--aiotbench-compare", "base.json", "--aiotbench-fail-on", "top1:-0.5pt")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    lastfailed = json.loads((pytester.path / ".pytest_cache/v/cache/lastfailed").read_text())
    assert "aiotbench::compare-gate" in lastfailed
    fixed = gated([make_case("a-tflite-int8", top1=0.72)], [make_case("a-tflite-int8", top1=0.72)],
                  "--aiotbench-compare", "base.json", "--aiotbench-fail-on", "top1:-0.5pt", "--lf", "-rA")
    assert fixed.ret == pytest.ExitCode.OK
    fixed.stdout.fnmatch_lines(["*PASSED aiotbench::compare-gate*", "*2 passed*"])
    assert not (pytester.path / ".pytest_cache/v/cache/lastfailed").exists() or "aiotbench::compare-gate" not in \
        json.loads((pytester.path / ".pytest_cache/v/cache/lastfailed").read_text())


@pytest.mark.slow
def test_gate_not_judged_fails_unless_allowed(gated):
    args = ("--aiotbench-compare", "base.json", "--aiotbench-fail-on", "p90:+10%")
    base, new = [_invalid(make_case("m-tflite-int8", latency_ms=5.0))], [_invalid(make_case("m-tflite-int8",
                                                                                          latency_ms=18.0, seed=3))]
    result = gated(base, new, *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*FAILED aiotbench::compare-gate - NOT JUDGED: 1 limit check(s)*"])
    allowed = gated(base, new, *args, "--aiotbench-allow-not-judged")
    assert allowed.ret == pytest.ExitCode.OK
    allowed.stdout.fnmatch_lines(["NOT JUDGED (allowed by --allow-not-judged)*", "*2 passed*"])


def test_gate_that_cannot_compare_is_a_failed_test(gated):
    result = gated([make_case("a-tflite-int8")], [make_case("b-tflite-int8")],
                   "--aiotbench-compare", "base.json", "--aiotbench-fail-on", "top1:-1pt")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*FAILED aiotbench::compare-gate - cannot compare or report*"])
    assert "no case in common" in result.stdout.str()


@requires_real_run
@pytest.mark.parametrize("xdist", [[], ["-p", "xdist", "-n", "1"]], ids=["plain", "xdist"])
def test_real_gate_failure_in_junit_and_properties_are_json(tmp_path, xdist):
    base = run_benchmark(tmp_path, "0.5_160", "base")
    assert base.returncode == 0, base.stdout[-2000:]
    worse = run_benchmark(tmp_path, "0.25_128", "worse", *gate_plugin_args(),
                          f"--aiotbench-compare={tmp_path / 'base.json'}", "--aiotbench-fail-on", "top1:-1pt",
                          "--junitxml", str(tmp_path / "junit.xml"), *xdist)
    assert worse.returncode == 1, worse.stdout[-3000:] + worse.stderr[-2000:]
    assert "1 failed, 1 passed" in worse.stdout
    cases = _junit(tmp_path / "junit.xml")
    assert cases["compare-gate"].find("failure") is not None
    case = next(c for name, c in cases.items() if name.startswith("test_aiotbench"))
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    entry = json.loads(props["aiotbench_entry"])  # JSON, not a Python repr
    assert entry["id"] == "mobilenet_v1-tflite-int8" and "status" not in entry
    assert json.loads(props["aiotbench_device"])["device"] == "host"


@pytest.mark.parametrize("value", [",", " , ", ",,"])
def test_empty_limit_is_refused_not_a_silent_no_gate(gated, tmp_path, value):
    """Issue 22: --aiotbench-fail-on=, was accepted and gated nothing ("NOT GATED" on a 3.6x slowdown)."""
    result = gated([make_case("a-tflite-int8")], [make_case("a-tflite-int8")], "--aiotbench-compare", "base.json",
                   f"--aiotbench-fail-on={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--aiotbench-fail-on: empty limit*"])
    base = write_json(tmp_path / "b.json", make_report([make_case("a-tflite-int8")]))
    cli = run_cli("compare", base, base, "--fail-on", value)
    assert cli.returncode == 2 and "empty limit" in cli.stderr


def test_case_measured_in_base_and_skipped_in_new_is_not_judged(tmp_path):
    """A model path typo in the new run skips the case: its limits were not judged, never a silent OK."""
    base = write_json(tmp_path / "b.json", make_report([make_case("a-tflite-int8"), make_case("b-tflite-int8")]))
    new = write_json(tmp_path / "n.json", make_report([make_case("a-tflite-int8", seed=1),
                                                       make_case("b-tflite-int8", status="skipped")]))
    result = run_cli("compare", base, new, "--fail-on", "top1:-1pt")
    assert result.returncode == EXIT_CANNOT_JUDGE, result.stdout + result.stderr
    assert ("b-tflite-int8: top1:-1pt not judged (measured in BASE, not in NEW: skipped: skipped on purpose)"
            in result.stdout)
    both = write_json(tmp_path / "n2.json", make_report([make_case("a-tflite-int8", seed=1)]))
    assert run_cli("compare", base, both, "--fail-on", "top1:-1pt").returncode == 0  # only in BASE: named, as before
