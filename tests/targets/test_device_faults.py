"""Faults on a device over the REAL adb server: each fails its case with one clear line, takes no partial file for
a result, leaves nothing on the device, and the next job on the same device goes on."""

from __future__ import annotations

import re
import time

import pytest

from pytest_aiotbench.targets import TargetError, resolve_target

from tests.helpers.adbdevice.fixtures import _adb_device_session, adb_device, adb_server, leftovers  # noqa: F401
from tests.helpers.adbdevice.jobs import RecordingTiming, make_job, shared_model

pytestmark = pytest.mark.device

IMAGES = 6


@pytest.fixture(scope="module")
def job():
    return make_job(shared_model(), images=IMAGES)


def fails_cleanly(device, job, pattern, **options):
    """Run one job expecting ``pattern``; then prove the device is clean and still usable."""
    target = resolve_target(f"adb:{device.serial}", **options)
    timing = RecordingTiming()
    start = time.monotonic()
    with pytest.raises(TargetError) as err:
        target.run(job, timing)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"adb:{device.serial}: "), message
    assert re.search(pattern, message), message
    assert timing.recorded is None  # nothing was taken for a result
    device.faults.__init__()
    device.set_disk_free(None)
    device.unfreeze()
    # The same target goes on: a job after the fault works and sweeps anything the failed one had to leave.
    m = target.run(job, RecordingTiming())
    assert m.topk.shape == (IMAGES, 5)
    assert leftovers(device) == []
    return message, time.monotonic() - start


def test_unplugged_mid_push(adb_device, job):
    from pytest_aiotbench.targets.bundle import build_runner_bundle

    # inside the model (runner bundle first, then the model: 525 KB); the bundle grows with the code it carries
    adb_device.faults.push_disconnect_after = build_runner_bundle().stat().st_size + 100_000
    fails_cleanly(adb_device, job, r"push mobilenet_v1_0\.25_128_quant\.tflite: ")


@pytest.mark.slow
def test_unplugged_mid_run(adb_device, job):
    adb_device.faults.run_disconnect = "runner.pyz"
    fails_cleanly(adb_device, job, r": run: ")


@pytest.mark.slow
def test_unplugged_mid_pull(adb_device, job):
    adb_device.faults.pull_disconnect_after = 100
    fails_cleanly(adb_device, job, r": pull result: ")


@pytest.mark.slow
def test_frozen_transport_during_push(adb_device, job):
    adb_device.faults.freeze_on = "push"
    message, elapsed = fails_cleanly(adb_device, job, r"push .*no answer for 2s", io_timeout_s=2)
    assert elapsed < 30


@pytest.mark.slow
def test_frozen_device_during_run_hits_the_deadline(adb_device, job):
    adb_device.faults.freeze_on = "shell:runner.pyz"
    message, elapsed = fails_cleanly(adb_device, job, r": run: job deadline of 6s exceeded", deadline_s=6, io_timeout_s=3)
    assert elapsed < 40


def test_disk_full_reported_by_df(adb_device, job):
    adb_device.set_disk_free(200_000)
    fails_cleanly(adb_device, job, r"check device: only 0\.2 MB free in /data/local/tmp")


def test_disk_fills_during_push(adb_device, job):
    adb_device.faults.disk_free_bytes = 100_000  # df still says plenty: the write itself fails
    fails_cleanly(adb_device, job, r"push .*No space left on device")


def test_runner_crash_on_a_corrupt_model(adb_device, tmp_path):
    bad = tmp_path / "corrupt.tflite"
    bad.write_bytes(b"TFL3" + b"\x00garbage" * 100)
    bad_job = make_job(bad, images=2)
    target = resolve_target(f"adb:{adb_device.serial}")
    with pytest.raises(TargetError, match=r"run: exit 3 \(model failed\): aiotbench-runner: TFLite cannot load"):
        target.run(bad_job, RecordingTiming())
    assert leftovers(adb_device) == []


def test_garbage_result_is_refused(adb_device, job):
    adb_device.faults.corrupt_pull = "result.json"
    fails_cleanly(adb_device, job, r"pull result: result file is not valid JSON")
