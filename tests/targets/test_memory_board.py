"""Memory on the emulated ARM board (QEMU user-mode over SSH): the runner's counters there would be the emulator's,
so the figures are not exposed (null, with the reason), never the emulator's resident size, and a memory limit on
them is NOT JUDGED."""

from __future__ import annotations

import json

import pytest

from tests.targets.test_arm_board import TFLITE_ID, bench, board, catalog  # noqa: F401 (module fixtures)
from tests.helpers.reports import run_cli

pytestmark = [pytest.mark.device, pytest.mark.slow, pytest.mark.real,
              pytest.mark.xdist_group("arm-board")]  # one board: these modules share a worker (Makefile)


def test_board_memory_is_not_exposed_and_not_judged(board, catalog, tmp_path):  # noqa: F811
    run = bench(tmp_path, *board.pytest_args(), "-k", "tflite", "--aiotbench-images=5", "--aiotbench-min-top1=0",
                catalog=catalog)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    memory = run.case(TFLITE_ID)["memory"]
    assert memory["prepare_mb"] is None and memory["peak_mb"] is None
    assert memory["reason"].startswith("not exposed: emulated (") and memory["isolation"] == "runner process"
    report = tmp_path / "board.json"
    report.write_text(json.dumps(run.report))
    verdict = run_cli("compare", report, report, "--fail-on", "memory:+10%")
    assert verdict.returncode == 3, verdict.stdout + verdict.stderr
    assert "NOT JUDGED" in verdict.stdout and "not exposed: emulated" in verdict.stdout
