"""The offline scenario on a device (issue 21 item 5): the job carries the scenario, the runner issues the images
there (run/offline.py in the bundle) and the host reads back throughput and answers equal to single-stream's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pytest_aiotbench.targets.device.protocol import ProtocolError, job_spec, read_result, result_data
from pytest_aiotbench.targets import resolve_target
from pytest_aiotbench.run.job import Measurement
from pytest_aiotbench.targets.bundle import bundle_files

from tests.helpers.adbdevice.fixtures import _adb_device_session, adb_device, adb_server, leftovers  # noqa: F401
from tests.helpers.adbdevice.jobs import RecordingTiming, host_topk, make_job, shared_model


def test_the_runner_bundle_carries_the_offline_scenario():
    assert "pytest_aiotbench/run/offline.py" in bundle_files()


def test_job_spec_carries_the_scenario_and_single_stream_specs_are_unchanged(tmp_path):
    job = make_job(shared_model(), images=2)
    assert "scenario" not in job_spec(job, "j", None)  # an old runner reads a single-stream spec as before
    spec = job_spec(replace(job, scenario="offline", sessions=3, batch=2), "j", None)
    assert (spec["scenario"], spec["sessions"], spec["batch"]) == ("offline", 3, 2)


def test_an_offline_result_round_trips_and_a_malformed_one_is_refused(tmp_path):
    import json

    m = Measurement(np.array([[1, 2], [3, 4]]), [], 0.1, 0.01, {}, offline={
        "images": 2, "wall_s": 0.5, "images_per_s": 4.0, "sessions": 2, "batch": 1})
    path = tmp_path / "r.json"
    path.write_text(json.dumps(result_data("j", m, "3.11")))
    back = read_result(path, "j", 2, 2, 10)
    assert back.offline["images_per_s"] == 4.0 and back.latencies_s == [] and back.topk.tolist() == [[1, 2], [3, 4]]
    bad = result_data("j", m, "3.11")
    bad["offline"]["wall_s"] = 0
    path.write_text(json.dumps(bad))
    with pytest.raises(ProtocolError, match="malformed offline result"):
        read_result(path, "j", 2, 2, 10)


@pytest.mark.device
@pytest.mark.slow
def test_offline_job_runs_on_the_adb_device_with_single_stream_answers(adb_device):
    job = make_job(shared_model(), images=24)
    timing = RecordingTiming()
    m = resolve_target(f"adb:{adb_device.serial}").run(replace(job, scenario="offline", sessions=2), timing)
    np.testing.assert_array_equal(m.topk, host_topk(job))  # single-stream on the host: the same answers
    assert m.timed_on == "device" and m.latencies_s == []
    assert m.offline["images"] == 24 and m.offline["sessions"] == 2 and m.offline["wall_s"] > 0
    assert timing.recorded == [pytest.approx(m.offline["wall_s"] / 24)]
    assert leftovers(adb_device) == []


def test_benchmark_model_target_refuses_the_offline_scenario(tmp_path):
    """benchmark_model times one inference at a time: an offline case through it would be single-stream figures
    under the offline name."""
    from pytest_aiotbench.targets.base import TargetError
    from pytest_aiotbench.targets.benchmark_model import BenchmarkModelTarget

    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")  # never run: the scenario is refused before the device is touched
    target = BenchmarkModelTarget("emulator-5554", benchmark_model=str(binary))
    job = replace(make_job(shared_model(), images=2), scenario="offline")
    with pytest.raises(TargetError, match="benchmark_model runs single-stream only, not the offline scenario"):
        target.run(job, RecordingTiming())
