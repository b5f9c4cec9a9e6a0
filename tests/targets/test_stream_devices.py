"""Devices get the crops in files pushed one at a time, each when the runner asks for it between two chunks
(issue 19): through the real adb server + fake adbd and a real sshd on loopback, with files small enough to force
several; the answers equal the host's, nothing is left on the device, and free space is checked for one file."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

from pytest_aiotbench.targets.device.protocol import ProtocolError, job_spec, read_job
from pytest_aiotbench.inputs.pixels import CHUNK_ENV, ArrivingPixels, write_store
from pytest_aiotbench.targets import TargetError, resolve_target

from tests.helpers.adbdevice.fixtures import _adb_device_session, adb_device, adb_server, leftovers  # noqa: F401
from tests.helpers.adbdevice.jobs import RecordingTiming, host_topk, make_job, shared_model
from tests.targets.test_device_ssh import sshd, ssh_target  # noqa: F401

pytestmark = pytest.mark.device


def test_arriving_pixels_wait_for_each_file_and_remove_it_once_read(tmp_path):
    crops = np.random.default_rng(1).integers(0, 256, (10, 4, 4, 3), dtype=np.uint8)
    for k, (a, b) in enumerate([(0, 4), (4, 8), (8, 10)]):
        if k != 1:
            write_store(tmp_path / ArrivingPixels.name(k), b - a, 4, iter((crops[a:b],)))
    pixels = ArrivingPixels(tmp_path, [4, 4, 2], 4, wait_s=0.2)
    np.testing.assert_array_equal(pixels.read(0, 3), crops[:3])
    np.testing.assert_array_equal(pixels.read(3, 4), crops[3:4])
    assert not (tmp_path / ArrivingPixels.name(0)).exists()  # read to its end: gone
    with pytest.raises(Exception, match="pixels-00001.npy did not arrive within 0 s"):
        pixels.read(4, 6)
    assert (tmp_path / "want-00001").exists()  # what the host watches for
    write_store(tmp_path / ArrivingPixels.name(1), 4, 4, iter((crops[4:8],)))
    np.testing.assert_array_equal(pixels.read(4, 10), crops[4:10])  # spans two files
    assert not list(tmp_path.glob("pixels-*.npy"))


def test_job_spec_lists_the_files(tmp_path):
    job = make_job(shared_model(), images=3)
    spec = job_spec(job, "j", None, [2, 1])
    assert spec["pixel_files"] == [2, 1]
    write_store(tmp_path / ArrivingPixels.name(0), 2, 128, iter((job.pixels[:2],)))
    back = read_job(json.loads(json.dumps(spec)), job.model_file, tmp_path / ArrivingPixels.name(0))
    assert len(back.pixels) == 3
    with pytest.raises(ProtocolError, match="pixel_files must be a list of image counts"):
        read_job({**spec, "pixel_files": [2, 0]}, job.model_file, tmp_path / "x.npy")


def _pushed_files(commands: list[str]) -> list[str]:
    return sorted(set(re.findall(r"pixels-\d{5}\.npy", " ".join(commands))))


def test_adb_job_in_several_files_matches_host(adb_device, monkeypatch):
    monkeypatch.setenv(CHUNK_ENV, "5")
    job = make_job(shared_model(), images=23)
    timing = RecordingTiming()
    m = resolve_target(f"adb:{adb_device.serial}").run(job, timing)
    np.testing.assert_array_equal(m.topk, host_topk(job))
    assert len(m.latencies_s) == 23 and timing.recorded == m.latencies_s
    assert _pushed_files(adb_device.commands) == [ArrivingPixels.name(k) for k in range(5)]  # 1-4 moved in by mv
    assert sum(f"want-{k:05d}" in " ".join(adb_device.commands) for k in range(1, 5)) == 4
    assert len([c for c in adb_device.commands if "runner.pyz" in c]) == 1  # one runner, one session
    assert leftovers(adb_device) == []


@pytest.mark.slow
def test_free_space_is_checked_for_one_file(adb_device, monkeypatch):
    """The whole set needs more than the device has; one file at a time fits (df: 1K blocks)."""
    monkeypatch.setenv(CHUNK_ENV, "4")
    job = make_job(shared_model(), images=40)  # 40 x 48 KB crops: 1.9 MB; a file of 4: 0.2 MB
    target = resolve_target(f"adb:{adb_device.serial}")
    margin = 4 * 1024 * 1024
    fixed = shared_model().stat().st_size + 200_000  # the model and the runner bundle, roughly
    adb_device.set_disk_free(fixed + margin + 1_200_000)
    m = target.run(job, RecordingTiming())
    np.testing.assert_array_equal(m.topk, host_topk(job))
    monkeypatch.delenv(CHUNK_ENV)  # one file of every crop: refused before anything is pushed, naming both sizes
    adb_device.set_disk_free(fixed + margin + 1_200_000)
    with pytest.raises(TargetError, match=r"check device: only [\d.]+ MB free in .*, the job needs [\d.]+ MB") as err:
        target.push_bytes = 1 << 30
        target.run(job, RecordingTiming())
    assert "\n" not in str(err.value)
    adb_device.set_disk_free(None)
    assert leftovers(adb_device) == []


@pytest.mark.slow
def test_ssh_job_in_several_files_matches_host(sshd, monkeypatch):  # noqa: F811
    monkeypatch.setenv(CHUNK_ENV, "6")
    job = make_job(shared_model(), images=20)
    m = ssh_target(sshd).run(job, RecordingTiming())
    np.testing.assert_array_equal(m.topk, host_topk(job))
    assert m.timed_on == "device" and len(m.latencies_s) == 20
    assert list(sshd["board"].iterdir()) == []
