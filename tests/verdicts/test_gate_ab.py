"""A/B gates that must apply (issue 22 item 7): a limit the A/B cannot judge (no labels, no GFLOPs, no baseline
partner) is NOT JUDGED and fails the session unless --aiotbench-allow-not-judged; VOPS includes the GFLOPs ratio;
the verdict is a test report of its own (summary line, JUnit XML)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from pytest_aiotbench.verdicts import ab
from pytest_aiotbench.report.compare import parse_limits
from tests.helpers.catalogs import tflite_entry, write_catalog
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR

SMALL, LARGE = TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite", TFLITE_DIR / "mobilenet_v1_0.5_160_quant.tflite"
real = pytest.mark.real(pytest.mark.skipif(not (SMALL.is_file() and LARGE.is_file() and IMAGENET_500.is_dir()),
                                           reason="shared MobileNetV1 models or images missing"))


def _latencies(centre, n=200, seed=0):
    return list(centre * np.random.default_rng(seed).lognormal(0.0, 0.02, n))


def test_vops_limit_uses_the_gflops_ratio():
    """NEW: top-1 0.5 at 0.6 GFLOPs in 2 ms; BASE: top-1 0.6 at 4 GFLOPs in 4 ms. VOPS NEW/BASE is
    (0.5 * 0.6 / 2) / (0.6 * 4 / 4) = 0.25, not the accuracy-only 1.667."""
    new_ms, base_ms = _latencies(2.0, seed=1), _latencies(4.0, seed=2)
    expected = (0.5 * 0.6 / np.median(new_ms)) / (0.6 * 4.0 / np.median(base_ms))
    result = ab.compare_pair(new_ms, base_ms, parse_limits(["vops:-5%", "vips:-5%"]),
                             {"top1": 0.6, "top5": 0.8, "gflops": 4.0}, {"top1": 0.5, "top5": 0.8, "gflops": 0.6})
    vops = next(j for j in result.judgements if j.metric == "vops")
    point = float(vops.detail.split("x", 1)[1].split(" ", 1)[0])
    assert point == pytest.approx(expected, rel=0.02) and vops.verdict == ab.REGRESSION
    vips = next(j for j in result.judgements if j.metric == "vips")  # 0.5/2 vs 0.6/4: VIPS improved
    assert vips.verdict == ab.NO_REGRESSION


@pytest.mark.parametrize("limit, base_acc, new_acc, why", [
    ("top1:-0.5pt", {"top1": None, "top5": None}, {"top1": None, "top5": None}, "no top1 on BASE and NEW"),
    ("top5:-1pt", {"top1": 0.6, "top5": 0.8}, {"top1": 0.6, "top5": None}, "no top5 on NEW"),
    ("vips:-5%", {"top1": None, "top5": None}, {"top1": None, "top5": None}, "no top-1 on BASE and NEW"),
    ("vops:-5%", {"top1": 0.6, "top5": 0.8, "gflops": None}, {"top1": 0.6, "top5": 0.8, "gflops": 0.3},
     "no GFLOPs on BASE"),
])
def test_a_limit_without_its_inputs_is_cannot_judge_not_dropped(limit, base_acc, new_acc, why):
    result = ab.compare_pair(_latencies(2.0, seed=1), _latencies(2.0, seed=2), parse_limits([limit]), base_acc,
                             new_acc)
    assert result.verdict == ab.CANNOT_JUDGE, result.judgements
    assert why in result.judgements[0].detail


@real
@pytest.mark.slow
def test_top1_limit_on_an_unlabelled_ab_is_not_judged_and_fails(run_aiotbench, tmp_path):
    catalog = write_catalog(tmp_path / "cat.toml", [tflite_entry("m", SMALL, 128, baseline=str(SMALL))])
    # no dataset: no case can be scored, which is known before measuring (usage error, plugin/gate.py)
    unlabelled = run_aiotbench("--aiotbench-fail-on=top1:-0.5pt", catalogs=[catalog])
    assert unlabelled.returncode == 4 and "synthetic images measure no accuracy" in unlabelled.stderr
    # the case unscored at run time (random weights: never scored for accuracy): NOT JUDGED, and it fails
    catalog = write_catalog(tmp_path / "cat.toml", [tflite_entry("m", SMALL, 128, baseline=str(SMALL),
                                                                 weights="random")])
    args = ("--aiotbench-fail-on=top1:-0.5pt", "--aiotbench-images=40", f"--junitxml={tmp_path / 'j.xml'}",
            f"--aiotbench-dataset={IMAGENET_500}")
    run = run_aiotbench(*args, catalogs=[catalog])
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    assert "NOT JUDGED: 1 A/B limit check(s)" in run.stdout and "NOT GATED" not in run.stdout
    assert "FAILED aiotbench::ab-gate" in run.stdout and "1 failed, 1 passed" in run.stdout
    pair = run.case("m-tflite-int8")["ab"]
    assert pair["verdict"] == ab.CANNOT_JUDGE
    failures = [c for c in ET.parse(tmp_path / "j.xml").getroot().iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["ab-gate"]
    allowed = run_aiotbench(*args, "--aiotbench-allow-not-judged", catalogs=[catalog])
    assert allowed.returncode == 0, allowed.stdout[-3000:]
    assert "NOT JUDGED (allowed by --aiotbench-allow-not-judged)" in allowed.stdout


@real
@pytest.mark.slow
def test_case_without_baseline_partner_is_named_not_judged(run_aiotbench, tmp_path):
    catalog = write_catalog(tmp_path / "cat.toml", [tflite_entry("paired", SMALL, 128, baseline=str(SMALL)),
                                                    tflite_entry("alone", SMALL, 128)])
    run = run_aiotbench("--aiotbench-fail-on=top1:-0.5pt", "--aiotbench-images=40", catalogs=[catalog],
                        dataset=IMAGENET_500)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    assert ("alone-tflite-int8: top1:-0.5pt not judged: no baseline partner (not in --aiotbench-baseline, no "
            "catalog `baseline` key)") in " ".join(run.stdout.split())  # wrapped to the terminal
    assert run.case("paired-tflite-int8")["ab"]["verdict"] == ab.NO_REGRESSION  # same file: exact accuracy


@real
@pytest.mark.slow
def test_ab_vops_from_the_reports_own_numbers(run_aiotbench, tmp_path):
    """NEW 0.25_128 (gflops 0.0138) against BASE 0.5_160 (gflops 0.0765): the baseline block carries its GFLOPs,
    VIPS and VOPS, and the judged VOPS ratio is (top-1 x GFLOPs) NEW/BASE over the paired latency ratio."""
    new = write_catalog(tmp_path / "new.toml", [tflite_entry("m", SMALL, 128, gflops=0.0138)])
    base = write_catalog(tmp_path / "base.toml", [tflite_entry("m", LARGE, 160, gflops=0.0765)])
    run = run_aiotbench(f"--aiotbench-baseline={base}", "--aiotbench-fail-on=vops:-50%", "--aiotbench-images=60",
                        "--aiotbench-allow-not-judged", catalogs=[new], dataset=IMAGENET_500)
    case = run.case("m-tflite-int8")
    pair = case["ab"]
    baseline = pair["baseline"]
    assert baseline["gflops"] == 0.0765
    assert baseline["vips"] == pytest.approx(baseline["top1"] / (baseline["latency_ms"]["mean"] / 1e3))
    assert baseline["vops"] == pytest.approx(baseline["vips"] * 0.0765)
    vops = next(j for j in pair["judgements"] if j["metric"] == "vops")
    if pair["ratio"]["median"] is not None and math.isfinite(pair["ratio"]["median"]):
        expected = (case["top1"] * 0.0138) / (baseline["top1"] * 0.0765) / pair["ratio"]["median"]
        assert f"vops x{expected:.3f}" in vops["detail"]


@real
@pytest.mark.slow
def test_baseline_with_another_output_shape_is_named_and_new_is_kept(run_aiotbench, tmp_path):
    """Issue 22: the baseline's wrong output shape blamed the NEW file and dropped NEW's measurement."""
    other = TFLITE_DIR / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
    new = write_catalog(tmp_path / "new.toml", [tflite_entry("m", SMALL, 128)])
    base = write_catalog(tmp_path / "base.toml", [tflite_entry("m", other, 224, num_classes=1000, background=False)])
    run = run_aiotbench(f"--aiotbench-baseline={base}", "--aiotbench-images=20", catalogs=[new])
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    case = run.case("m-tflite-int8")
    assert case["status"] == "failed" and case["latency_ms"] is not None and len(case["per_image"]["latency_ms"]) == 20
    assert case["reason"].startswith(f"A/B baseline {other}: model output is 1x1001, expected 1x1000")
    assert "m-tflite-int8 measured alone, not paired" in case["reason"] and SMALL.name not in case["reason"]


@pytest.mark.parametrize("flag", ["--aiotbench-fail-invalid", "--aiotbench-allow-not-judged"])
def test_judging_flag_without_anything_to_judge_is_a_usage_error(run_aiotbench, tmp_path, flag):
    catalog = write_catalog(tmp_path / "cat.toml", [tflite_entry("m", SMALL, 128)])
    run = run_aiotbench(flag, catalogs=[catalog])
    assert run.returncode == 4, run.stdout[-2000:] + run.stderr[-2000:]
    assert f"{flag}: nothing to judge in this run" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("device", ["adb:SERIAL1", "ssh://pi@board"])
def test_ab_on_a_remote_device_is_a_usage_error_at_start(run_aiotbench, tmp_path, device):
    catalog = write_catalog(tmp_path / "cat.toml", [tflite_entry("m", SMALL, 128, baseline=str(SMALL))])
    run = run_aiotbench(f"--aiotbench-device={device}", catalogs=[catalog])
    assert run.returncode == 4, run.stdout[-2000:] + run.stderr[-2000:]
    assert f"runs on the host only, not on --aiotbench-device {device}" in run.stderr
