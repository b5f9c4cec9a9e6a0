"""Memory on devices: the runner (one process per case) reads its own counters around its prepare and its timed
loop and returns them in the result file; through the real adb server with the project's test device, and through
sshd on loopback. Its figures agree with the host's fresh-process probe of the same job (same runtime here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_aiotbench.targets.device.protocol import ProtocolError, read_result, result_data
from pytest_aiotbench.targets import resolve_target
from pytest_aiotbench.run.job import Measurement
from pytest_aiotbench.targets.host import fresh_memory
from tests.helpers.adbdevice.fixtures import _adb_device_session, adb_device, adb_server, leftovers  # noqa: F401
from tests.helpers.adbdevice.jobs import RecordingTiming, make_job, shared_model
from tests.targets.test_device_ssh import ssh_target, sshd  # noqa: F401

pytestmark = pytest.mark.device


def _check_against_host(m, job):
    assert m.memory["isolation"] == "runner process" and m.memory["reason"] is None, m.memory
    host = fresh_memory(job)
    assert host["isolation"] == "fresh process"
    for key in ("prepare_mb", "peak_mb"):
        assert m.memory[key] == pytest.approx(host[key], rel=0.10), (key, m.memory, host)
    assert m.memory["inputs_mb"] > 0  # the runner's converted chunk, left out of its peak


def test_adb_runner_measures_memory_in_its_own_process(adb_device):
    job = make_job(shared_model("mobilenet_v2_1.0_224_quant.tflite"), images=16, size=224)
    m = resolve_target(f"adb:{adb_device.serial}").run(job, RecordingTiming())
    _check_against_host(m, job)
    assert leftovers(adb_device) == []


@pytest.mark.slow
def test_ssh_runner_measures_memory_in_its_own_process(sshd):
    job = make_job(shared_model("mobilenet_v2_1.0_224_quant.tflite"), images=8, size=224)
    _check_against_host(ssh_target(sshd).run(job, RecordingTiming()), job)


def _result(tmp_path, memory):
    m = Measurement(np.array([[1, 2, 3, 4, 5]]), [0.01], 0.1, 0.02, {}, memory=memory)
    data = result_data("j1", m, python="3.11.2")
    if memory == "drop":
        del data["memory"]
    (tmp_path / "result.json").write_text(json.dumps(data))
    return tmp_path / "result.json"


def test_result_memory_is_checked_and_an_older_runner_is_not_exposed(tmp_path):
    good = {"prepare_mb": 5.0, "peak_mb": 6.0, "inputs_mb": 0.1, "base_mb": 40.0, "isolation": "runner process",
            "source": "/proc/self/status VmRSS/VmHWM", "reason": None}
    assert read_result(_result(tmp_path, good), "j1", 1, 5, 1000).memory == good
    older = read_result(_result(tmp_path, "drop"), "j1", 1, 5, 1000).memory
    assert older["peak_mb"] is None and "not measured" in older["reason"]
    with pytest.raises(ProtocolError, match="result file: memory.peak_mb = -3 is not a size"):
        read_result(_result(tmp_path, {**good, "peak_mb": -3}), "j1", 1, 5, 1000)
    with pytest.raises(ProtocolError, match="null figure without a reason"):
        read_result(_result(tmp_path, {**good, "peak_mb": None}), "j1", 1, 5, 1000)


def test_host_probe_runs_once_per_file_and_options(tmp_path):
    """Repeats and A/B baselines reuse a file's fresh-process figures; a changed file is measured again."""
    import os
    import shutil
    import time

    model = tmp_path / "m.tflite"
    shutil.copy(shared_model(), model)
    job = make_job(model, images=2)
    first = fresh_memory(job)
    start = time.perf_counter()
    assert fresh_memory(job) == first
    assert time.perf_counter() - start < 0.1  # no second process
    os.utime(model, ns=(time.time_ns(), time.time_ns() + 10**9))
    again = fresh_memory(job)
    assert again["isolation"] == "fresh process" and again["reason"] is None
    threads = make_job(model, images=2, threads=2)
    assert fresh_memory(threads)["reason"] is None  # other options: their own probe
