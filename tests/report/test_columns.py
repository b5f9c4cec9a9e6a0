"""The column registry (``report/columns.py``): one entry per column feeds the terminal table, the HTML case table
and both comparison tables; the gateable columns read the case through the ``--fail-on`` metrics."""

from __future__ import annotations

import dataclasses
import re

import pytest

from helpers.reports import make_case, make_report
from pytest_aiotbench.inputs.limits import METRICS, Metric, parse_limits
from pytest_aiotbench.report import columns, html
from pytest_aiotbench.report.compare import compare_reports, format_comparison
from pytest_aiotbench.report.table import render_summary


def _run(**fields) -> dict:
    report = make_report([{**make_case("m-tflite-int8"), **fields}])
    report["dataset"]["note"] = None
    return report


def _header(lines: list[str]) -> list[str]:
    return re.split(r"\s{2,}", next(line for line in lines if line.startswith("case")).strip())


def test_each_view_shows_its_columns_in_the_one_order():
    assert [c.header for c in columns.for_view(columns.TABLE)] == [
        "case", "top-1", "top-5", "mean ms", "p90 ms", "MB", "VIPS", "latency", "status"]
    assert [c.header for c in columns.for_view(columns.OFFLINE)] == [
        "case", "top-1", "top-5", "images/s", "sessions x batch", "offline VIPS", "load", "status"]
    assert [c.key for c in columns.for_view(columns.HTML)] == [
        "case", "images", "top1", "top5", "median", "mean", "p90", "memory", "vips", "vops", "latency", "status", "pareto",
        "coverage"]
    assert [m.name for m in columns.compared_metrics()] == ["top1", "top5", "median", "p90", "vips"]
    keys = [c.key for c in columns.COLUMNS]
    assert len(keys) == len(set(keys))  # a column is declared once


def test_gateable_columns_read_the_case_through_the_limit_metrics():
    """What ``--fail-on p90:+10%`` judges is what the p90 column shows: the same extractor, not a second one."""
    for column in columns.COLUMNS:
        if column.key in METRICS:
            assert column.metric is METRICS[column.key] and column.value is METRICS[column.key].value
    assert columns.metric("mean") is METRICS["mean"]
    with pytest.raises(KeyError):
        columns.metric("speed")


def test_a_compared_column_must_say_how_it_is_compared():
    with pytest.raises(ValueError, match="needs the metric named 'gflops'"):
        columns.Column("gflops", "GFLOPs", lambda c: c.get("gflops"), str, str, views=frozenset({columns.COMPARE}))


def test_terminal_cells_tell_not_measured_from_not_available():
    (top1,) = [c for c in columns.COLUMNS if c.key == "top1"]
    (mean,) = [c for c in columns.COLUMNS if c.key == "mean"]
    measured_unlabelled = make_case("m-tflite-int8", top1=None)
    skipped = {**make_case("m-tflite-int8"), "latency_ms": None, "top1": None, "status": "skipped"}
    assert top1.text_cell(make_case("m-tflite-int8", top1=0.7)) == "70.0%"
    assert top1.text_cell(measured_unlabelled) == "n/a" and top1.text_cell(skipped) == "-"
    assert mean.text_cell(skipped) == "-" and re.fullmatch(r"\d+\.\d\d", mean.text_cell(measured_unlabelled))
    assert top1.html_cell(skipped) == "<td>&ndash;</td>"


def test_html_cells_escape_and_flag():
    case = {**make_case("m<x>-tflite-int8"), "status": "skipped", "reason": 'no "file"', "latency_ms": None}
    cells = {c.key: c.html_cell(case, columns.Context(pareto=frozenset({case["id"]})))
             for c in columns.for_view(columns.HTML)}
    assert cells["case"] == '<td class="id">m&lt;x&gt;-tflite-int8</td>'
    assert cells["status"] == '<td class="text skipped" title="no &quot;file&quot;">skipped</td>'
    assert cells["pareto"] == "<td>&#9733;</td>" and cells["latency"] == '<td class="text "></td>'


def test_a_column_added_to_the_registry_shows_in_every_view(monkeypatch):
    """Adding a report column is one registry entry: the terminal table, the HTML case table, the compare table
    and the HTML comparison all show it (here GFLOPs, a schema field no view shows by default)."""
    gflops = Metric("gflops", "%", +1, lambda c: c.get("gflops"))
    column = columns.Column("gflops", "GFLOPs", gflops.value, lambda v, c: "-" if v is None else f"{v:.3f}",
                            lambda v, c, ctx: f'<td class="gflops">{html.escape(str(v))}</td>',
                            views=frozenset({columns.TABLE, columns.HTML, columns.COMPARE}), metric=gflops)
    monkeypatch.setattr(columns, "COLUMNS", [*columns.COLUMNS[:-1], column, columns.COLUMNS[-1]])
    base, new = _run(gflops=0.5), _run(gflops=0.6)

    lines = render_summary(new)
    assert _header(lines)[-1] == "GFLOPs"
    assert next(line for line in lines if "tflite-int8" in line).split()[-1] == "0.600"

    page = html._cases_table(new)
    assert "<th class=\"\">GFLOPs</th><th class=\"text\">coverage</th>" in page
    assert '<td class="gflops">0.6</td>' in page

    comparison = compare_reports(base, new)
    assert comparison.columns[-1] == "gflops"
    text = format_comparison(comparison)
    assert _header(text.splitlines())[-2:] == ["gflops (%)", "notes"]
    assert "+20.0%" in text
    section = html._comparison_section(comparison)
    assert "<th>gflops (%)</th>" in section and ">+20.0%</td>" in section


def test_a_limit_on_a_metric_not_shown_adds_its_column_to_the_comparison():
    base, new = _run(), _run(vops=50.0)
    base["cases"][0]["vops"] = 40.0
    comparison = compare_reports(base, new, parse_limits(["vops:-5%"]))
    assert comparison.columns == ["top1", "top5", "median", "p90", "vips", "vops"]
    assert comparison.cases[0].deltas["vops"].cell() == "+25.0%"


def test_column_declarations_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        columns.COLUMNS[0].header = "id"
