"""What a long device run needs once its crops come in several pushed files (issue 19, at small scale: files
forced small with the CHUNK env, conversion chunks with ``job.chunk``): the host writes each file to push from its
store a piece at a time (never a whole file in memory); sustained mode goes over the dataset again, so the runner
asks for the first files again and the host pushes them again, one on the device at a time."""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest

from pytest_aiotbench.inputs.pixels import CHUNK_ENV, ArrivingPixels, write_store
from pytest_aiotbench.targets import resolve_target
from pytest_aiotbench.targets.remote import PACK_PIECE_BYTES, _pack_part

from tests.helpers.adbdevice.fixtures import _adb_device_session, adb_device, adb_server, leftovers  # noqa: F401
from tests.helpers.adbdevice.jobs import RecordingTiming, host_topk, make_job, shared_model

pytestmark = pytest.mark.device


def test_a_file_to_push_is_written_a_piece_at_a_time(tmp_path):
    crops = np.random.default_rng(3).integers(0, 256, (420, 128, 128, 3), dtype=np.uint8)  # 20.6 MB
    store = write_store(tmp_path / "store.npy", len(crops), 128, iter((crops,)))
    tracemalloc.start()  # numpy reports its buffers to tracemalloc
    try:
        _pack_part(store, 7, 413, tmp_path / "part.npy")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    bound = 2 * PACK_PIECE_BYTES + (1 << 20)  # a piece, the next one while the last is written, a little more
    assert peak < bound < (413 - 7) * 128 * 128 * 3 / 2  # never the file's 20 MB
    np.testing.assert_array_equal(np.load(tmp_path / "part.npy"), crops[7:413])


def test_arriving_pixels_ask_again_for_a_file_read_and_removed(tmp_path):
    crops = np.random.default_rng(2).integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    for k, (a, b) in enumerate([(0, 3), (3, 6)]):
        write_store(tmp_path / ArrivingPixels.name(k), b - a, 4, iter((crops[a:b],)))
    pixels = ArrivingPixels(tmp_path, [3, 3], 4, wait_s=0.2)
    np.testing.assert_array_equal(pixels.read(0, 6), crops)
    assert not list(tmp_path.glob("pixels-*.npy"))  # one pass: every file read to its end and removed
    with pytest.raises(Exception, match="pixels-00000.npy did not arrive within 0 s"):
        pixels.read(0, 2)  # a second pass asks for the first file again
    assert (tmp_path / "want-00000").exists()
    write_store(tmp_path / ArrivingPixels.name(0), 3, 4, iter((crops[:3],)))
    np.testing.assert_array_equal(pixels.read(0, 2), crops[:2])


@pytest.mark.slow
def test_sustained_mode_cycles_over_several_pushed_files(adb_device, monkeypatch):  # noqa: F811
    monkeypatch.setenv(CHUNK_ENV, "4")  # files of 4 images: 0-3, 4-7, 8-9
    job = make_job(shared_model(), images=10)
    job.chunk = 3  # the runner converts 3 at a time: the cycle comes back to a file read and removed
    job.sustain_s = 1.5
    m = resolve_target(f"adb:{adb_device.serial}").run(job, RecordingTiming())
    np.testing.assert_array_equal(m.topk, host_topk(job))  # the first pass's answers, as on the host
    assert m.sustained["cycles"] >= 2 and len(m.latencies_s) == 10
    pushed = re.findall(r"pixels-(\d{5})\.npy\.part", " ".join(c for c in adb_device.commands if " mv " in c))
    assert pushed[:2] == ["00001", "00002"] and "00000" in pushed  # the second pass asked for file 0 again
    assert leftovers(adb_device) == []


def _runner_timeout(commands: list[str]) -> int:
    return int(re.search(r"timeout -s KILL (\d+) ", [c for c in commands if "runner.pyz --job" in c][-1]).group(1))


@pytest.mark.slow
def test_default_deadline_grows_with_the_files_of_crops_a_given_one_does_not(adb_device, monkeypatch):  # noqa: F811
    """50,000 images are 37 files at 128 px: a job's work grows with its dataset, so without a deadline given the
    job gets the default's 900 s per file; a deadline given is the whole job's, whatever its size."""
    job = make_job(shared_model(), images=10)
    resolve_target(f"adb:{adb_device.serial}").run(job, RecordingTiming())  # one file: 900 s
    assert 800 < _runner_timeout(adb_device.commands) <= 900
    monkeypatch.setenv(CHUNK_ENV, "4")  # three files: 2,700 s
    target = resolve_target(f"adb:{adb_device.serial}")
    m = target.run(job, RecordingTiming())
    assert 2600 < _runner_timeout(adb_device.commands) <= 2700 and target.job_deadline_s == 2700
    np.testing.assert_array_equal(m.topk, host_topk(job))
    resolve_target(f"adb:{adb_device.serial}", deadline_s=900).run(job, RecordingTiming())
    assert 800 < _runner_timeout(adb_device.commands) <= 900
    assert leftovers(adb_device) == []
