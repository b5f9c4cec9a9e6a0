"""Interleaved A/B and validity on real models and images under a controlled CPU hog (benchmarks/ab_noise.py's
experiments, run once). Asserted is only what contention cannot flip: structure (every pair timed, each pair of
sessions in turn), exact accuracy, a run with a hog on its core is INVALID (it waits for the core) and compare
calls it "cannot judge", and 4x the work is never "no regression" (on a machine so loaded that fewer than 30
pairs ran undisturbed the A/B says "cannot judge", never a pass). Whether an interval holds 1.0 is a timing
outcome: the statistic is tested on constructed samples (test_ab_validity), its behaviour on this machine is
measured by the benchmark (README "Latency verdicts"). The pytest side (--aiotbench-baseline, exit codes, JSON)
runs as users run it."""

from __future__ import annotations

import importlib.util
import json

import pytest

from pytest_aiotbench.run import pairs
from pytest_aiotbench.verdicts import ab
from tests.helpers.catalogs import tflite_entry, write_catalog
from tests.helpers.shared import IMAGENET_500, REPO, TFLITE_DIR

SMALL, LARGE = TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite", TFLITE_DIR / "mobilenet_v1_0.5_160_quant.tflite"
_models_present = pytest.mark.skipif(not (SMALL.is_file() and LARGE.is_file() and IMAGENET_500.is_dir()),
                                  reason=f"shared MobileNetV1 models or images missing under {TFLITE_DIR.parent.parent}")


def needs_models(test):
    """Real models, real images, seconds to minutes: the slow tier."""
    return pytest.mark.slow(pytest.mark.real(_models_present(test)))


