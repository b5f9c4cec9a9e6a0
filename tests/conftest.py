"""Shared fixtures: the read-only shared folder (real models, real ImageNet images), catalogs written per test,
and a runner that drives the plugin the way users do: ``pytest --aiotbench ...`` in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.catalogs import Run
from tests.helpers.shared import IMAGENET_500, SHARED

# Tests never reach the internet: a zoo build in any subprocess must not download checkpoints (the download tests
# override it and point --weights-mirror at a loopback server).
os.environ.setdefault("AIOTBENCH_OFFLINE", "1")


def pytest_configure(config):
    """Without the shared folder most tests would skip and the suite would pass having tested little: that is a
    usage error unless asked for (AIOTBENCH_ALLOW_NO_SHARED=1, e.g. to run the pure-logic tests elsewhere)."""
    if not IMAGENET_500.is_dir() and os.environ.get("AIOTBENCH_ALLOW_NO_SHARED") != "1":
        raise pytest.UsageError(f"shared data not found at {SHARED}: set AIOTBENCH_SHARED to the shared folder "
                                "(or AIOTBENCH_ALLOW_NO_SHARED=1 to run with its tests skipped)")


@pytest.fixture(scope="session", autouse=True)
def _children_are_not_xdist_workers():
    """Nested ``pytest --aiotbench`` runs must not inherit this run's xdist worker variables: pytest-benchmark
    would take the child for an xdist worker and disable itself."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("PYTEST_XDIST")}
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def shared() -> Path:
    if not IMAGENET_500.is_dir():
        pytest.skip(f"shared data not found at {SHARED} (set AIOTBENCH_SHARED)")
    return SHARED


@pytest.fixture
def run_aiotbench(tmp_path):
    """Run ``pytest --aiotbench`` in a subprocess from an empty folder, with only the given catalog(s)."""

    def run(*args: str, catalogs=(), dataset: Path | None = None, cwd: Path | None = None, env=None,
            timeout: float = 600) -> Run:
        json_path = tmp_path / f"report-{len(list(tmp_path.glob('report-*.json')))}.json"
        cmd = [sys.executable, "-m", "pytest", "--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
               f"--aiotbench-json={json_path}", f"--aiotbench-cache={tmp_path / 'pixel-cache'}"]
        cmd += [f"--aiotbench-catalog={c}" for c in catalogs]
        if dataset is not None:
            cmd.append(f"--aiotbench-dataset={dataset}")
        cmd += list(args)
        proc = subprocess.run(cmd, cwd=cwd or tmp_path, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
        return Run(proc.returncode, proc.stdout, proc.stderr, json_path)

    return run


@pytest.fixture
def gated(pytester, monkeypatch):
    """A pytester project whose 'current run' is the report the test hands over (a list of cases or a whole
    report): the pytest gate's input, without measuring anything."""
    from pytest_aiotbench.plugin import gate
    from tests.helpers.reports import gate_plugin_args, make_report, write_json

    pytester.makepyfile(test_one="def test_ok():\n    pass\n")
    state = {}
    monkeypatch.setattr(gate, "current_report", lambda config: state.get("run"))

    def run(base_cases, new_cases, *args):
        write_json(pytester.path / "base.json", make_report(base_cases))
        state["run"] = make_report(new_cases) if isinstance(new_cases, list) else new_cases
        return pytester.runpytest(*gate_plugin_args(), *args)

    return run
