"""A real ARM64 userland in the test run: Debian arm64 with PyPI's aarch64 runtimes under QEMU user-mode emulation,
reached over SSH like a board (scripts/arm-board.sh, cached in ~/.cache/aiotbench-board). The shared MobileNets
run on it over SSH and must predict exactly what the x86 host predicts; the board says it is emulated and its
latencies never enter a score; a board that goes away mid-run fails that case in one line; and the plugin itself
runs on the ARM host.

The 50-image reference is one host run (x86, the same plugin) shared by the tests of this module."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.board import (RPI_PYTHON, Board, board_down, board_up, build_project_wheel, install_plugin,
                                 quoted, run_plugin)
from tests.helpers.catalogs import Run, float_entry, tflite_entry, write_catalog
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR, TORCH_DIR

pytestmark = [pytest.mark.device, pytest.mark.slow, pytest.mark.real,
              pytest.mark.xdist_group("arm-board")]  # one board: these modules share a worker (Makefile)

IMAGES = 50
MODEL = "mobilenet_v1_0.25_128"  # the smallest shared MobileNet: ~0.1 s per image under emulation
TFLITE_ID, ONNX_ID, TORCH_ID = f"{MODEL}-tflite-int8", f"{MODEL}-onnxruntime-fp32", f"{MODEL}-pytorch-mobile-fp32"
BUILTIN_ID = f"{MODEL}_builtin-tflite-int8"  # the same int8 model with XNNPACK off (TFLite's builtin kernels)


def _entries(root_of_models: Path | None = None) -> dict[str, dict]:
    tflite_dir, torch_dir = (root_of_models, root_of_models) if root_of_models else (TFLITE_DIR, TORCH_DIR)
    tflite = tflite_dir / f"{MODEL}_quant.tflite"
    # Thresholds as the shared catalog's, lowered to what 50 images give (46 %), so a wrong answer still fails.
    return {
        TFLITE_ID: tflite_entry(MODEL, tflite, 128, min_top1=0.40),
        ONNX_ID: float_entry(MODEL, "onnxruntime", torch_dir / f"{MODEL}.onnx", 128, min_top1=0.40),
        TORCH_ID: float_entry(MODEL, "pytorch-mobile", torch_dir / f"{MODEL}.pt", 128, min_top1=0.40),
        BUILTIN_ID: tflite_entry(f"{MODEL}_builtin", tflite, 128, min_top1=0.40, options={"delegate": "none"}),
    }


def bench(folder: Path, *args: str, catalog: Path, timeout: float = 600) -> Run:
    return run_plugin(folder, catalog, "--aiotbench-warmup=2", *args, images=IMAGES, timeout=timeout)


@pytest.fixture(scope="module")
def board():
    if not IMAGENET_500.is_dir() or not (TFLITE_DIR / f"{MODEL}_quant.tflite").is_file():
        pytest.skip(f"shared data not found at {IMAGENET_500.parent.parent} (set AIOTBENCH_SHARED)")
    yield board_up()
    board_down()  # by PID; the built board stays cached for the next run


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    return write_catalog(tmp_path_factory.mktemp("catalog") / "arm.toml", list(_entries().values()))


@pytest.fixture(scope="module")
def host_run(tmp_path_factory, catalog, board) -> Run:
    """The x86 reference: every case in this process's plugin, on the host."""
    run = bench(tmp_path_factory.mktemp("host"), "-k", "not pytorch", catalog=catalog)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run


def _top5(run: Run, case_id: str) -> list[list[int]]:
    case = run.case(case_id)
    assert case["status"] == "passed", case["reason"]
    return case["per_image"]["top5"]


def test_board_predicts_what_the_host_predicts(board: Board, catalog, host_run, tmp_path):
    run = bench(tmp_path, *board.pytest_args(), "-k", "not builtin", catalog=catalog)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = run.report
    # The board is an aarch64 Linux that says it is emulated.
    assert report["device"]["machine"] == "aarch64" and report["device"]["abi"] == "aarch64"
    assert report["device"]["emulated"].startswith("qemu-user")
    # Real ARM builds of the runtimes: LiteRT int8 per image identical (top-5 rows, so top-1 too), ONNX top-5 too.
    for case_id in (TFLITE_ID, ONNX_ID):
        assert _top5(run, case_id) == _top5(host_run, case_id), case_id
        case, host = run.case(case_id), host_run.case(case_id)
        assert case["top1"] == host["top1"] and case["top5"] == host["top5"]
        assert case["images"] == IMAGES and case["runtime"]["timed_on"] == "device"
        assert case["runtime"]["emulated"] == report["device"]["emulated"]
    assert run.case(TFLITE_ID)["runtime"]["runtime"] == "ai-edge-litert"
    # No CPU torch wheel for aarch64: pytorch-mobile is skipped with that reason, not failed.
    torch_case = run.case(TORCH_ID)
    assert torch_case["status"] == "skipped" and "aarch64" in torch_case["reason"]
    # Emulated latencies are reported and flagged, never scored.
    assert run.case(TFLITE_ID)["latency_ms"]["mean"] > 0
    assert report["score"]["vips"] is None and report["score"]["cases"] == 0
    assert any("emulated" in reason for reason in report["score"]["partial_reasons"])
    assert "* emulated" in run.stdout


