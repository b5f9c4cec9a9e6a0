"""Issue 18: the xdist worker test is one helper (``plugin.workers.is_worker``), used wherever the plugin tells a
worker from the controller."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "pytest_aiotbench"


def test_the_worker_test_is_written_once():
    code = [(str(path.relative_to(PACKAGE_DIR)), line.strip()) for path in sorted(PACKAGE_DIR.rglob("*.py"))
            for line in path.read_text(encoding="utf-8").splitlines() if 'hasattr(' in line and "workerinput" in line]
    assert code == [("plugin/workers.py", 'return hasattr(config, "workerinput")')]


@pytest.mark.slow
def test_is_worker_tells_the_xdist_workers_from_the_controller(pytester, monkeypatch):
    """A real xdist run (-n 2): each process writes what the helper says of it."""
    pytester.makeconftest('''
import json, os
from pytest_aiotbench.plugin.workers import is_worker

def pytest_configure(config):
    with open(os.environ["SEEN"], "a") as fh:
        fh.write(json.dumps(is_worker(config)) + "\\n")
''')
    pytester.makepyfile(test_one="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    seen = pytester.path / "seen.jsonl"
    monkeypatch.setenv("SEEN", str(seen))
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    assert result.ret == 0, result.outlines
    assert sorted(json.loads(line) for line in seen.read_text().splitlines()) == [False, True, True]
