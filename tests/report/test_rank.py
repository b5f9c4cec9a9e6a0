"""``aiotbench rank``: leaderboard of devices by AI score over the same cases and images."""

from __future__ import annotations

import json
import re

import pytest

from pytest_aiotbench.report.rank import rank_reports
from pytest_aiotbench.report.read import ReportError, normalize_report
from tests.helpers.reports import make_case, make_report, run_cli, write_json
from tests.helpers.realrun import make_real_runs, requires_real_run



@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    return make_real_runs(tmp_path_factory.mktemp("real"))


CASES = ["mnv2-tflite-int8", "mnv2-onnx-fp32", "mnv1-tflite-int8"]


def _device(name: str, slowdown: float, **overrides) -> dict:
    """A run of the three cases on a device ``slowdown`` times slower than the reference."""
    cases = [overrides.get(i) or make_case(i, latency_ms=(k + 2) * slowdown, seed=k) for k, i in enumerate(CASES)]
    return make_report(cases, device=name)


def _board(stdout: str) -> list[str]:
    """Device column of the leaderboard rows (those starting with their place number), in order."""
    leaderboard = stdout.split("\n\n", 1)[0]
    return [line.split()[1] for line in leaderboard.splitlines() if re.match(r"\d+ ", line)]


def _files(tmp_path, *reports) -> list:
    return [write_json(tmp_path / f"{r['device']['name']}.json", r) for r in reports]


def test_rank_orders_devices_by_vips_with_breakdowns(tmp_path):
    files = _files(tmp_path, _device("rpi4", 3.0), _device("pixel7", 1.0), _device("jetson", 0.5))
    result = run_cli("rank", *files)
    assert result.returncode == 0, result.stderr
    assert _board(result.stdout) == ["jetson", "pixel7", "rpi4"]
    assert "VIPS by framework (* best)" in result.stdout and "VIPS by model (* best)" in result.stdout
    framework_rows = {line.split()[0]: line for line in result.stdout.split("VIPS by framework")[1].splitlines()[3:5]}
    assert set(framework_rows) == {"tflite", "onnx"}
    assert framework_rows["onnx"].split()[1].endswith("*")  # jetson, first column, is best


def test_rank_scores_are_sums_over_cases():
    reports = [normalize_report(_device(n, s), f"{n}.json") for n, s in (("a", 1.0), ("b", 2.0))]
    ranking = rank_reports(reports)
    assert ranking.entries[0].label == "a"
    assert ranking.entries[0].score["vips"] == pytest.approx(sum(c["vips"] for c in reports[0]["cases"]))
    by_vops = rank_reports(reports, by="vops")
    assert by_vops.entries[0].score["vops"] == pytest.approx(sum(c["vops"] for c in reports[0]["cases"]))


def test_partial_run_is_flagged(tmp_path):
    partial = _device("jetson", 0.5, **{"mnv2-onnx-fp32": make_case("mnv2-onnx-fp32", status="error")})
    result = run_cli("rank", *_files(tmp_path, _device("pixel7", 1.0), partial))
    assert result.returncode == 0, result.stderr
    jetson = next(line for line in result.stdout.splitlines() if line.split()[1:2] == ["jetson"])
    assert "2/3" in jetson and "PARTIAL (no result: mnv2-onnx-fp32)" in jetson


def test_an_unfinished_run_is_flagged(tmp_path):
    """A checkpoint of a run still going, or the report of an interrupted one (``finished: false``)."""
    unfinished = {**_device("jetson", 0.5), "finished": False}
    result = run_cli("rank", *_files(tmp_path, _device("pixel7", 1.0), unfinished))
    assert result.returncode == 0, result.stderr
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if re.match(r"\d+ ", line)}
    assert "UNFINISHED run, PARTIAL" in rows["jetson"] and "UNFINISHED" not in rows["pixel7"]


def test_different_case_sets_are_refused_with_exit_2(tmp_path):
    fewer = make_report([make_case(CASES[0])], device="phone")
    files = _files(tmp_path, _device("pixel7", 1.0), fewer)
    refused = run_cli("rank", *files)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1
    assert "cannot rank: runs differ in case set (phone.json lacks mnv2-onnx-fp32, mnv1-tflite-int8)" in refused.stderr
    allowed = run_cli("rank", *files, "--allow-mismatch")
    assert allowed.returncode == 0
    assert "NOTE: case sets differ" in allowed.stdout and "ranked on the 1 case(s) all runs share" in allowed.stdout
    assert "1/1" in allowed.stdout


def test_different_datasets_are_refused(tmp_path):
    other = _device("phone", 1.0)
    other["dataset"]["fingerprint"] = "sha256:" + "cd" * 32
    files = _files(tmp_path, _device("pixel7", 1.0), other)
    refused = run_cli("rank", *files)
    assert refused.returncode == 2 and "runs used different datasets" in refused.stderr
    assert "not comparable" in run_cli("rank", *files, "--allow-mismatch").stdout


def test_no_common_case_is_refused_even_when_allowed():
    a = normalize_report(make_report([make_case("x-tflite-int8")], device="a"), "a.json")
    b = normalize_report(make_report([make_case("y-tflite-int8")], device="b"), "b.json")
    with pytest.raises(ReportError, match="no case in common"):
        rank_reports([a, b], allow_mismatch=True)


def test_one_file_and_bad_files_exit_2(tmp_path):
    good = write_json(tmp_path / "good.json", _device("pixel7", 1.0))
    assert "at least two" in run_cli("rank", good).stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_device("x", 1.0))[:500])
    result = run_cli("rank", good, bad)
    assert result.returncode == 2 and "invalid JSON" in result.stderr and "Traceback" not in result.stderr


@requires_real_run
@pytest.mark.slow
def test_real_runs_rank_the_faster_device_first(real_runs, tmp_path):
    """The same MobileNetV1 case measured on two 'devices': the faster one must lead."""
    fast = json.loads((real_runs / "worse.json").read_text())  # 0.25_128: several times faster
    slow = json.loads((real_runs / "base.json").read_text())
    fast["device"]["name"], slow["device"]["name"] = "fast-box", "slow-box"
    files = [write_json(tmp_path / "slow.json", slow), write_json(tmp_path / "fast.json", fast)]
    result = run_cli("rank", *files)
    assert result.returncode == 0, result.stderr
    assert _board(result.stdout) == ["fast-box", "slow-box"]