def test_raspberry_pi_stack_runs_through_the_tflite_runtime_fallback(board: Board, catalog, host_run, tmp_path):
    """tflite-runtime 2.14 + numpy 1.26, as a Pi has them. Its XNNPACK takes float ops only, so an int8 model
    runs on TFLite's builtin kernels: exactly the host's LiteRT run with the delegate off."""
    run = bench(tmp_path, *board.pytest_args(python=RPI_PYTHON), "-k", "tflite", catalog=catalog)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    for case_id in (TFLITE_ID, BUILTIN_ID):
        runtime = run.case(case_id)["runtime"]
        assert runtime["runtime"] == "tflite-runtime" and runtime["version"] == "2.14.0"
        assert _top5(run, case_id) == _top5(host_run, BUILTIN_ID), case_id
    assert run.case(TFLITE_ID)["runtime"]["delegate"].startswith("xnnpack (float ops only")
    assert run.case(BUILTIN_ID)["runtime"]["delegate"] == "none"


def test_board_going_away_mid_run_fails_that_case_cleanly(board: Board, catalog, tmp_path):
    runs_on_board = sorted((board.root / "tmp").glob("aiotbench-*"))
    folder = tmp_path / "run"
    folder.mkdir()
    cmd = [sys.executable, "-m", "pytest", "--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
           "-p", "no:randomly", f"--aiotbench-catalog={catalog}", f"--aiotbench-dataset={IMAGENET_500}",
           f"--aiotbench-images={IMAGES}", f"--aiotbench-json={folder / 'report.json'}", "--aiotbench-cache=none",
           "--aiotbench-device-io-timeout=10", *board.pytest_args(), "-k", "onnx"]
    proc = subprocess.Popen(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Mid-run: the runner has started on the board (its pid file is in the job's work dir there).
        deadline = time.monotonic() + 180
        while not any(d.joinpath("runner.pid").exists() for d in (board.root / "tmp").glob("aiotbench-*")
                      if d not in runs_on_board):
            assert proc.poll() is None and time.monotonic() < deadline, "the runner never started on the board"
            time.sleep(0.2)
        board_down()  # the board's sshd and every session under it, killed by PID
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
        for stale in set((board.root / "tmp").glob("aiotbench-*")) - set(runs_on_board):
            shutil.rmtree(stale)  # the job's work dir the vanished board kept (a reboot would clear /tmp)
        assert board_up().spec == board.spec  # the other tests of this module keep their board
    assert proc.returncode == 1, out[-3000:] + err[-2000:]
    case = Run(proc.returncode, out, err, folder / "report.json").case(ONNX_ID)
    assert case["status"] == "failed" and case["latency_ms"] is None
    reason = case["reason"]
    assert reason.startswith(f"{board.spec}: run: connection lost"), reason
    assert "\n" not in reason and "Traceback" not in out + err, out[-3000:] + err[-2000:]


def test_plugin_itself_on_the_arm_host(board: Board, host_run, tmp_path):
    """The project's wheel, pytest and pytest-benchmark installed on the board, `python3 -m pytest --aiotbench`
    run there (the host target is then the emulated aarch64 Python) on 10 images: same top-5 as on x86."""
    python = install_plugin(board, build_project_wheel(tmp_path / "dist"))
    # What a user copies to a board: the models, 10 images with their labels, a catalog naming them.
    work = board.root / "root" / "aiotbench-arm-host"
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    try:
        with open(IMAGENET_500 / "labels.csv", newline="") as fh:
            rows = list(csv.reader(fh))
        header, first10 = rows[0], rows[1:11]
        for row in first10:
            (work / "data" / row[0]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(IMAGENET_500 / row[0], work / "data" / row[0])
        with open(work / "data" / "labels.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([header, *first10])
        for model in (TFLITE_DIR / f"{MODEL}_quant.tflite", TORCH_DIR / f"{MODEL}.onnx"):
            shutil.copy(model, work / model.name)
        board_dir = Path("/root/aiotbench-arm-host")
        entries = _entries(board_dir)
        write_catalog(work / "arm.toml", [entries[TFLITE_ID], entries[ONNX_ID]])
        command = ("cd /root/aiotbench-arm-host && " + quoted(
            python, "-m", "pytest", "--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
            "--aiotbench-catalog=arm.toml", "--aiotbench-dataset=data", "--aiotbench-json=report.json",
            "--aiotbench-cache=none", "--aiotbench-warmup=2", "--aiotbench-min-top1=0"))
        proc = board.ssh(command, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        run = Run(proc.returncode, proc.stdout, proc.stderr, work / "report.json")
        report = run.report
        assert report["machine"]["machine"] == "aarch64" and report["machine"]["emulated"]
        assert report["device"]["target"] == "host" and report["dataset"]["images"] == 10
        assert report["packages"]["pytest-aiotbench"] and report["packages"]["pytest-benchmark"]
        for case_id in (TFLITE_ID, ONNX_ID):
            assert _top5(run, case_id) == _top5(host_run, case_id)[:10], case_id
            assert run.case(case_id)["runtime"]["timed_on"] == "host"
            assert run.case(case_id)["runtime"]["emulated"]
            # no memory probe under the emulator: it would measure the emulator (run/memory.py)
            assert run.case(case_id)["memory"]["reason"].startswith("not exposed: emulated (")
        assert report["score"]["vips"] is None  # measured under emulation: never a device score
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_nothing_leaks_to_the_host(board: Board):
    """A session is inside the board (aarch64 shell and python3); its mounts and binfmt entry live in the
    session's private namespaces only."""
    proc = board.ssh('uname -m; python3 -c "import platform; print(platform.machine())"; cat /proc/cpuinfo')
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["aarch64", "aarch64"] and "CPU implementer\t: 0x41" in proc.stdout
    assert str(board.root) not in Path("/proc/self/mountinfo").read_text()
    assert not Path("/proc/sys/fs/binfmt_misc/aarch64").exists()
    assert "CPU implementer" not in Path("/proc/cpuinfo").read_text() or os.uname().machine == "aarch64"
