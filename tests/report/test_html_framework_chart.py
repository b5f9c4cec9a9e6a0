"""Issue 20: the HTML report shows the framework comparison as a picture: median latency per model x framework,
grouped bars on a log scale, for every timed case (random-weight zoo cases have no accuracy but are drawn)."""

from __future__ import annotations

import base64

from pytest_aiotbench.report import html as html_report
from pytest_aiotbench.report.read import normalize_report
from tests.helpers.reports import make_case, make_report

FRAMEWORKS = ("tflite-fp32", "onnxruntime-fp32", "ncnn-fp32", "openvino-bf16")


def _unscored_zoo_run() -> dict:
    cases = [make_case(f"{model}-{fw}", top1=None, top5=None, latency_ms=ms * (1 + i / 10), seed=i, gflops=None)
             for model, ms in (("resnet50", 150.0), ("squeezenet", 15.0), ("mobilenet_v2", 8.0))
             for i, fw in enumerate(FRAMEWORKS)]
    cases.append(make_case("mnasnet-mnn-fp32", status="skipped"))
    run = make_report(cases)
    run["dataset"].update(kind="synthetic", labeled=False)
    return normalize_report(run, "zoo.json")


def test_unscored_cases_get_the_framework_chart(monkeypatch):
    figures = []
    real = html_report._png_data_uri
    monkeypatch.setattr(html_report, "_png_data_uri", lambda fig: figures.append(fig) or real(fig))
    page = html_report.render_html(_unscored_zoo_run())
    assert 'id="chart-framework-latency"' in page and 'id="chart-accuracy-latency"' not in page
    uri = page.split('id="chart-framework-latency"', 1)[1].split('src="', 1)[1].split('"', 1)[0]
    assert base64.b64decode(uri.split(",", 1)[1]).startswith(b"\x89PNG")
    (fig,) = figures
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert len(ax.patches) == 12  # 3 models x 4 frameworks; the skipped case has no bar
    assert [t.get_text() for t in ax.get_xticklabels()] == ["resnet50", "squeezenet", "mobilenet_v2"]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == sorted(f.replace("-", " ") for f in FRAMEWORKS)


def test_one_framework_draws_no_comparison():
    run = make_report([make_case("m-tflite-int8", top1=None, top5=None, gflops=None)])
    page = html_report.render_html(normalize_report(run, "one.json"))
    assert "chart-framework-latency" not in page