def _load_ab_noise():
    spec = importlib.util.spec_from_file_location("ab_noise", REPO / "benchmarks" / "ab_noise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return _load_ab_noise().Bench(500, tmp_path_factory.mktemp("abnoise"), core=0)


@needs_models
def test_identical_copy_under_a_hog_in_half_the_pairs_is_paired_and_judged(bench):
    """Structure and accuracy only: whether the interval holds 1.0 is a timing outcome of a real run."""
    pair = bench.ab(bench.copy, bench.small, hog=True)
    assert pair["pair_validity"]["checks"]["pairs"] == 500 and 0 < pair["ratio"]["pairs"] <= 500
    assert pair["verdict"] in (ab.NO_REGRESSION, ab.REGRESSION, ab.CANNOT_JUDGE)
    sessions = pair["ratio"]["sessions"]
    assert sessions["per_side"] == pairs.SESSIONS == 2 and sessions["sd"] is not None and sessions["widening"] >= 0
    assert pair["timed_with"] == pairs.timed_with(pairs.schedule(500))  # every NEW session against every BASE one
    assert pair["ratio"]["low"] <= pair["ratio"]["sampling"][0] <= pair["ratio"]["sampling"][1] <= pair["ratio"]["high"]
    top1 = [j for j in pair["judgements"] if j["metric"] == "top1"]
    assert len(top1) == 1 and top1[0]["detail"].startswith("top1 +0.00pt")  # same file: same predictions
    assert top1[0]["verdict"] == ab.NO_REGRESSION


@needs_models
def test_two_sessions_of_one_file_both_ways_and_one_session_against_itself_are_estimated(bench):
    """Experiment 4 (benchmarks/ab_noise.py) runs: both orders and one session against itself give an estimate
    over the paired images. Its values are measurements, reported by the benchmark, not asserted here."""
    for copy_first in (True, False):
        found = bench.sessions(copy_first)
        assert set(found) == {"copy/orig", "orig/copy", "same session"}
        for name, estimate in found.items():
            assert 0 < estimate.pairs <= 500, (name, estimate)
            assert estimate.low <= estimate.median <= estimate.high, (name, estimate)


@needs_models
def test_sequential_runs_with_a_hog_in_one_are_invalid_and_cannot_be_judged(bench):
    quiet, hogged, comparison = bench.sequential()
    assert not hogged["validity"]["valid"]
    assert any(r.startswith("contention: waited for a core") for r in hogged["validity"]["reasons"])
    delta = comparison.cases[0].deltas["median"]
    assert delta.cannot_judge and not delta.regressed
    assert not comparison.failed  # accuracy: the same file on the same images
    assert quiet["top1"] == hogged["top1"] and quiet["per_image"]["top5"] == hogged["per_image"]["top5"]


@needs_models
def test_four_times_the_work_under_a_hog_is_a_regression_with_the_right_sign(bench):
    calm = bench.ab(bench.large, bench.small, hog=False)
    pair = bench.ab(bench.large, bench.small, hog=True)
    _regression_or_too_few_clean_pairs(pair)
    if pair["verdict"] == ab.REGRESSION:
        assert pair["ratio"]["low"] > 2.0  # 0.5_160 does ~3.6x the work of 0.25_128: the ratio says NEW is slower
        if calm["verdict"] == ab.REGRESSION:  # and the hog moves it by far less than 25 % (1.4 % at most here)
            assert 0.75 < pair["ratio"]["median"] / calm["ratio"]["median"] < 1.25


def _regression_or_too_few_clean_pairs(pair):
    if pair["verdict"] == ab.CANNOT_JUDGE:
        assert pair["pair_validity"]["reasons"][0].startswith("too few clean pairs"), pair["pair_validity"]
    else:
        assert pair["verdict"] == ab.REGRESSION


def _catalogs(tmp_path, new_file, base_file):
    new = write_catalog(tmp_path / "new.toml", [tflite_entry("mobilenet_v1", new_file, 128 if new_file == SMALL else 160)])
    base = write_catalog(tmp_path / "base.toml", [tflite_entry("mobilenet_v1", base_file, 128 if base_file == SMALL else 160)])
    return new, base


@needs_models
def test_pytest_ab_writes_the_pair_and_fails_on_regression(run_aiotbench, tmp_path):
    new, base = _catalogs(tmp_path, LARGE, SMALL)
    run = run_aiotbench(f"--aiotbench-baseline={base}", "--aiotbench-fail-on=latency:+5%,top1:-0.5pt",
                        "--aiotbench-fail-invalid", catalogs=[new], dataset=IMAGENET_500)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    case = run.case("mobilenet_v1-tflite-int8")
    pair = case["ab"]
    _regression_or_too_few_clean_pairs(pair)  # exit 1 either way, with --aiotbench-fail-invalid
    assert pair["pair_validity"]["checks"]["pairs"] == 500 and 0 < pair["ratio"]["pairs"] <= 500
    assert len(pair["baseline"]["per_image"]["latency_ms"]) == len(case["per_image"]["latency_ms"]) == 500
    assert pair["baseline"]["top1"] < case["top1"]  # the larger model is the more accurate one: exact, not noisy
    assert set(case["validity"]) >= {"valid", "reasons"}
    assert "aiotbench A/B (interleaved, same machine)" in run.stdout
    assert "mobilenet_v1-tflite-int8: latency NEW/BASE x" in run.stdout
    from pytest_aiotbench.plugin.ab_gate import DISPLAY

    assert f": {DISPLAY[pair['verdict']]}" in run.stdout


@needs_models
def test_pytest_ab_accuracy_gate_and_catalog_baseline_key(run_aiotbench, tmp_path):
    """The `baseline` catalog key names the previous model file; the accuracy limit decides exactly."""
    catalog = write_catalog(tmp_path / "cat.toml", [tflite_entry("mobilenet_v1", SMALL, 128, baseline=str(SMALL))])
    run = run_aiotbench("--aiotbench-fail-on=top1:-0.5pt", "--aiotbench-images=40", catalogs=[catalog],
                        dataset=IMAGENET_500)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    pair = run.case("mobilenet_v1-tflite-int8")["ab"]
    assert pair["baseline"]["file"] == str(SMALL) and pair["verdict"] == "no regression"
    assert pair["baseline"]["top1"] == run.case("mobilenet_v1-tflite-int8")["top1"]


def test_baseline_catalog_without_a_matching_case_is_a_usage_error(run_aiotbench, tmp_path):
    new = write_catalog(tmp_path / "new.toml", [tflite_entry("mobilenet_v1", SMALL, 128)])
    base = write_catalog(tmp_path / "base.toml", [tflite_entry("other", SMALL, 128)])
    run = run_aiotbench(f"--aiotbench-baseline={base}", catalogs=[new])
    assert run.returncode == 4
    assert "none of its cases (other-tflite-int8) has the id of a case of this run (mobilenet_v1-tflite-int8)" in run.stderr


@pytest.mark.real
@_models_present
@pytest.mark.slow
def test_repeat_interleaves_cases_and_reports_the_spread(run_aiotbench, tmp_path):
    catalog = write_catalog(tmp_path / "cat.toml", [tflite_entry("a", SMALL, 128), tflite_entry("b", SMALL, 128)])
    run = run_aiotbench("--aiotbench-repeat=2", "--aiotbench-images=12", "-v", catalogs=[catalog],
                        dataset=IMAGENET_500)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    order = [line.split("[", 1)[1].split("]", 1)[0] for line in run.stdout.splitlines() if "PASSED" in line]
    assert order == ["a-tflite-int8-repeat1", "b-tflite-int8-repeat1", "a-tflite-int8-repeat2",
                     "b-tflite-int8-repeat2"]
    report = run.report
    case = next(c for c in report["cases"] if c["id"] == "a-tflite-int8")
    repeats = case["repeats"]
    assert repeats["n"] == repeats["measured"] == 2 and len(repeats["medians_ms"]) == 2
    assert case["latency_ms"]["median"] == pytest.approx(sorted(repeats["medians_ms"])[0] / 2
                                                         + sorted(repeats["medians_ms"])[1] / 2)
    assert case["vips"] == pytest.approx(case["top1"] / (case["latency_ms"]["mean"] / 1e3))
    assert report["score"]["vips"] == pytest.approx(sum(c["vips"] for c in report["cases"]))
    assert "Repeats (median of the repeat medians" in run.stdout
    assert json.dumps(report)  # serializable as written
