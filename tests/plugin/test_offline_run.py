"""The offline scenario from the front door (issue 21 item 5): the option and its knobs (bad values are one-line
usage errors, exit 4), a real run's report (scenario, images/s, offline VIPS, accuracy as single-stream's, no
single-stream score), its table and HTML, and compare keeping offline and single-stream apart."""

from __future__ import annotations

import copy
import json

import pytest

from pytest_aiotbench.report import compare
from pytest_aiotbench.report.table import render_summary
from tests.helpers.catalogs import float_entry, tflite_entry, write_catalog
from tests.helpers.reports import make_case, make_report, offline_case, run_cli, write_json
from tests.helpers.realrun import one_usage_error
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR, TORCH_DIR

TFLITE = TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"
ONNX = TORCH_DIR / "mobilenet_v1_0.25_128.onnx"


@pytest.fixture
def catalog(tmp_path):
    return write_catalog(tmp_path / "cat.toml", [tflite_entry("m", tmp_path / "missing.tflite", 128)])


@pytest.mark.parametrize("args, needles", [
    (["--aiotbench-scenario", "throughput"], ["--aiotbench-scenario throughput", "single-stream, offline"]),
    pytest.param(["--aiotbench-scenario", "offline", "--aiotbench-offline-sessions", "0"],
                 ["--aiotbench-offline-sessions 0", "[1, 64]"], marks=pytest.mark.slow),
    pytest.param(["--aiotbench-scenario", "offline", "--aiotbench-offline-batch", "100000"],
                 ["--aiotbench-offline-batch"], marks=pytest.mark.slow),
    (["--aiotbench-offline-batch", "4"], ["--aiotbench-offline-batch applies to --aiotbench-scenario offline"]),
    pytest.param(["--aiotbench-offline-sessions", "2"],
                 ["--aiotbench-offline-sessions applies to --aiotbench-scenario offline"], marks=pytest.mark.slow),
])
def test_bad_scenario_options_are_one_line_usage_errors(run_aiotbench, catalog, args, needles):
    one_usage_error(run_aiotbench(*args, catalogs=[catalog]), *needles)


