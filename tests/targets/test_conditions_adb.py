"""Device conditions end to end through adb: the REAL adb server, the project's adbd (tests/helpers/adbdevice)
and the real runner, on a device whose sysfs tree heats while the runner works and cools while it rests
(tests/helpers/sysfs.LoadHeater). The runner samples on the device and returns the samples' summary."""

from __future__ import annotations

import json

import pytest

from pytest_aiotbench.verdicts import validity
from pytest_aiotbench.report.read import first_schema_violation
from pytest_aiotbench.report.schema import REPORT
from pytest_aiotbench.run.conditions import NOT_EXPOSED
from pytest_aiotbench.targets import resolve_target

from tests.helpers.adbdevice.fixtures import _adb_device_session, adb_device, adb_server, leftovers  # noqa: F401
from tests.helpers.adbdevice.jobs import RecordingTiming, make_job, shared_model
from tests.helpers.sysfs import LoadHeater, build_tree, conditions_run

pytestmark = pytest.mark.device


@pytest.fixture
def hot_device(adb_device, tmp_path):
    """The adb device with a constructed /sys: 40 C at rest, passive trip at 60 C, +15 C/s and -0.5 GHz/s while
    the runner works, -25 C/s at rest."""
    root = build_tree(tmp_path / "devsys", cpus=4, max_khz=2_000_000, temp_c=40, trip_c=60, battery_c=31.0)
    adb_device.sysfs_root = root
    pid_glob = str(adb_device.sandbox / "data/local/tmp/aiotbench-*/runner.pid")
    with LoadHeater(root, pid_glob, start_c=40, c_per_s=15, cool_c_per_s=25, max_khz=2_000_000,
                    khz_per_s=500_000, floor_khz=600_000) as heater:
        yield adb_device, heater


def test_device_without_sysfs_says_not_exposed(adb_device, tmp_path):
    adb_device.sysfs_root = tmp_path / "nothing"
    m = resolve_target(f"adb:{adb_device.serial}").run(make_job(shared_model(), images=4), RecordingTiming())
    assert m.conditions["cpu_khz"] == NOT_EXPOSED and m.conditions["temp_c"] == NOT_EXPOSED
    assert m.conditions["start_temp_c"] == NOT_EXPOSED
    assert leftovers(adb_device) == []


@pytest.mark.slow
def test_throttling_sampled_on_the_device(hot_device):
    device, heater = hot_device
    job = make_job(shared_model(), images=8)
    job.sustain_s = 2.5  # long enough for the tree to cross its trip point while the runner works
    m = resolve_target(f"adb:{device.serial}").run(job, RecordingTiming())
    assert heater.busy_seen
    c = m.conditions
    assert c["samples"] >= 5 and c["start_temp_c"] < 50
    assert c["temp_c"]["cpu-thermal"]["max"] >= 60 and c["temp_c"]["cpu-thermal"]["trip"] == \
        {"temp_c": 60.0, "type": "passive"}
    assert c["temp_c"]["battery"] == {"min": 31.0, "max": 31.0, "trip": None}
    assert c["cpu_khz"]["rated_max"] == 2_000_000 and c["cpu_khz"]["top_min"] < 1_600_000
    kinds = {r.split(":")[0] for r in validity.throttling(c)}
    assert kinds == {"throttled"} and len(validity.throttling(c)) == 2  # clock and trip point
    # sustained: the curve sampled on the device, temperature rising and clock falling window by window
    curve = m.sustained
    assert len(curve["windows"]) == 10 and curve["duration_s"] >= 2.5 and curve["cycles"] >= 2
    temps = [w["temp_c"] for w in curve["windows"]]
    clocks = [w["cpu_khz"] for w in curve["windows"]]
    assert temps[-1] > temps[0] + 10 and clocks[-1] < clocks[0]
    assert curve["last_first_ratio"] > 0 and len(m.latencies_s) == 8  # the first pass is the case's latency
    assert leftovers(device) == []


@pytest.mark.slow
def test_cooldown_on_the_device_waits_for_the_temperature(hot_device):
    device, heater = hot_device
    heater.cool_c_per_s = 5  # slow enough that the gap between the two jobs (pushes, a loaded host) leaves it hot
    target = resolve_target(f"adb:{device.serial}")
    hot = make_job(shared_model(), images=8)
    hot.sustain_s = 2.0
    first = target.run(hot, RecordingTiming())
    end_temp = first.sustained["windows"][-1]["temp_c"]
    assert end_temp > 55
    job = make_job(shared_model(), images=4)
    job.cooldown = {"until_c": 45.0, "max_s": 30.0}
    m = target.run(job, RecordingTiming())
    cool = m.conditions["cooldown"]
    assert cool["mode"] == "until" and cool["reached"] is True
    assert cool["from_c"] > 45 and cool["to_c"] <= 45 and cool["waited_s"] > 0.1
    assert m.conditions["start_temp_c"] <= 45


@pytest.mark.slow
def test_plugin_cooldown_sustain_and_throttled_through_adb(pytester, hot_device, tmp_path):
    """The whole plugin on the hot device: the first case heats it past its trip point (throttled, INVALID), the
    cooldown before the second waits until it is cool again, both carry their sustained curve."""
    device, heater = hot_device
    shared_model()
    result = conditions_run(pytester, tmp_path / "r.json", f"--device=adb:{device.serial}",
                            "--aiotbench-sustain=2s", "--aiotbench-cooldown=until=45,max=30")
    result.assert_outcomes(passed=2)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["cooldown"] == {"until_c": 45.0, "max_s": 30.0} and report["settings"]["sustain_s"] == 2
    assert first_schema_violation(report, REPORT) is None
    first, second = report["cases"]
    assert "cooldown" not in first["conditions"]  # a cooldown is between cases
    assert second["conditions"]["cooldown"]["reached"] is True and second["conditions"]["start_temp_c"] <= 45
    for case in (first, second):
        assert validity.kinds(case["validity"]) and "throttled" in validity.kinds(case["validity"])
        assert len(case["sustained"]["windows"]) == 10 and case["images"] == 10
        assert case["top1"] is not None  # accuracy over the dataset once
    assert "throttled" in result.stdout.str()
    assert leftovers(device) == []


@pytest.mark.slow
def test_sustained_run_gets_its_duration_on_top_of_the_job_deadline(adb_device, tmp_path):
    adb_device.sysfs_root = tmp_path / "nothing"
    job = make_job(shared_model(), images=4)
    job.sustain_s = 3.0  # longer than the whole deadline below: the sustained time is added to it
    m = resolve_target(f"adb:{adb_device.serial}", deadline_s=3).run(job, RecordingTiming())
    assert m.sustained["duration_s"] >= 3 and leftovers(adb_device) == []
