"""ncnn, MNN and OpenVINO everywhere the others run (issue 20, item 4): on the emulated ARM board their aarch64 wheels
run the zoo's artifacts (built here from one shared TorchScript) and predict per image exactly what the x86 host
predicts, with the same entry fields; the board's Raspberry-Pi env (TFLite only) skips them naming the package.

The model is the shared MobileNetV1-0.25 (128 px): under qemu MobileNetV2 costs ~3 s an image in ncnn/MNN, this one
~0.2 s. 20 images keep the module near a minute of emulation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_aiotbench.targets.bundle import build_runner_bundle
from tests.helpers.board import RPI_PYTHON, Board, board_down, board_up, quoted, run_plugin
from tests.helpers.catalogs import Run, tflite_entry, write_catalog
from tests.helpers.shared import TFLITE_DIR
from tests.helpers.zoo import ENGINE_MODEL as NAME, ENGINE_PINS as PINS, build_engine_zoo

pytestmark = [pytest.mark.device, pytest.mark.slow, pytest.mark.real,
              pytest.mark.xdist_group("arm-board")]  # one board: these modules share a worker (Makefile)

IMAGES = 20
FRAMEWORKS = ("ncnn", "mnn", "openvino")
CASES = {fw: f"{NAME}-{fw}-fp32" for fw in FRAMEWORKS}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    return build_engine_zoo(tmp_path_factory, FRAMEWORKS)


@pytest.fixture(scope="module")
def board(zoo):
    yield board_up()
    board_down()  # by PID; the built board stays cached


def bench(folder: Path, catalog: Path, *args: str, images: int = IMAGES, timeout: float = 900) -> Run:
    return run_plugin(folder, catalog, "--aiotbench-warmup=1", "--aiotbench-min-top1=0", *args, images=images,
                      timeout=timeout)


@pytest.fixture(scope="module")
def host_run(tmp_path_factory, zoo) -> Run:
    run = bench(tmp_path_factory.mktemp("host"), zoo / "catalog.toml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run


def _top1(case: dict) -> list[int]:
    return [row[0] for row in case["per_image"]["top5"]]


def test_board_runs_ncnn_mnn_openvino_and_predicts_what_the_host_predicts(board: Board, zoo, host_run, tmp_path):
    run = bench(tmp_path, zoo / "catalog.toml", *board.pytest_args())
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = run.report
    assert report["device"]["machine"] == "aarch64" and report["device"]["emulated"].startswith("qemu-user")
    for fw, case_id in CASES.items():
        case, host = run.case(case_id), host_run.case(case_id)
        if fw == "openvino" and case["status"] == "skipped":  # a board whose glibc or CPU cannot run it says why
            assert "openvino" in case["reason"] and "\n" not in case["reason"], case["reason"]
            continue
        assert case["status"] == "passed", (case_id, case["reason"])
        assert case["images"] == IMAGES and _top1(case) == _top1(host), case_id  # exact, per image
        rt, host_rt = case["runtime"], host["runtime"]
        assert rt["timed_on"] == "device" and rt["emulated"] == report["device"]["emulated"]
        assert rt["target"] == board.spec
        # The same entry fields as on the host: runtime and version, precision actually used, threads, coverage.
        for key in ("runtime", "version", "precision", "threads", "requested_threads"):
            assert rt[key] == host_rt[key], (case_id, key, rt[key], host_rt[key])
        assert rt["coverage"]["complete"] and rt["coverage"]["total_ops"] == host_rt["coverage"]["total_ops"]
        assert isinstance(rt["os_threads"], int) and rt["os_threads"] >= 1
    # The board is Debian 12 (glibc 2.36): OpenVINO's 2026 aarch64 wheel is there and runs (in f32, on its CPU).
    ov = run.case(CASES["openvino"])
    assert ov["status"] == "passed", ov["reason"]
    assert ov["runtime"]["device"] == "CPU" and ov["runtime"]["precision"] == "f32"
    assert run.case(CASES["ncnn"])["runtime"]["precision"] == "fp32"
    assert report["score"]["vips"] is None  # emulated latencies are never scored


def test_raspberry_pi_env_without_these_runtimes_skips_each_naming_its_package(board: Board, zoo, tmp_path):
    """The board's /opt/rpi env has tflite-runtime only: each case is a skip naming the pip package for that
    device's Python, and the session goes on (its TFLite case runs; exit 0)."""
    tflite = write_catalog(tmp_path / "tflite.toml", [tflite_entry("pi", TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite",
                                                                   128)])
    run = bench(tmp_path / "run", zoo / "catalog.toml", f"--aiotbench-catalog={tflite}",
                *board.pytest_args(python=RPI_PYTHON), images=2)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    pi = run.case("pi-tflite-int8")  # the runtime the Pi has runs in the same session
    assert pi["status"] == "passed" and pi["runtime"]["runtime"] == "tflite-runtime", pi.get("reason")
    for fw, case_id in CASES.items():
        case = run.case(case_id)
        assert case["status"] == "skipped", (case_id, case["status"], case.get("reason"))
        reason = case["reason"]
        assert f"{fw} runtime is not installed on this device" in reason and PINS[fw] in reason, reason
        assert f"{RPI_PYTHON} -m pip install" in reason and board.spec in reason and "\n" not in reason
    assert "Traceback" not in run.stdout + run.stderr


