"""pytest's own --junitxml among the files a run writes (the stranger test): pointed at the JSON report it replaced
the report with XML, pointed at the catalog (or labels.csv) it overwrote the project's input after the run. Now
both are refused at start (exit 4) naming the two paths, as --benchmark-json is."""

from __future__ import annotations

import pytest

from tests.helpers.catalogs import tflite_entry, write_catalog
from tests.helpers.realrun import one_usage_error


@pytest.fixture
def catalog(tmp_path):
    return write_catalog(tmp_path / "cat.toml", [tflite_entry("m", tmp_path / "missing.tflite", 128)])


@pytest.mark.parametrize("spelling", ["--junitxml={}", "--junit-xml={}", "--junitxml=sub/../{}"])
def test_junitxml_onto_the_json_report_is_refused(run_aiotbench, catalog, tmp_path, spelling):
    (tmp_path / "sub").mkdir()
    report = tmp_path / "report-0.json"  # the path run_aiotbench gives --aiotbench-json
    run = run_aiotbench(spelling.format(report.name), catalogs=[catalog])
    one_usage_error(run, "--junitxml", "--aiotbench-json", "same file")
    assert not report.exists()


def test_junitxml_onto_the_catalog_is_refused_and_the_catalog_survives(run_aiotbench, catalog):
    before = catalog.read_text()
    run = run_aiotbench(f"--junitxml={catalog}", catalogs=[catalog])
    one_usage_error(run, "--junitxml", str(catalog), "its own input")
    assert catalog.read_text() == before


def test_junitxml_elsewhere_is_written(run_aiotbench, catalog, tmp_path):
    run = run_aiotbench(f"--junitxml={tmp_path / 'junit.xml'}", catalogs=[catalog])
    assert run.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, (run.stdout + run.stderr)[-3000:]  # skipped case
    assert "<testsuites" in (tmp_path / "junit.xml").read_text()


@pytest.mark.parametrize("args", [["no_such_test_path"], ["-k", "and"]])
def test_a_usage_error_from_pytest_writes_no_report(run_aiotbench, catalog, args):
    # pytest's own usage errors come after the plugin is configured (a test path not found, a bad -k): exit 4,
    # and an empty report was written where none was
    run = run_aiotbench(*args, catalogs=[catalog])
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, (run.stdout + run.stderr)[-3000:]
    assert "Traceback" not in run.stdout + run.stderr
    assert not run.json_path.exists()
    assert "JSON report written" not in run.stdout
