"""A CI owner's mistakes at the front door (the stranger test): combinations of the newer options that cannot
work are one-line usage errors (exit 4), from the command line and from ini keys alike, never silently ignored."""

from __future__ import annotations

import pytest

from tests.helpers.catalogs import tflite_entry, write_catalog
from tests.helpers.realrun import one_usage_error


@pytest.fixture
def catalog(tmp_path):
    return write_catalog(tmp_path / "cat.toml", [tflite_entry("m", tmp_path / "missing.tflite", 128)])


@pytest.mark.parametrize("args", [
    ["--aiotbench-scenario=offline", "--aiotbench-sustain=2s"],
    ["--aiotbench-sustain", "1m", "--aiotbench-scenario", "offline"],
])
def test_sustained_offline_is_a_usage_error(run_aiotbench, catalog, args):
    # offline issues every image once, as fast as it can: a sustained duration would be recorded in the settings
    # and never applied
    run = run_aiotbench(*args, catalogs=[catalog])
    one_usage_error(run, "--aiotbench-sustain", "offline")
    assert not run.json_path.exists()


def test_sustained_offline_from_ini_keys_is_a_usage_error(run_aiotbench, catalog, tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\naiotbench_scenario = offline\naiotbench_sustain = 30s\n")
    one_usage_error(run_aiotbench(catalogs=[catalog]), "--aiotbench-sustain", "offline")


@pytest.mark.parametrize("args", [
    ["--aiotbench-scenario=offline"],
    ["--aiotbench-scenario", "offline", "--aiotbench-images=5"],
])
def test_a_catalog_baseline_under_the_offline_scenario_is_a_usage_error(run_aiotbench, tmp_path, args):
    # the catalog's own `baseline` key, not only --aiotbench-baseline: the A/B timed the case single-stream while
    # the settings and the table said offline (images/s "-")
    entry = tflite_entry("m", tmp_path / "new.tflite", 128, baseline=str(tmp_path / "old.tflite"))
    run = run_aiotbench(*args, catalogs=[write_catalog(tmp_path / "ab.toml", [entry])])
    one_usage_error(run, "catalog `baseline`", "single-stream only", "--aiotbench-scenario offline")
    assert not run.json_path.exists()


def test_a_catalog_baseline_under_an_ini_offline_scenario_is_a_usage_error(run_aiotbench, tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\naiotbench_scenario = offline\n")
    entry = tflite_entry("m", tmp_path / "new.tflite", 128, baseline=str(tmp_path / "old.tflite"))
    one_usage_error(run_aiotbench(catalogs=[write_catalog(tmp_path / "ab.toml", [entry])]), "single-stream only")


@pytest.mark.parametrize("how", ["flag", "ini"])
def test_an_accuracy_threshold_without_a_dataset_is_a_usage_error(run_aiotbench, catalog, tmp_path, how):
    # synthetic images measure no accuracy: every case "passed" a --aiotbench-min-top1 0.9 nobody checked
    if how == "ini":
        (tmp_path / "pytest.ini").write_text("[pytest]\naiotbench_min_top1 = 0.9\n")
    run = run_aiotbench(*(["--aiotbench-min-top1=0.9"] if how == "flag" else []), catalogs=[catalog])
    one_usage_error(run, "--aiotbench-min-top1 0.9", "no dataset", "--aiotbench-dataset")
    assert not run.json_path.exists()


def test_a_zero_threshold_without_a_dataset_still_runs(run_aiotbench, catalog):
    # 0 holds any top-1 (device tests use it to lift the catalog's thresholds): nothing unchecked is claimed
    run = run_aiotbench("--aiotbench-min-top1=0", "--co", catalogs=[catalog])
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]


@pytest.mark.parametrize("args", [[], ["--aiotbench-fail-on=images_per_s:-5%"]])
def test_require_all_without_a_base_is_a_usage_error(run_aiotbench, catalog, tmp_path, args):
    # like --aiotbench-allow-not-judged: a gate flag that gates nothing without --aiotbench-compare (with an A/B
    # baseline too: the case set it requires is a saved base's)
    if args:
        (tmp_path / "base.tflite").write_bytes(b"")
        entry = tflite_entry("m", tmp_path / "missing.tflite", 128, baseline=str(tmp_path / "base.tflite"))
        catalog = write_catalog(tmp_path / "ab.toml", [entry])
    run = run_aiotbench("--aiotbench-require-all", *args, catalogs=[catalog])
    one_usage_error(run, "--aiotbench-require-all", "--aiotbench-compare")
    assert not run.json_path.exists()


def test_require_all_as_a_project_wide_ini_key_is_accepted_without_a_base(run_aiotbench, catalog, tmp_path):
    # an ini key may be set for every run, only some of which compare (as for the other gate flags)
    (tmp_path / "pytest.ini").write_text("[pytest]\naiotbench_require_all = true\n")
    run = run_aiotbench("--co", catalogs=[catalog])
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]