@pytest.mark.slow
def test_bad_scenario_in_the_ini(run_aiotbench, catalog, tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\naiotbench_scenario = batch\n")
    one_usage_error(run_aiotbench(catalogs=[catalog]), "aiotbench_scenario (ini) batch")


@pytest.mark.slow
def test_offline_with_an_ab_baseline_is_refused(run_aiotbench, catalog, tmp_path):
    one_usage_error(run_aiotbench("--aiotbench-scenario", "offline", f"--aiotbench-baseline={catalog}",
                               catalogs=[catalog]), "--aiotbench-baseline", "single-stream only")


# ------------------------------------------------------------------------------------------------ real run
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same two real cases (int8 TFLite, fp32 ONNX) on the same 48 shared images, offline then single-stream."""
    import os
    import subprocess
    import sys

    from tests.helpers.shared import REPO

    if not (IMAGENET_500.is_dir() and TFLITE.exists() and ONNX.exists()):
        pytest.skip("needs the shared models and images (AIOTBENCH_SHARED)")
    tmp = tmp_path_factory.mktemp("offline-run")
    cat = write_catalog(tmp / "cat.toml", [tflite_entry("mobilenet_v1", TFLITE, 128, min_top1=0.1),
                                           float_entry("mobilenet_v1", "onnxruntime", ONNX, 128, min_top1=0.1)])
    out = {}
    for name, extra in (("offline", ["--aiotbench-scenario", "offline", "--aiotbench-offline-sessions", "2",
                                     "--aiotbench-offline-batch", "4"]), ("single", [])):
        cmd = [sys.executable, "-m", "pytest", "--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
               f"--aiotbench-catalog={cat}", f"--aiotbench-dataset={IMAGENET_500}", "--aiotbench-images", "48",
               f"--aiotbench-json={tmp / name}.json", f"--aiotbench-cache={tmp / 'cache'}", "--benchmark-disable",
               f"--aiotbench-html={tmp / name}.html", *extra]
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        out[name] = (json.loads((tmp / f"{name}.json").read_text()), proc.stdout, tmp / f"{name}.json",
                     (tmp / f"{name}.html"))
    return out


@pytest.mark.slow
def test_offline_report_has_throughput_and_single_stream_accuracy(runs):
    jsonschema = pytest.importorskip("jsonschema")
    from pytest_aiotbench.report.schema import REPORT

    off, single = runs["offline"][0], runs["single"][0]
    jsonschema.validate(off, REPORT)
    assert off["settings"]["scenario"] == "offline" and single["settings"]["scenario"] == "single-stream"
    assert off["settings"]["offline"] == {"sessions": 2, "batch": 4}
    pairs = {c["id"]: c for c in single["cases"]}
    for case in off["cases"]:
        same = pairs[case["id"]]
        assert case["scenario"] == "offline" and "scenario" not in same
        assert (case["top1"], case["top5"]) == (same["top1"], same["top5"])  # exactly
        assert case["per_image"]["top5"] == same["per_image"]["top5"]
        o = case["offline"]
        assert case["latency_ms"] is None and case["vips"] is None and case["per_image"]["latency_ms"] == []
        assert o["images"] == 48 and o["sessions"] == 2 and o["threads_per_session"] == 1
        assert case["images_per_s"] == o["images_per_s"] == pytest.approx(48 / o["wall_s"])
        assert o["vips"] == pytest.approx(case["top1"] * o["images_per_s"])
        assert case["validity"]["notes"][0].startswith("offline scenario")
    by_fw = {c["framework"]: c["offline"] for c in off["cases"]}
    assert by_fw["onnxruntime"]["batch"] == 4 and by_fw["onnxruntime"]["batch_note"] is None
    assert by_fw["tflite"]["batch"] == 1 and "batch 4 not possible" in by_fw["tflite"]["batch_note"]
    # offline cases never enter the single-stream AIoTBench score
    assert off["score"]["vips"] is None and off["score"]["cases"] == 0
    assert single["score"]["vips"] is not None


@pytest.mark.slow
def test_offline_table_and_html_show_the_scenario(runs):
    report, stdout, _, html = runs["offline"]
    stdout = " ".join(stdout.split())  # the summary wraps to the terminal
    assert "offline" in stdout and "images/s" in stdout and "sessions x batch" in stdout
    assert "Device score: n/a (single-stream only; this run is offline: offline VIPS" in stdout
    assert "batch 4 not possible" in stdout
    page = html.read_text()
    assert '<table id="offline">' in page and "this run is offline" in page
    for case in report["cases"]:
        assert f'data-offline="{case["id"]}"' in page


@pytest.mark.slow
def test_compare_refuses_offline_against_single_stream(runs):
    proc = run_cli("compare", runs["single"][2], runs["offline"][2], "--fail-on", "vips:-5%")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "scenario differs: BASE single-stream, NEW offline" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------------ constructed reports
def test_compare_offline_against_offline_gates_throughput():
    base = make_report([offline_case(make_case("m-tflite-int8"), 400.0)])
    slower = make_report([offline_case(make_case("m-tflite-int8"), 300.0)])
    limits = compare.parse_limits(["ips:-10%"])
    result = compare.compare_reports(base, slower, limits)
    delta = result.cases[0].deltas["images_per_s"]
    assert delta.change == pytest.approx(-25.0) and delta.regressed
    assert result.cases[0].deltas["vips"].change == pytest.approx(-25.0)  # offline VIPS, not single-stream's
    assert "images_per_s" in result.columns and result.exit_code() == compare.EXIT_REGRESSION
    same = compare.compare_reports(base, copy.deepcopy(base), limits)
    assert same.exit_code() == 0 and not same.cases[0].regressions


def test_compare_never_mixes_scenarios_and_never_passes_their_limits():
    single = make_report([make_case("m-tflite-int8"), make_case("n-tflite-int8")])
    mixed = make_report([offline_case(make_case("m-tflite-int8"), 400.0), make_case("n-tflite-int8")])
    result = compare.compare_reports(single, mixed, compare.parse_limits(["vips:-5%"]))
    m = next(c for c in result.cases if c.case_id == "m-tflite-int8")
    assert not m.deltas and "scenario differs: BASE single-stream, NEW offline: not compared" in m.notes
    assert result.cannot_judge and result.exit_code() == compare.EXIT_CANNOT_JUDGE
    assert next(c for c in result.cases if c.case_id == "n-tflite-int8").deltas  # the other case is compared


def test_table_of_an_offline_report():
    report = make_report([offline_case(make_case("m-tflite-int8", top1=0.5), 400.0)])
    report["cases"][0]["offline"]["batch_note"] = "m.tflite: batch 8 not possible (fixed); batch 1 used"
    report["settings"]["scenario"] = "offline"
    text = " ".join(" ".join(render_summary(report)).split())  # lines wrap to the terminal
    assert "offline scenario" in text and "images/s" in text and "400.0" in text and "2 x 1" in text
    assert "offline VIPS 200.0 over 1 case(s)" in text and "batch 8 not possible" in text
    assert "mean ms" not in text


@pytest.mark.slow
def test_offline_report_files_are_readable_by_the_report_tools(tmp_path):
    report = make_report([offline_case(make_case("m-tflite-int8"), 400.0)])
    path = write_json(tmp_path / "o.json", report)
    proc = run_cli("compare", path, path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "images_per_s" in proc.stdout


def test_the_case_line_of_an_offline_case():
    from pytest_aiotbench.plugin.progress import case_summary

    case = offline_case(make_case("m-tflite-int8", top1=0.5), 400.0)
    case["validity"] = {"valid": False, "reasons": ["load: other processes kept 1.2 of 2 cores busy"], "notes": []}
    line = case_summary(case, 1.5)
    assert line.startswith("m-tflite-int8: 200 images in ") and "offline 400 images/s (2 sessions x batch 1)" in line
    assert line.endswith("top-1 50.0%, load INVALID (load)") and "median" not in line
