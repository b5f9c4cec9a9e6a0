"""Issue 18: the report checkpoint is written once per case. The fixture records a measured entry without
checkpointing (a relative threshold may read it), the report hook records it with its outcome and checkpoints:
one write per case, passed or failed, and each write holds one case more than the last."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers.catalogs import write_catalog

pytestmark = pytest.mark.real

COUNTING_PLUGIN = '''
import json
from pytest_aiotbench.plugin import state

writes = []
_original = state.write_atomic


def counting(path, write, **kw):  # the checkpoint's writer (finalize writes through write_json_atomic)
    _original(path, write, **kw)
    with open(path) as fh:
        writes.append([[c["id"], c["status"]] for c in json.load(fh)["cases"]])


state.write_atomic = counting


def pytest_unconfigure(config):
    with open(config.rootpath / "writes.json", "w") as fh:
        json.dump(writes, fh)
'''


@pytest.mark.slow
def test_each_case_is_checkpointed_once_whatever_its_outcome(tmp_path, shared):
    from tests.helpers.copies import labeled_dataset
    from tests.inputs.test_faults_catalog import small_tflite

    (tmp_path / "counting.py").write_text(COUNTING_PLUGIN)
    data = labeled_dataset(tmp_path / "data", n=4)
    # b is measured, then fails its accuracy threshold: recorded twice (fixture, report hook), written once
    catalog = write_catalog(tmp_path / "cat.toml", [small_tflite(name="a", min_top1=0.0),
                                                    small_tflite(name="b", min_top1=1.0),
                                                    small_tflite(name="c", min_top1=0.0)])
    cmd = [sys.executable, "-m", "pytest", "--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
           "-p", "counting", f"--aiotbench-catalog={catalog}", f"--aiotbench-dataset={data}",
           f"--aiotbench-json={tmp_path / 'run.json'}", f"--aiotbench-cache={tmp_path / 'cache'}",
           "--aiotbench-warmup=1", "--rootdir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])})
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, (proc.stdout + proc.stderr)[-3000:]
    writes = json.loads((tmp_path / "writes.json").read_text())
    a, b, c = (["a-tflite-int8", "passed"], ["b-tflite-int8", "failed"], ["c-tflite-int8", "passed"])
    assert writes == [[a], [a, b], [a, b, c]]
