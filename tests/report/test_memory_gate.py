"""The ``memory`` metric (a case's peak resident MB) as a gate: ``aiotbench compare --fail-on memory:+10%``, the
pytest gate, a catalog's ``fail_on`` and the A/B verdict, on constructed reports; the terminal and HTML columns."""

from __future__ import annotations

import pytest

from pytest_aiotbench.inputs.catalog import parse_fail_on
from pytest_aiotbench.inputs.limits import LimitError, parse_limits
from pytest_aiotbench.report.html import render_html
from pytest_aiotbench.report.read import normalize_report
from pytest_aiotbench.report.table import render_summary
from pytest_aiotbench.verdicts import ab
from tests.helpers.reports import make_case, make_report, run_cli, write_json

NOT_EXPOSED = "not exposed: no VmRSS in /proc/self/status on darwin"


def _with_memory(case: dict, peak: float | None, prepare: float | None = 10.0, reason: str | None = None) -> dict:
    case["memory"] = {"prepare_mb": prepare if peak is not None else None, "peak_mb": peak, "inputs_mb": 0.6,
                      "base_mb": 60.0 if peak is not None else None, "isolation": "fresh process",
                      "source": "/proc/self/status VmRSS/VmHWM", "reason": reason}
    return case


def _files(tmp_path, base_peak, new_peak, new_reason=None, fail_on=None):
    base = _with_memory(make_case("mnv2-tflite-int8", seed=1), base_peak)
    new = _with_memory(make_case("mnv2-tflite-int8", seed=1), new_peak, reason=new_reason)
    if fail_on:
        base["fail_on"] = new["fail_on"] = fail_on
    return (write_json(tmp_path / "base.json", make_report([base])),
            write_json(tmp_path / "new.json", make_report([new])))


def test_memory_rise_beyond_the_limit_is_a_regression(tmp_path):
    result = run_cli("compare", *_files(tmp_path, 20.0, 25.0), "--fail-on", "memory:+10%")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL: 1 regression(s) beyond limits (memory:+10%)" in result.stdout
    assert "mnv2-tflite-int8: memory +25.00% (20 MB -> 25 MB; limit memory:+10%)" in result.stdout
    assert "memory (%)" in result.stdout and "+25.0% !!" in result.stdout  # the limited metric gets its column


def test_memory_within_the_limit_passes_and_a_drop_is_fine(tmp_path):
    within = run_cli("compare", *_files(tmp_path, 20.0, 21.5), "--fail-on", "memory:+10%")
    assert within.returncode == 0, within.stdout + within.stderr
    assert "OK: no regression beyond limits (memory:+10%)" in within.stdout
    smaller = run_cli("compare", *_files(tmp_path, 20.0, 5.0), "--fail-on", "memory:+10%")
    assert smaller.returncode == 0, smaller.stdout


def test_memory_not_exposed_on_a_side_is_not_judged_never_a_pass(tmp_path):
    result = run_cli("compare", *_files(tmp_path, 20.0, None, new_reason=NOT_EXPOSED), "--fail-on", "memory:+10%")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "NOT JUDGED: 1 limit check(s) could not be judged" in result.stdout
    assert f"no memory in NEW (NEW: {NOT_EXPOSED})" in result.stdout
    assert "OK:" not in result.stdout


def test_report_without_memory_figures_is_not_judged(tmp_path):
    base = write_json(tmp_path / "base.json", make_report([make_case("m-onnx-fp32", seed=1)]))  # older report
    new = write_json(tmp_path / "new.json", make_report([_with_memory(make_case("m-onnx-fp32", seed=1), 30.0)]))
    result = run_cli("compare", base, new, "--fail-on", "memory:+10%")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "BASE: not measured (report without memory figures)" in result.stdout


def test_memory_limit_parses_only_as_a_rise_in_percent():
    assert [str(x) for x in parse_limits(["memory:10%"])] == ["memory:+10%"]
    with pytest.raises(LimitError, match="a regression of memory is a rise, write memory:[+]10%"):
        parse_limits(["memory:-10%"])
    with pytest.raises(LimitError, match="memory is limited in '%'"):
        parse_limits(["memory:+10pt"])


