"""Report-reading tools never decide on a guess (issue 22, reports/tools): duplicate JSON keys, impossible
per-image latency counts, one run ranked twice, and a pytest-benchmark file of the same machine called another
machine with a dict dump."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info

from pytest_aiotbench.report.compare import compare_reports
from pytest_aiotbench.run.environment import machine_facts
from pytest_aiotbench.report.read import ReportError, load_report, normalize_report
from tests.helpers.reports import make_case, make_report, run_cli, write_json


def _bench_json(report: dict, machine_info: dict) -> dict:
    benchmarks = []
    for case in report["cases"]:
        extra = {k: v for k, v in case.items() if k != "per_image"}
        extra["dataset"] = report["dataset"]
        data = [x / 1e3 for x in case["per_image"]["latency_ms"]]
        stats = {k: case["latency_ms"][k] / 1e3 for k in ("min", "median", "mean", "stddev", "max", "iqr")}
        benchmarks.append({"name": f"test_aiotbench[{case['id']}]", "param": case["id"], "extra_info": extra,
                           "stats": {**stats, "rounds": len(data), "data": data}})
    return {"machine_info": machine_info, "benchmarks": benchmarks, "datetime": "2026-12-01T00:00:00"}


@pytest.mark.parametrize("text, key", [
    ('{"schema": "aiotbench/1", "schema": "aiotbench/1"}', "'schema'"),
    ('{"cases": [{"id": "a", "top1": 0.7, "top1": 0.1}]}', "'top1' in a JSON object (in the object with id 'a')"),
])
def test_duplicate_key_is_refused_in_one_line(tmp_path, text, key):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(ReportError) as info:
        load_report(path)
    assert f"duplicate key {key}" in str(info.value) and "\n" not in str(info.value)


def test_duplicate_key_in_a_real_report_is_exit_2(tmp_path):
    base = make_report([make_case("a-tflite-int8", top1=0.70)])
    good = write_json(tmp_path / "b.json", base)
    text = json.dumps(make_report([make_case("a-tflite-int8", top1=0.70)]))
    forged = tmp_path / "n.json"
    forged.write_text(text.replace('"top1": 0.7,', '"top1": 0.7, "top1": 0.2,', 1))
    result = run_cli("compare", good, forged, "--fail-on", "top1:-1pt")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "duplicate key 'top1'" in result.stderr


@pytest.mark.parametrize("extra", [1, 60 * 5000])
def test_more_latencies_than_images_is_refused(extra):
    case = make_case("a-tflite-int8", images=60)
    case["per_image"]["latency_ms"] += [5.0] * extra
    with pytest.raises(ReportError, match=rf"holds {60 + extra} latencies for 60 images \(at most one per image\)"):
        normalize_report(make_report([case]), "n.json")
    normalize_report(make_report([make_case("a-tflite-int8", images=60)]), "ok.json")  # one per image: fine


def test_ab_baseline_latencies_are_held_to_the_images_too():
    case = make_case("a-tflite-int8", images=40)
    case["ab"] = {"baseline": {"per_image": {"latency_ms": [1.0] * 41}}, "ratio": {"median": 1.0, "low": 0.9, "high": 1.1, "pairs": 40, "sampling": [0.9, 1.1],
                                   "sessions": {}}, "pair_validity":
                  {"valid": True, "reasons": []}, "verdict": "not gated", "judgements": []}
    with pytest.raises(ReportError, match="ab.baseline.per_image.latency_ms holds 41 latencies for 40 images"):
        normalize_report(make_report([case]), "n.json")


def test_rank_refuses_one_run_given_twice(tmp_path):
    run = write_json(tmp_path / "a.json", make_report([make_case("a-tflite-int8")]))
    shutil.copy(run, tmp_path / "copy.json")
    os.symlink(run, tmp_path / "link.json")
    for args, how in (([run, run], "the same file"), ([run, tmp_path / "link.json"], "the same file"),
                      ([run, tmp_path / "copy.json"], "identical copies")):
        result = run_cli("rank", *args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert how in result.stderr and result.stderr.count("\n") == 1
    other = write_json(tmp_path / "b.json", make_report([make_case("a-tflite-int8", seed=5)], device="other"))
    assert run_cli("rank", run, other).returncode == 0


def test_benchmark_json_of_this_machine_is_the_same_machine(tmp_path):
    """A --benchmark-json file (pytest-benchmark's own machine_info of this machine) against a plugin report
    of this machine: no "machines differ" warning; a real difference is one short line naming the key."""
    report = make_report([make_case("a-tflite-int8")])
    report["machine"] = machine_facts()
    info = pytest_benchmark_generate_machine_info()
    bench = normalize_report(_bench_json(make_report([make_case("a-tflite-int8", seed=1)]), info), "bench.json")
    comparison = compare_reports(normalize_report(report, "base.json"), bench)
    assert not [w for w in comparison.warnings if "machines differ" in w], comparison.warnings
    info["cpu"] = {**info["cpu"], "count": 64, "brand_raw": "Other CPU"}
    other = normalize_report(_bench_json(make_report([make_case("a-tflite-int8", seed=1)]), info), "bench.json")
    warnings = [w for w in compare_reports(normalize_report(report, "base.json"), other).warnings
                if "machines differ" in w]
    assert len(warnings) == 1 and len(warnings[0]) < 200, warnings
    assert "cpu " in warnings[0] and f"cores {os.cpu_count()} vs 64" in warnings[0]
    assert "{" not in warnings[0]  # no dict dump
