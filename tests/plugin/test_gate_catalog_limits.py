"""Per-model gate limits in the catalog (issue 17 item 10): ``fail_on = [...]`` is checked at start (exit 4 naming
file, model and key), travels in the report entry, and is applied by ``aiotbench compare``, the pytest gate and
the A/B, overriding a global limit on the same metric."""

from __future__ import annotations

import pytest

from pytest_aiotbench.inputs.catalog import CatalogError, load
from pytest_aiotbench.report.compare import compare_reports, parse_limits
from pytest_aiotbench.report.read import normalize_report
from tests.helpers.catalogs import tflite_entry, write_catalog
from tests.helpers.reports import gate_plugin_args, make_case, make_report, run_cli, write_json
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR

SMALL, LARGE = TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite", TFLITE_DIR / "mobilenet_v1_0.5_160_quant.tflite"
real = pytest.mark.real(pytest.mark.skipif(not (SMALL.is_file() and LARGE.is_file() and IMAGENET_500.is_dir()),
                                           reason="shared MobileNetV1 models or images missing"))


def _with_limits(case, *limits):
    case["fail_on"] = list(limits)
    return case


@pytest.mark.parametrize("value, message", [
    (["top1:-5%"], "bad limit 'top1:-5%': top1 is limited in 'pt'"),
    (["p90:-10%"], "a regression of p90 is a rise"),
    (["speed:+1%"], "unknown metric 'speed'"),
    ([], "expected a non-empty list of limits"),
    ([""], "expected a non-empty list of limits"),
    (3, "expected a non-empty list of limits"),
])
def test_bad_catalog_limit_names_file_model_and_key(tmp_path, value, message):
    catalog = write_catalog(tmp_path / "cat.toml", [tflite_entry("m", SMALL, 128, fail_on=value)])
    with pytest.raises(CatalogError) as info:
        load(catalog)
    assert str(info.value).startswith(f"{catalog}: model 'm': fail_on = ") and message in str(info.value)


def test_bad_catalog_limit_is_a_usage_error_at_start(run_aiotbench, tmp_path):
    catalog = write_catalog(tmp_path / "cat.toml", [tflite_entry("m", SMALL, 128, fail_on=["top1:-5%"])])
    run = run_aiotbench(catalogs=[catalog])
    assert run.returncode == 4, run.stdout[-2000:] + run.stderr[-2000:]
    assert f"{catalog}: model 'm': fail_on = [\"top1:-5%\"]: bad limit" in run.stderr
    assert "Traceback" not in run.stderr


def test_catalog_limits_are_normalized_and_later_wins(tmp_path):
    catalog = write_catalog(tmp_path / "cat.toml", [tflite_entry("m", SMALL, 128,
                                                                 fail_on=["latency:5%", "top1:-1pt", "top1:-0.5pt"])])
    assert load(catalog)[0].fail_on == ("median:+5%", "top1:-0.5pt")


def test_compare_applies_the_case_limits_of_the_report(tmp_path):
    base = write_json(tmp_path / "b.json", make_report([make_case("a-tflite-int8", top1=0.70),
                                                        make_case("b-tflite-int8", top1=0.70)]))
    new = write_json(tmp_path / "n.json", make_report([
        _with_limits(make_case("a-tflite-int8", top1=0.69, seed=1), "top1:-0.5pt"),
        make_case("b-tflite-int8", top1=0.69, seed=2)]))
    result = run_cli("compare", base, new)  # no --fail-on: the case's own limit gates it
    assert result.returncode == 1, result.stdout + result.stderr
    assert "a-tflite-int8: top1 -1.00pt" in result.stdout and "b-tflite-int8: top1" not in result.stdout
    loose = run_cli("compare", base, new, "--fail-on", "top1:-5pt")  # the case's stricter limit overrides
    assert loose.returncode == 1 and "a-tflite-int8: top1 -1.00pt" in loose.stdout
    assert "per model: a-tflite-int8: top1:-0.5pt" in loose.stdout


def test_case_limit_can_loosen_the_global_one():
    base = normalize_report(make_report([make_case("a-tflite-int8", top1=0.70)]))
    new = normalize_report(make_report([_with_limits(make_case("a-tflite-int8", top1=0.68, seed=1), "top1:-5pt")]))
    assert not compare_reports(base, new, parse_limits(["top1:-0.5pt"])).failed
    plain = normalize_report(make_report([make_case("a-tflite-int8", top1=0.68, seed=1)]))
    assert compare_reports(base, plain, parse_limits(["top1:-0.5pt"])).failed


def test_bad_limit_in_a_report_is_unusable_input(tmp_path):
    base = write_json(tmp_path / "b.json", make_report([make_case("a-tflite-int8")]))
    new = write_json(tmp_path / "n.json", make_report([_with_limits(make_case("a-tflite-int8"), "top1:+1pt")]))
    result = run_cli("compare", base, new)
    assert result.returncode == 2 and "case 'a-tflite-int8': fail_on: bad limit 'top1:+1pt'" in result.stderr


@real
@pytest.mark.slow
def test_pytest_gate_applies_catalog_limits(run_aiotbench, tmp_path):
    base_cat = write_catalog(tmp_path / "base.toml", [tflite_entry("m", LARGE, 160)])
    base = run_aiotbench("--aiotbench-images=60", catalogs=[base_cat], dataset=IMAGENET_500)
    assert base.returncode == 0, base.stdout[-2000:]
    worse_cat = write_catalog(tmp_path / "new.toml", [tflite_entry("m", SMALL, 128, fail_on=["top1:-1pt"])])
    run = run_aiotbench("--aiotbench-images=60", *gate_plugin_args(), f"--aiotbench-compare={base.json_path}",
                        catalogs=[worse_cat], dataset=IMAGENET_500)
    assert run.case("m-tflite-int8")["fail_on"] == ["top1:-1pt"]
    drop = (base.case("m-tflite-int8")["top1"] - run.case("m-tflite-int8")["top1"]) * 100
    assert drop > 1, drop  # the smaller model is less accurate on these images (exact, not timing)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    assert "FAILED aiotbench::compare-gate" in run.stdout and "m-tflite-int8: top1 -" in run.stdout


@real
@pytest.mark.slow
def test_ab_applies_catalog_limits_and_names_an_unpaired_case(run_aiotbench, tmp_path):
    catalog = write_catalog(tmp_path / "cat.toml", [
        tflite_entry("paired", SMALL, 128, baseline=str(SMALL), fail_on=["top1:-0.5pt"]),
        tflite_entry("alone", SMALL, 128, fail_on=["top1:-0.5pt"])])
    run = run_aiotbench("--aiotbench-images=40", catalogs=[catalog], dataset=IMAGENET_500)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    pair = run.case("paired-tflite-int8")["ab"]
    assert [j["metric"] for j in pair["judgements"]] == ["top1"] and pair["verdict"] == "no regression"
    assert "alone-tflite-int8: top1:-0.5pt not judged: no baseline partner" in run.stdout
