"""The way in for a user's own project (issue 17, items 8 and 9): their catalog replaces the built-in AIoTBench
suite, their unit tests and the catalog's cases run in one invocation, and a case's node id reruns it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.catalogs import dedent, tflite_entry, write_catalog
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR

SMALL = TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"
CASE = "mine-tflite-int8"


@pytest.fixture
def project(tmp_path, shared) -> Path:
    """A user's project: its own ini (testpaths), catalog and unit test."""
    root = tmp_path / "proj"
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text(dedent("""
        [tool.pytest.ini_options]
        testpaths = ["tests"]
        aiotbench_images = 3
        aiotbench_warmup = 1
        aiotbench_cache = "none"
    """))
    (root / "tests" / "test_unit.py").write_text("def test_unit():\n    assert 1 + 1 == 2\n")
    write_catalog(root / "mine.toml", [tflite_entry("mine", SMALL, 128, min_top1=0.0)])
    return root


def pytest_in(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=root,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def collected(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stdout.splitlines() if "::" in line and " " not in line]


# ------------------------------------------------------------------------------ item 8: own catalog = own suite

@pytest.mark.parametrize("how", ["option", "ini"])
@pytest.mark.slow
def test_own_catalog_replaces_the_builtin_suite(project, how):
    if how == "ini":
        with (project / "pyproject.toml").open("a") as f:
            f.write('aiotbench_catalog = "mine.toml"\n')
        args = []
    else:
        args = ["--aiotbench-catalog", "mine.toml"]
    listed = pytest_in(project, "--aiotbench", *args, "--collect-only", "-q")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert collected(listed) == ["tests/test_unit.py::test_unit", f"aiotbench::test_aiotbench[{CASE}]"]
    run = pytest_in(project, "--aiotbench", *args, f"--aiotbench-dataset={IMAGENET_500}",
                    "--aiotbench-json=r.json", "-rs")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout and "skipped" not in run.stdout
    report = json.loads((project / "r.json").read_text())
    assert [c["id"] for c in report["cases"]] == [CASE]
    assert not any("canonical" in r for r in report["score"]["partial_reasons"]), report["score"]
    assert "canonical" not in run.stdout


@pytest.mark.slow
def test_the_builtin_suite_is_selected_by_name_or_when_no_catalog_is_given(project):
    default = pytest_in(project, "--aiotbench", "--collect-only", "-q", "aiotbench")
    named = pytest_in(project, "--aiotbench", "--aiotbench-suite", "aiotbench", "--aiotbench-catalog=mine.toml",
                      "--collect-only", "-q", "aiotbench")
    for proc in (default, named):
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "aiotbench::test_aiotbench[resnet50-tflite-int8]" in collected(proc)
    assert len(collected(named)) == len(collected(default)) + 1
    assert f"aiotbench::test_aiotbench[{CASE}]" in collected(named)
    ini = project / "pyproject.toml"
    ini.write_text(ini.read_text() + 'aiotbench_suite = "aiotbench"\naiotbench_catalog = "mine.toml"\n')
    assert collected(pytest_in(project, "--aiotbench", "--collect-only", "-q", "aiotbench")) == collected(named)


@pytest.mark.parametrize("args, message", [
    (["--aiotbench-suite", "mlperf"], "--aiotbench-suite mlperf: expected one of: aiotbench, none"),
    (["--aiotbench-suite=aiotbench", "--aiotbench-no-builtin"],
     "--aiotbench-suite aiotbench and --aiotbench-no-builtin contradict each other"),
    (["--aiotbench-suite=none"], "no benchmark cases: the built-in suite is left out"),
])
def test_a_bad_suite_choice_is_a_usage_error(project, args, message):
    proc = pytest_in(project, "--aiotbench", *args, "--collect-only")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


# ------------------------------------------------------------------ item 9: unit tests and cases, one invocation

@pytest.mark.parametrize("paths", [[], ["tests"], ["tests/test_unit.py"]])
@pytest.mark.slow
def test_unit_tests_and_cases_run_in_one_invocation(project, paths):
    proc = pytest_in(project, "--aiotbench", "--aiotbench-catalog=mine.toml", f"--aiotbench-dataset={IMAGENET_500}",
                     "-v", *paths)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tests/test_unit.py::test_unit PASSED" in proc.stdout
    assert f"aiotbench::test_aiotbench[{CASE}] PASSED" in proc.stdout and "2 passed" in proc.stdout


@pytest.mark.slow
def test_a_case_node_id_pasted_back_reruns_that_case_only(project):
    write_catalog(project / "mine.toml", [tflite_entry("mine", SMALL, 128, min_top1=0.0),
                                          tflite_entry("other", SMALL, 128, min_top1=0.0)])
    listed = pytest_in(project, "--aiotbench", "--aiotbench-catalog=mine.toml", "--collect-only", "-q")
    node = next(n for n in collected(listed) if CASE in n)
    proc = pytest_in(project, "--aiotbench", "--aiotbench-catalog=mine.toml", f"--aiotbench-dataset={IMAGENET_500}",
                     "-v", node)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{node} PASSED" in proc.stdout and "1 passed" in proc.stdout
    assert "test_unit" not in proc.stdout and "other-tflite-int8" not in proc.stdout
    # A single unit test by node id: no case is added to it; with --aiotbench a run that measured no case is still
    # not green (exit 5) unless --aiotbench-allow-empty says so.
    unit = pytest_in(project, "--aiotbench", "--aiotbench-catalog=mine.toml", "-v", "tests/test_unit.py::test_unit")
    assert unit.returncode == 5 and "1 passed" in unit.stdout and "aiotbench::" not in unit.stdout
    allowed = pytest_in(project, "--aiotbench", "--aiotbench-catalog=mine.toml", "--aiotbench-allow-empty", "-v",
                        "tests/test_unit.py::test_unit")
    assert allowed.returncode == 0 and "1 passed" in allowed.stdout


@pytest.mark.slow
def test_a_project_module_using_the_fixture_replaces_the_packaged_case(project):
    (project / "tests" / "test_models.py").write_text(dedent("""
        def test_my_model(aiotbench):
            result = aiotbench.run()
            aiotbench.check(result)
            assert result.entry["images"] == 3 and result.top1 is not None
    """))
    proc = pytest_in(project, "--aiotbench", "--aiotbench-catalog=mine.toml", f"--aiotbench-dataset={IMAGENET_500}",
                     "-v")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"tests/test_models.py::test_my_model[{CASE}] PASSED" in proc.stdout
    assert "aiotbench::test_aiotbench" not in proc.stdout and "2 passed" in proc.stdout
    # Without --aiotbench the fixture's tests are skipped, saying how to run them; the unit test runs.
    plain = pytest_in(project, "-rs")
    assert plain.returncode == 0 and "1 passed, 1 skipped" in plain.stdout
    assert "benchmark cases run with --aiotbench" in plain.stdout
