"""Remote jobs over the REAL adb server, against the fake adbd (tests/helpers/adbdevice): real protocol, real runner,
real model and images; the device's answers must equal the host's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_aiotbench.frameworks.base import FrameworkUnavailable
from pytest_aiotbench.targets import TargetError, resolve_target
from pytest_aiotbench.targets.device.protocol import job_spec
from pytest_aiotbench.targets.bundle import build_runner_bundle

from tests.helpers.adbdevice.fixtures import _adb_device_session, adb_device, adb_server, leftovers  # noqa: F401
from tests.helpers.adbdevice.jobs import RecordingTiming, host_topk, make_job, shared_model

pytestmark = pytest.mark.device



def adb_target(device, **options):
    return resolve_target(f"adb:{device.serial}", **options)


def test_describe_reads_device_facts(adb_device):
    facts = adb_target(adb_device).describe()
    assert facts["model"] == "AIoT Fake Phone"
    assert facts["abi"] == "x86_64"
    assert facts["os"] == "Android 14 (SDK 34)"
    assert facts["soc"] == "FakeSoC 1000"
    assert facts["cores"] >= 1
    assert facts["target"] == f"adb:{adb_device.serial}"


def test_job_runs_on_device_and_matches_host(adb_device):
    job = make_job(shared_model(), images=16)
    timing = RecordingTiming()
    m = adb_target(adb_device).run(job, timing)
    np.testing.assert_array_equal(m.topk, host_topk(job))  # same runtime, same pixels: same answers
    assert m.timed_on == "device"
    assert len(m.latencies_s) == 16 and all(x > 0 for x in m.latencies_s)
    assert timing.recorded == m.latencies_s  # device timings feed the harness's stats
    assert m.session["runtime"] == "ai-edge-litert" and m.session["device"] == f"adb:{adb_device.serial}"
    assert leftovers(adb_device) == []
    # One packed pixels file, one runner bundle: never a file per image.
    run = [c for c in adb_device.commands if "runner.pyz" in c]
    assert len(run) == 1 and "--pixels pixels.npy" in run[0]


def test_hostile_model_name_cannot_inject(adb_device, tmp_path, monkeypatch):
    hostile = tmp_path / "m;touch PWNED;$(touch PWNED2).tflite"
    shutil.copy(shared_model(), hostile)
    monkeypatch.chdir(tmp_path)
    job = make_job(hostile, images=4)
    m = adb_target(adb_device).run(job, RecordingTiming())
    assert m.topk.shape == (4, 5)
    assert any("PWNED" in c for c in adb_device.commands)  # the name did reach the device shell...
    for root in (adb_device.sandbox, tmp_path, Path.cwd()):  # ...and ran nothing
        assert not [p for p in root.rglob("PWNED*")], root
    assert leftovers(adb_device) == []


def test_unknown_serial_fails_with_one_line(adb_server):
    target = resolve_target("adb:no-such-device-42", io_timeout_s=5)  # builds, connects on first use
    with pytest.raises(TargetError) as err:
        target.describe()
    assert "adb:no-such-device-42" in str(err.value) and "\n" not in str(err.value)


def test_missing_python_on_device_is_one_clear_line(adb_device):
    target = adb_target(adb_device, python="python3-not-there")
    with pytest.raises(TargetError, match=r"check device: 'python3-not-there' not found on the device"):
        target.run(make_job(shared_model(), images=2), RecordingTiming())
    assert leftovers(adb_device) == []


def test_runner_bundle_needs_no_pytest(tmp_path):
    """The bundle runs with pytest made unimportable: it needs only numpy and the runtime."""
    blocker = tmp_path / "blocker"
    for name in ("pytest", "_pytest", "adbutils", "paramiko"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ImportError('{name} imported on the device')\n")
    job = make_job(shared_model(), images=3)
    np.save(tmp_path / "pixels.npy", job.pixels)
    (tmp_path / "job.json").write_text(json.dumps(job_spec(job, "abc123", "pytest_aiotbench.frameworks.tflite:TFLite")))
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    proc = subprocess.run([sys.executable, str(build_runner_bundle()), "--job", "job.json", "--model",
                           str(job.model_file), "--pixels", "pixels.npy", "--out", "result.json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["job_id"] == "abc123" and result["complete"] and len(result["latencies_s"]) == 3


def test_target_connects_on_first_use_and_closes(adb_device):
    from pytest_aiotbench.targets import close_all
    from pytest_aiotbench.targets.base import _open_targets

    target = adb_target(adb_device)
    assert target._transport is None and id(target) not in _open_targets  # building it touched nothing
    target.describe()
    assert id(target) in _open_targets
    close_all()
    assert target._transport is None and id(target) not in _open_targets
    assert target.describe()["model"] == "AIoT Fake Phone"  # a later use connects again
    target.close()


REAL_OUTPUT = """INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Num threads: [1]
INFO: Graph: [/data/local/tmp/mobilenet_v1_0.25_128_quant.tflite]
INFO: Loaded model /data/local/tmp/mobilenet_v1_0.25_128_quant.tflite
INFO: Initialized TensorFlow Lite runtime.
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
INFO: The input model file size (MB): 0.525598
INFO: Initialized session in 3.18ms.
INFO: Running benchmark for at least 1 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=1 first=1960 curr=1960 min=1960 max=1960 avg=1960 std=0
INFO: Running benchmark for at least 1 iterations and at least 0 seconds but terminate if exceeding 60 seconds.
INFO: count=1 first=1235 curr=1235 min=1235 max=1235 avg=1235 std=0
INFO: Inference timings in us: Init: 3180, First inference: 1960, Warmup (avg): 1960, Inference (avg): 1235
"""


def test_parse_benchmark_model_output():
    from pytest_aiotbench.targets.benchmark_model import parse_benchmark_output

    assert parse_benchmark_output(REAL_OUTPUT * 2) == [(0.00318, 0.00196, 0.001235)] * 2
    assert parse_benchmark_output("Segmentation fault") == []


def test_benchmark_model_runner_on_a_device_without_python(adb_device, tmp_path):
    """Stock Android: no python3 on the device; latency from benchmark_model there, accuracy from the host."""
    adb_device.python = None
    adb_device._setup_sandbox()
    try:
        stand_in = tmp_path / "benchmark_model"
        src = Path(__file__).parents[1] / "helpers" / "adbdevice" / "fake_benchmark_model.py"
        stand_in.write_text(f"#!{sys.executable}\n" + src.read_text())
        job = make_job(shared_model(), images=5)
        timing = RecordingTiming()
        target = adb_target(adb_device, benchmark_model=str(stand_in))
        m = target.run(job, timing)
        np.testing.assert_array_equal(m.topk, host_topk(job))
        assert m.session["accuracy_from"] == "host" and m.session["runner"] == "benchmark_model"
        assert len(m.latencies_s) == 5 and timing.recorded == m.latencies_s and m.timed_on == "device"
        assert m.prepare_s > 0 and m.first_s > 0
        assert leftovers(adb_device) == []
        # No Python runner here: the runtime is missing on the device, a skip as on the host (strict: a failure).
        with pytest.raises(FrameworkUnavailable, match="missing on adb:.*numpy"):
            adb_target(adb_device).run(job, RecordingTiming())
    finally:
        adb_device.python = sys.executable
        adb_device._setup_sandbox()


def _bench(pytester, device_spec, report):
    from tests.helpers.adbdevice.jobs import REPO, shared_dir

    return pytester.runpytest_subprocess(
        "--aiotbench", f"--aiotbench-catalog={REPO / 'models' / 'shared.toml'}",
        f"--aiotbench-dataset={shared_dir() / 'data' / 'imagenet-val-500'}", "--aiotbench-images=20",
        "--aiotbench-min-top1=0", "--aiotbench-warmup=2", "--aiotbench-cache=none", "-p", "no:cacheprovider",
        "-k", "tflite and 0.25_128", f"--device={device_spec}", f"--aiotbench-json={report}", timeout=240)


@pytest.mark.slow
def test_plugin_end_to_end_on_the_device_matches_host(pytester, adb_device, tmp_path):
    """``pytest --aiotbench --device=adb:SERIAL``: the whole plugin, the device's top-1 equal to the host's."""
    shared_model()
    device = _bench(pytester, f"adb:{adb_device.serial}", tmp_path / "device.json")
    device.assert_outcomes(passed=1)
    host = _bench(pytester, "host", tmp_path / "host.json")
    host.assert_outcomes(passed=1)
    on_device, on_host = (json.loads((tmp_path / f).read_text()) for f in ("device.json", "host.json"))
    assert on_device["device"]["model"] == "AIoT Fake Phone" and on_device["device"]["abi"] == "x86_64"
    (d_case,), (h_case,) = on_device["cases"], on_host["cases"]
    assert (d_case["top1"], d_case["top5"]) == (h_case["top1"], h_case["top5"])
    assert leftovers(adb_device) == []


def test_device_jobs_predict_real_classes():
    """The jobs the device tests compare are real predictions, not saturated inputs: the shared MobileNetV1-0.25
    gets most of the first 16 images right on the host, as the independent evaluation does."""
    from tests.helpers.adbdevice.jobs import shared_images

    job = make_job(shared_model(), images=16)
    labels = np.array([label for _, label in shared_images(16)])
    top5_hits = (host_topk(job) == labels[:, None]).any(axis=1).mean()
    assert top5_hits >= 0.5, f"top-5 {top5_hits:.2f} on 16 shared images: the job's preprocessing is wrong"
