"""``aiotbench report`` and ``--aiotbench-html``: one self-contained HTML page with charts, table, comparison."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys

import pytest

from pytest_aiotbench.report.html import pareto_front, render_html
from pytest_aiotbench.report.read import normalize_report
from tests.helpers.realrun import make_real_runs, requires_real_run, run_benchmark
from tests.helpers.reports import REPO, gate_plugin_args, make_case, make_report, run_cli, write_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    return make_real_runs(tmp_path_factory.mktemp("real"))


def _run_report() -> dict:
    cases = [
        make_case("mobilenet_v2-tflite-int8", top1=0.70, latency_ms=7.0, seed=1),
        make_case("mobilenet_v2-onnx-fp32", top1=0.72, latency_ms=7.4, seed=2),
        make_case("mobilenet_v1-tflite-int8", top1=0.65, latency_ms=3.0, seed=3),
        make_case("resnet50-tflite-fp32", top1=0.76, latency_ms=81.0, seed=4, gflops=4.1),
        make_case("resnet50-onnx-int8", top1=0.60, latency_ms=90.0, seed=5),  # dominated: slower and worse
        make_case("squeezenet-onnx-fp32", status="skipped"),
    ]
    return make_report(cases, device="pixel7 <test>")


def test_pareto_front_keeps_only_undominated_cases():
    front = [c["id"] for c in pareto_front(_run_report()["cases"])]
    assert front == ["mobilenet_v1-tflite-int8", "mobilenet_v2-tflite-int8", "mobilenet_v2-onnx-fp32",
                     "resnet50-tflite-fp32"]


def test_page_is_self_contained_with_charts_table_and_comparison():
    run = normalize_report(_run_report(), "run.json")
    base_report = _run_report()
    base_report["cases"][0] = make_case("mobilenet_v2-tflite-int8", top1=0.72, latency_ms=7.0, seed=9)
    page = render_html(run, normalize_report(base_report, "base.json"))
    images = re.findall(r'<img id="([^"]+)" alt="[^"]+" src="data:image/png;base64,([^"]+)"', page)
    assert [name for name, _ in images] == ["chart-accuracy-latency", "chart-vips", "chart-framework-latency"]
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for _, data in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    assert len(re.findall(r'<tr data-case="', page)) == 6
    assert "pixel7 &lt;test&gt;" in page and "<test>" not in page  # escaped
    assert page.count("&#9733;") == 4  # Pareto marks
    assert '<tr data-compare="mobilenet_v2-tflite-int8">' in page and "-2.0pt" in page


def test_cli_writes_the_page_atomically(tmp_path):
    run = write_json(tmp_path / "run.json", _run_report())
    out = tmp_path / "sub" / "report.html"
    result = run_cli("report", run, "-o", out)
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left behind


def test_without_matplotlib_the_command_says_what_to_install(tmp_path):
    run = write_json(tmp_path / "run.json", _run_report())
    # sys.modules[name] = None makes `import matplotlib` raise ImportError, as if it were not installed.
    code = ("import sys; sys.modules['matplotlib'] = None; from pytest_aiotbench.cli import main; "
            f"sys.exit(main(['report', {str(run)!r}, '-o', {str(tmp_path / 'r.html')!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    assert result.stderr == ("aiotbench report: error: matplotlib is needed for HTML reports: "
                             "pip install 'pytest-aiotbench[plot]'\n")
    assert not (tmp_path / "r.html").exists()


def test_bad_input_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "aiotbench/1"')
    result = run_cli("report", bad, "-o", tmp_path / "r.html")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "invalid JSON" in result.stderr


def test_unlabeled_run_explains_missing_charts():
    run = make_report([make_case("m-tflite-int8", top1=None, top5=None, gflops=None)])
    run["dataset"].update(kind="synthetic", labeled=False)
    page = render_html(normalize_report(run, "synthetic.json"))
    assert "<img" not in page and "No VIPS chart" in page and "unlabeled" in page


# ------------------------------------------------------------------------------------------ real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(tmp_path, page, *mode: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}",
         "--window-size=1280,2000", *mode, page.as_uri()],
        capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
@requires_real_run
@pytest.mark.slow
def test_real_run_report_renders_in_headless_chromium(real_runs, tmp_path):
    """`pytest --aiotbench-html` on a real run, compared with a base; Chromium must show charts and rows."""
    page = tmp_path / "report.html"
    result = run_benchmark(tmp_path, "0.25_128", "new", *gate_plugin_args(), f"--aiotbench-html={page}",
                           f"--aiotbench-compare={real_runs / 'base.json'}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"HTML report written to {page}" in " ".join(result.stdout.split())  # wrapped to the terminal
    dom = _chromium(tmp_path, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert re.search(r'<img id="chart-accuracy-latency"[^>]+src="data:image/png;base64,', dom.stdout)
    assert re.search(r'<img id="chart-vips"[^>]+src="data:image/png;base64,', dom.stdout)
    assert '<tr data-case="mobilenet_v1-tflite-int8">' in dom.stdout
    assert '<tr data-compare="mobilenet_v1-tflite-int8">' in dom.stdout
    screenshot = tmp_path / "report.png"
    shot = _chromium(tmp_path, page, f"--screenshot={screenshot}")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.read_bytes().startswith(PNG_MAGIC) and screenshot.stat().st_size > 50_000
    print(f"screenshot: {screenshot}")