def test_catalog_fail_on_memory_gates_its_case(tmp_path):
    assert parse_fail_on(["memory:+5%"]) == ("memory:+5%",)
    result = run_cli("compare", *_files(tmp_path, 20.0, 21.5, fail_on=["memory:+5%"]))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "limit memory:+5%" in result.stdout


@pytest.mark.slow
def test_pytest_gate_fails_on_a_memory_regression(gated):
    base = [_with_memory(make_case("a-tflite-int8", seed=1), 20.0)]
    grown = [_with_memory(make_case("a-tflite-int8", seed=1), 30.0)]
    result = gated(base, grown, "--aiotbench-compare", "base.json", "--aiotbench-fail-on", "memory:+10%")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*FAILED aiotbench::compare-gate - FAIL: 1 regression(s)*"])
    not_exposed = [_with_memory(make_case("a-tflite-int8", seed=1), None, reason=NOT_EXPOSED)]
    unjudged = gated(base, not_exposed, "--aiotbench-compare", "base.json", "--aiotbench-fail-on", "memory:+10%")
    assert unjudged.ret == pytest.ExitCode.TESTS_FAILED
    unjudged.stdout.fnmatch_lines(["*FAILED aiotbench::compare-gate - NOT JUDGED: 1 limit check(s)*"])


def _ab(base_memory, new_memory):
    estimate = ab.ratio_interval([1.0] * 60, "c")
    validity = {"valid": True, "reasons": []}
    return ab.judge(estimate, validity, parse_limits(["memory:+10%"]), {"top1": 0.7, "memory": base_memory},
                    {"top1": 0.7, "memory": new_memory})


def test_ab_memory_verdicts():
    grown = _ab(20.0, 23.0)
    assert grown.verdict == ab.REGRESSION
    assert grown.judgements[0].detail == "memory +15.0% (20.0 -> 23.0 MB peak; limit memory:+10%)"
    assert _ab(20.0, 21.0).verdict == ab.NO_REGRESSION
    missing = _ab(20.0, None)
    assert missing.verdict == ab.CANNOT_JUDGE
    assert "no peak memory on NEW" in missing.judgements[0].detail


def test_table_and_html_show_peak_memory_and_not_exposed():
    report = make_report([_with_memory(make_case("m-tflite-int8", seed=1), 14.7),
                          _with_memory(make_case("m-onnx-fp32", seed=2), None, reason=NOT_EXPOSED)])
    lines = render_summary(report)
    header = next(line for line in lines if line.startswith("case"))
    assert header.split()[7] == "MB"  # after "mean ms", "p90 ms"
    int8 = next(line for line in lines if "tflite-int8" in line)
    fp32 = next(line for line in lines if "onnx-fp32" in line)
    assert int8.split()[5] == "14.7" and fp32.split()[5] == "n/a"
    assert any(f"m-onnx-fp32: memory {NOT_EXPOSED}" in line for line in lines)
    html = render_html(normalize_report(report))
    assert "<th class=\"\">peak MB</th>" in html
    assert 'title="prepare 10.0 MB; measured in a fresh process">14.7</td>' in html
    assert f'title="{NOT_EXPOSED}">n/a</td>' in html


def test_repeats_report_the_median_repeat_memory_and_pool_it_in_the_ab():
    from pytest_aiotbench.verdicts.repeats import combine

    entries = []
    for index, peak in enumerate((21.0, 19.0, 20.0), start=1):
        entry = _with_memory(make_case("m-tflite-int8", seed=index), peak)
        entry["repeat"] = {"index": index, "of": 3}
        entries.append(entry)
    assert combine(entries)["memory"]["peak_mb"] == 20.0
    none = [_with_memory(make_case("m-tflite-int8", seed=1), None, reason=NOT_EXPOSED)]
    assert combine(none)["memory"]["reason"] == NOT_EXPOSED  # kept as measured: null with its reason