@pytest.mark.parametrize("how", ["compare", "ab"])
def test_a_memory_limit_with_memory_off_on_the_host_is_a_usage_error(run_aiotbench, catalog, tmp_path, how):
    # every case's memory limit came out NOT JUDGED (exit 1) after the whole run: say it before measuring
    if how == "compare":
        base = tmp_path / "base.json"
        base.write_text('{"schema": "aiotbench/1", "cases": []}')
        args = [f"--aiotbench-compare={base}"]
    else:
        (tmp_path / "base.tflite").write_bytes(b"")
        entry = tflite_entry("m", tmp_path / "missing.tflite", 128, baseline=str(tmp_path / "base.tflite"))
        catalog, args = write_catalog(tmp_path / "ab.toml", [entry]), []
    run = run_aiotbench("--aiotbench-memory=off", "--aiotbench-fail-on=images_per_s:-5%,memory:+10%", *args,
                        catalogs=[catalog])
    one_usage_error(run, "--aiotbench-fail-on memory:+10%", "--aiotbench-memory off")
    assert not run.json_path.exists()


def test_a_command_line_scenario_overrides_the_projects_offline_knobs(run_aiotbench, catalog, tmp_path):
    # a project running offline by default (ini) and a developer asking for single-stream: refused before, naming
    # --aiotbench-offline-sessions, a flag they never gave
    (tmp_path / "pytest.ini").write_text("[pytest]\naiotbench_scenario = offline\naiotbench_offline_sessions = 2\n")
    run = run_aiotbench("--aiotbench-scenario=single-stream", "--co", catalogs=[catalog])
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]


@pytest.mark.parametrize("ini, args, needle", [
    ("aiotbench_offline_sessions = 2\n", [], "aiotbench_offline_sessions (ini) applies"),
    ("aiotbench_scenario = offline\n", ["--aiotbench-scenario=single-stream", "--aiotbench-offline-batch=2"],
     "--aiotbench-offline-batch applies"),
])
def test_an_offline_knob_without_the_offline_scenario_names_where_it_was_set(run_aiotbench, catalog, tmp_path,
                                                                             ini, args, needle):
    (tmp_path / "pytest.ini").write_text("[pytest]\n" + ini)
    one_usage_error(run_aiotbench(*args, catalogs=[catalog]), needle, "--aiotbench-scenario offline only")


@pytest.mark.parametrize("limit, args, why", [
    ("p90:+10%", ["--aiotbench-scenario=offline"], "the offline scenario times no single image"),
    ("latency:+5%", ["--aiotbench-scenario=offline"], "the offline scenario times no single image"),
    ("top1:-0.5pt", [], "synthetic images measure no accuracy"),
    ("vips:-5%", [], "synthetic images measure no accuracy"),
    ("vops:-5%", ["--aiotbench-dataset=DATA"], "no case of this run has `gflops`"),
])
def test_a_limit_no_case_of_the_run_can_have_is_a_usage_error(run_aiotbench, catalog, tmp_path, limit, args, why):
    # each came out NOT JUDGED for every case (exit 1) after the whole run
    from tests.helpers.shared import IMAGENET_500

    base = tmp_path / "base.json"
    base.write_text('{"schema": "aiotbench/1", "cases": []}')
    args = [a.replace("DATA", str(IMAGENET_500)) for a in args]
    run = run_aiotbench(f"--aiotbench-fail-on={limit}", f"--aiotbench-compare={base}", *args, catalogs=[catalog])
    one_usage_error(run, "--aiotbench-fail-on", why, "could never be judged")
    assert not run.json_path.exists()


def test_a_limit_some_case_can_have_is_accepted(run_aiotbench, tmp_path):
    from tests.helpers.shared import IMAGENET_500

    catalog = write_catalog(tmp_path / "cat.toml", [tflite_entry("m", tmp_path / "missing.tflite", 128, gflops=0.04),
                                                    tflite_entry("n", tmp_path / "missing.tflite", 128)])
    from tests.helpers.reports import make_case, make_report, write_json

    base = write_json(tmp_path / "base.json", make_report([make_case("m-tflite-int8")]))
    run = run_aiotbench("--aiotbench-fail-on=vops:-5%,p90:+10%,images_per_s:-5%", f"--aiotbench-compare={base}",
                        f"--aiotbench-dataset={IMAGENET_500}", "--co", catalogs=[catalog])
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
