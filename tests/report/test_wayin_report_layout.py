"""Reports a CI reader can read (issue 17, item 11): the HTML page shows validity and the A/B verdict, the
settings as a table (no Python reprs) and its case table fits 1280 px; the terminal summary fits COLUMNS=80."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.catalogs import float_entry, tflite_entry, write_catalog
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR, TORCH_DIR

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, shared):
    """A real run of three cases (one with an A/B baseline, long case ids, a delegation gap) with an HTML report,
    in an 80-column terminal."""
    root = tmp_path_factory.mktemp("layout")
    small = TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"
    write_catalog(root / "c.toml", [
        tflite_entry("mobilenet_v1_0.25_128_with_a_long_model_name", small, 128, min_top1=0.0),
        float_entry("mobilenet_v1_0.25_128_with_a_long_model_name", "onnxruntime",
                    TORCH_DIR / "mobilenet_v1_0.25_128.onnx", 128, min_top1=0.0),
        tflite_entry("mobilenet_v1_0.5_160", TFLITE_DIR / "mobilenet_v1_0.5_160_quant.tflite", 160, min_top1=0.0),
    ])
    # A/B: the same case id with a better model as its baseline (top-1 70 % vs 55 %: an exact regression).
    write_catalog(root / "base.toml", [tflite_entry("mobilenet_v1_0.25_128_with_a_long_model_name",
                                                    TFLITE_DIR / "mobilenet_v1_0.5_160_quant.tflite", 160)])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "aiotbench", "-p", "no:cacheprovider", "--aiotbench",
         "--aiotbench-catalog=c.toml", f"--aiotbench-dataset={IMAGENET_500}", "--aiotbench-images=40",
         "--aiotbench-warmup=2", "--aiotbench-cache=none", "--aiotbench-json=run.json",
         "--aiotbench-html=report.html", "--aiotbench-baseline=base.toml", "--aiotbench-fail-on=top1:-0.5pt"],
        cwd=root, capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "80"})
    assert (root / "report.html").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, proc


def _ours(stdout: str) -> list[str]:
    """The plugin's lines: everything but pytest's header (plugin list), its short test summary (whole lines when
    CI is set) and pytest-benchmark's own table (as wide as its columns need)."""
    lines, skipping = [], False
    for line in stdout.splitlines():
        if line.startswith(("plugins: ", "benchmark: ", "FAILED ", "ERROR ")):
            continue
        if re.match(r"^-+ benchmark", line):
            skipping = True
        if not skipping:
            lines.append(line)
        if line.startswith("  OPS:"):
            skipping = False
    return lines


@pytest.mark.slow
def test_terminal_lines_fit_80_columns_and_reasons_wrap(real_run):
    _, proc = real_run
    lines = _ours(proc.stdout)
    assert any(line.startswith("AIoTBench results") for line in lines), proc.stdout[-3000:]
    assert any("latency NEW/BASE" in line for line in lines)
    assert any(line.startswith("aiotbench: mobilenet_v1_0.5_160-tflite-int8: 40 images") for line in lines)
    too_wide = [line for line in lines if len(line) > 80]
    assert too_wide == [], "\n".join(too_wide)


@pytest.mark.slow
def test_html_shows_verdicts_and_validity_and_settings_without_reprs(real_run):
    root, _ = real_run
    page = (root / "report.html").read_text()
    text = re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]+"', "", page))
    for repr_mark in ("{'", "['", "[('", "': ", "None", "True", "False"):
        assert repr_mark not in text, repr_mark
    assert '<table class="settings">' in page and "<td>threads</td><td>1</td>" in page
    assert "<h2>Verdict</h2>" in page and "A/B against the baseline" in page
    ab_row = re.search(r'<tr data-ab="mobilenet_v1_0.25_128_with_a_long_model_name-tflite-int8">(.*?)</tr>', page)
    assert ab_row and "REGRESSION" in ab_row.group(1) and "top1: regression" in ab_row.group(1)
    assert re.search(r"Latency measurements: \d of 3 VALID", page)
    assert re.search(r'<td class="text (valid|invalid)"[^>]*>(VALID|INVALID)</td>', page)


def test_html_case_table_fits_1280_pixels(real_run, tmp_path):
    root, _ = real_run
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        pytest.skip("no chromium to lay the page out")
    page = (root / "report.html").read_text()
    probe = tmp_path / "probe.html"  # the page, reporting its laid-out widths in its title
    probe.write_text(page.replace("</body>", "<script>document.title = 'W=' + document.documentElement.scrollWidth "
                                            "+ ' T=' + document.getElementById('cases').getBoundingClientRect().right"
                                            ";</script></body>"))
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r"<title>W=(\d+) T=([\d.]+)</title>", dom)
    assert found, dom[:500]
    assert int(found.group(1)) <= 1280 and float(found.group(2)) <= 1280, found.group(0)


@pytest.mark.slow
def test_gate_comparison_lines_fit_80_columns(real_run):
    root, _ = real_run
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "aiotbench", "-p", "no:cacheprovider", "--aiotbench",
         "--aiotbench-catalog=c.toml", f"--aiotbench-dataset={IMAGENET_500}", "--aiotbench-images=40",
         "--aiotbench-warmup=2", "--aiotbench-cache=none", "--aiotbench-compare=run.json",
         "--aiotbench-fail-on=top1:-0.5pt,p90:+10%"],
        cwd=root, capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "80"})
    lines = _ours(proc.stdout)
    assert any(line.startswith("BASE: ") for line in lines), proc.stdout[-3000:]
    assert any("mobilenet_v1_0.5_160-tflite-int8" in line and "pt" in line for line in lines)
    too_wide = [line for line in lines if len(line) > 80]
    assert too_wide == [], "\n".join(too_wide)
