"""Issue 22 #4 and issue 18: a report write that fails (a full disk mid-run) is one line, never an INTERNALERROR;
the report keeps what its last good write held, later cases still run, the run ends non-zero. And each case is
checkpointed once.

The full disk is a real one: a 256 KiB tmpfs holding the report, filled by a tiny plugin just before the second
case starts (mounting needs root: the test is skipped, saying so, where mount fails)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.catalogs import write_catalog
from tests.helpers.copies import labeled_dataset
from tests.inputs.test_faults_catalog import small_tflite

pytestmark = pytest.mark.real

FILL_PLUGIN = '''
import os, pytest

def pytest_runtest_setup(item):
    if "aiotbench" in item.fixturenames and item.name.startswith("test_aiotbench[b-"):
        # The disk fills up while the run goes on: write until the filesystem says ENOSPC.
        fd = os.open(os.path.join(os.environ["FILL_DIR"], "filler"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while True:
                os.write(fd, b"x" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)
'''


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {proc.stderr.strip() or proc.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _run(tmp_path: Path, json_path: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    data = labeled_dataset(tmp_path / "data")
    catalog = write_catalog(tmp_path / "cat.toml", [small_tflite(name=n) for n in ("a", "b", "c")])
    cmd = [sys.executable, "-m", "pytest", "--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
           f"--aiotbench-catalog={catalog}", f"--aiotbench-dataset={data}", f"--aiotbench-json={json_path}",
           f"--aiotbench-cache={tmp_path / 'pixel-cache'}", "--aiotbench-warmup=1", "-p", "fill", *args]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
                               "COLUMNS": "200", **(env or {})})


@pytest.mark.slow
def test_a_full_disk_mid_run_is_one_line_keeps_the_last_good_report_and_runs_the_rest(tmp_path, small_disk, shared):
    (tmp_path / "fill.py").write_text(FILL_PLUGIN)
    report = small_disk / "run.json"
    proc = _run(tmp_path, report, env={"FILL_DIR": str(small_disk)})
    out = proc.stdout + proc.stderr
    assert "INTERNALERROR" not in out and "Traceback" not in out, out[-4000:]
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, out[-4000:]
    assert "3 passed" in out, out[-6000:]  # the cases after the disk filled up still ran
    lines = [line for line in out.splitlines() if "cannot write the report" in line]
    assert lines == [f"aiotbench: cannot write the report {report} (No space left on device); it keeps the 1 "
                     "case(s) of its last good write"], out[-4000:]
    kept = json.loads(report.read_text())  # the last good write: whole, with the case measured before
    assert [(c["id"], c["status"]) for c in kept["cases"]] == [("a-tflite-int8", "passed")]
    assert kept["cases"][0]["latency_ms"] is not None
    assert "JSON report written" not in out
    assert sorted(p.name for p in small_disk.iterdir()) == [".run.json.lock", "filler", "run.json"] or \
        sorted(p.name for p in small_disk.iterdir()) == ["filler", "run.json"]  # no temporary file left


@pytest.mark.slow
def test_each_case_is_checkpointed_once(tmp_path, shared, monkeypatch):
    """Counted in the child run: a plugin wraps the checkpoint's writer and prints how often it wrote."""
    (tmp_path / "fill.py").write_text('''
import pytest
from pytest_aiotbench.plugin import state as session

writes = []
_original = session.write_atomic

def counting(path, write, **kw):
    writes.append(path)
    _original(path, write, **kw)

session.write_atomic = counting  # the checkpoint's writer (finalize writes through write_json_atomic)

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"checkpoint writes: {len(writes)}")
''')
    proc = _run(tmp_path, tmp_path / "run.json")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "checkpoint writes: 3" in proc.stdout  # three cases, one checkpoint each