def test_on_the_board_nothing_is_written_to_home_and_mnn_tools_is_never_imported(board: Board, zoo, tmp_path):
    """The runner bundle's own framework code, on the board with a fresh $HOME: OpenVINO's telemetry (~/intel) and
    MNN's converter CLI (pip install + telemetry on import) stay out, through prepare, inference and coverage."""
    work = board.root / "tmp" / "aiotbench-home-check"
    shutil.rmtree(work, ignore_errors=True)
    (work / "home").mkdir(parents=True)
    try:
        shutil.copy(build_runner_bundle(), work / "runner.pyz")
        folder = zoo / NAME
        for name in (f"{NAME}.xml", f"{NAME}.bin", f"{NAME}.mnn"):
            shutil.copy(folder / name, work / name)
        script = (
            "import json, sys\n"
            "import numpy as np\n"
            "from pytest_aiotbench.frameworks.base import PrepareOptions\n"
            "from pytest_aiotbench.frameworks.mnn import Mnn\n"
            "from pytest_aiotbench.frameworks.openvino import OpenVino\n"
            "out = {}\n"
            f"for fw, f in ((OpenVino(), '{NAME}.xml'), (Mnn(), '{NAME}.mnn')):\n"
            "    s = fw.prepare(f, PrepareOptions(threads=1))\n"
            "    y = s.infer(np.zeros((1, 3, 128, 128), np.float32))\n"
            "    out[fw.name] = [int(y.size), s.coverage()['complete']]\n"
            "    s.close()\n"
            "out['modules'] = sorted(m for m, v in sys.modules.items() if v is not None and\n"
            "                        m.startswith(('MNN.tools', 'openvino_telemetry', 'aliyun')))\n"
            "print('result', json.dumps(out), flush=True)\n")
        (work / "check.py").write_text(script)
        d = "/tmp/aiotbench-home-check"
        proc = board.ssh(f"cd {d} && HOME={d}/home PYTHONPATH={d}/runner.pyz python3 check.py", timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        # native code may print after us (MNN's banners): the result is the line we marked
        result = json.loads(next(line[7:] for line in proc.stdout.splitlines() if line.startswith("result ")))
        assert result["openvino"] == [1001, True] and result["mnn"] == [1001, True]
        assert result["modules"] == []
        assert list((work / "home").rglob("*")) == []
        assert not list((board.root / "usr" / "lib" / "python3" / "dist-packages").glob("aliyun*"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_board_script_pins_the_three_runtimes_and_keeps_the_pi_env_tflite_only(board: Board):
    text = (Path(__file__).resolve().parents[2] / "scripts" / "arm-board.sh").read_text()
    assert all(pin in text for pin in PINS.values())
    # Read from the installed metadata: a plain `import openvino` would write its telemetry under the board's ~/intel.
    versions = "from importlib.metadata import version as v; print(v('ncnn'), v('MNN'), v('openvino'))"
    proc = board.ssh(quoted("python3", "-c", versions) + "; " + quoted(RPI_PYTHON, "-c", "import ncnn") + " 2>&1 | tail -n 1")
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split() == ["1.0.20261020", "3.6.1", "2026.4.1"], lines
    assert "No module named 'ncnn'" in lines[-1], lines
