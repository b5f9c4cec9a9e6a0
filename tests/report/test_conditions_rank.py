"""``aiotbench rank --speed sustained``: devices ranked at the speed they hold after a sustained run (the last
time window's median latency), which can reverse their cold ranking (a fast phone that throttles)."""

from __future__ import annotations

import re

import pytest

from pytest_aiotbench.report.rank import rank_reports, sustained_case
from pytest_aiotbench.report.read import ReportError, normalize_report
from tests.helpers.reports import make_case, make_report, run_cli, write_json

CASES = ["mnv2-tflite-int8", "mnv1-tflite-int8"]


def _curve(first_ms: float, last_ms: float) -> dict:
    rows = [{"start_s": 6.0 * i, "images": 50, "median_ms": first_ms + (last_ms - first_ms) * i / 9,
             "p90_ms": 1.1 * (first_ms + (last_ms - first_ms) * i / 9), "temp_c": 40.0 + 4 * i,
             "cpu_khz": 2_000_000 - 100_000 * i} for i in range(10)]
    return {"duration_s": 60.0, "window_s": 6.0, "images": 500, "windows": rows,
            "last_first_ratio": round(last_ms / first_ms, 4), "cycles": 3}


def _device(name: str, cold_ms: float, last_ms: float | None) -> dict:
    cases = []
    for k, case_id in enumerate(CASES):
        case = make_case(case_id, latency_ms=cold_ms * (k + 1), seed=k)
        if last_ms is not None:
            case["sustained"] = _curve(cold_ms * (k + 1), last_ms * (k + 1))
        cases.append(case)
    return make_report(cases, device=name)


def _board(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.split("\n\n", 1)[0].splitlines() if re.match(r"\d+ ", line)]


def test_sustained_ranking_reverses_a_throttling_device(tmp_path):
    # "sprinter" is faster cold (4 ms) but ends at 10 ms; "steady" holds 5 ms
    files = [write_json(tmp_path / f"{n}.json", _device(n, cold, last))
             for n, cold, last in (("sprinter", 4.0, 10.0), ("steady", 5.0, 5.2))]
    cold = run_cli("rank", *files)
    assert cold.returncode == 0, cold.stderr
    assert _board(cold.stdout) == ["sprinter", "steady"]
    hot = run_cli("rank", "--speed", "sustained", *files)
    assert hot.returncode == 0, hot.stderr
    assert _board(hot.stdout) == ["steady", "sprinter"]
    assert "sustained speed: last time window's median latency" in hot.stdout


def test_sustained_score_is_top1_over_the_last_window():
    case = make_case("mnv2-tflite-int8", top1=0.7, gflops=0.3)
    case["sustained"] = _curve(5.0, 8.0)
    scored = sustained_case(case)
    assert scored["vips"] == pytest.approx(0.7 / 0.008) and scored["vops"] == pytest.approx(0.7 / 0.008 * 0.3)
    assert sustained_case(make_case("x-tflite-int8"))["vips"] is None


def test_a_run_without_sustained_cases_is_partial_and_none_at_all_is_refused(tmp_path):
    reports = [normalize_report(_device("a", 4.0, 6.0), "a.json"), normalize_report(_device("b", 4.0, None), "b.json")]
    ranking = rank_reports(reports, speed="sustained")
    assert [e.label for e in ranking.entries] == ["a", "b"] and ranking.entries[1].partial
    with pytest.raises(ReportError, match="no run has a sustained measurement"):
        rank_reports([reports[1], normalize_report(_device("c", 3.0, None), "c.json")], speed="sustained")
    files = [write_json(tmp_path / f"{n}.json", _device(n, 4.0, None)) for n in ("c", "d")]
    result = run_cli("rank", "--speed", "sustained", *files)
    assert result.returncode == 2 and "--aiotbench-sustain" in result.stderr and "Traceback" not in result.stderr
