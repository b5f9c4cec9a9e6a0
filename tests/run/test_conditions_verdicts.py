"""Device conditions (issue 21 items 2-4): sysfs reading on a constructed tree and on this host, the throttled
verdict and the sustained curve on constructed samples, the cooldown's bounded wait, option parsing."""

from __future__ import annotations

import glob
import threading
import time

import pytest

from pytest_aiotbench.verdicts import validity
from pytest_aiotbench.inputs import options
from pytest_aiotbench.run import conditions
from pytest_aiotbench.run.conditions import NOT_EXPOSED, Sampler, Source, cooldown, summarize, windows

from tests.helpers.sysfs import build_tree, set_state


def test_source_reads_clocks_zones_trips_and_battery(tmp_path):
    build_tree(tmp_path, cpus=3, max_khz=1_800_000, temp_c=41.5, trip_c=70, battery_c=29.3,
               zones=("cpu-thermal", "gpu-thermal", "cpu-thermal"))
    source = Source(tmp_path)
    assert [name for name, _ in source.cpus] == ["cpu0", "cpu1", "cpu2"]
    assert source.rated_max_khz == 1_800_000
    assert [z[0] for z in source.zones] == ["cpu-thermal", "gpu-thermal", "cpu-thermal#2", "battery"]
    # the lowest *throttling* trip: the active (fan) trip at 55 C is not one
    assert source.trips["gpu-thermal"] == {"temp_c": 70.0, "type": "passive"}
    sample = source.read()
    assert sample["khz"] == [1_800_000] * 3
    assert sample["c"] == {"cpu-thermal": 41.5, "gpu-thermal": 41.5, "cpu-thermal#2": 41.5, "battery": 29.3}
    assert source.hottest() == 41.5


def test_nothing_exposed_says_so_never_zero(tmp_path):
    source = Source(tmp_path)  # an empty tree: no cpufreq, no thermal zone
    sampler = Sampler(source)
    sampler.start(), sampler.maybe(), sampler.stop()
    summary = summarize(sampler.samples, source, source.hottest())
    assert summary == {"samples": 0, "cpu_khz": NOT_EXPOSED, "temp_c": NOT_EXPOSED, "start_temp_c": NOT_EXPOSED}
    assert validity.throttling(summary) == []


def test_this_hosts_sysfs_as_exposed():
    """The real /sys of this machine: what it exposes is reported, what it lacks is 'not exposed'."""
    source = Source("/")
    summary = summarize([source.read(), source.read()], source, source.hottest())
    freqs = glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq")
    zones = glob.glob("/sys/class/thermal/thermal_zone[0-9]*/temp")
    if freqs:
        assert isinstance(summary["cpu_khz"], dict) and summary["cpu_khz"]["min"] > 0
    else:
        assert summary["cpu_khz"] == NOT_EXPOSED
    readable = [z for z in zones if conditions._read_int(__import__("pathlib").Path(z)) is not None]
    if readable:
        assert isinstance(summary["temp_c"], dict) and isinstance(summary["start_temp_c"], float)
    else:
        assert summary["temp_c"] == NOT_EXPOSED and summary["start_temp_c"] == NOT_EXPOSED


def _summary(top_khz, temps, rated=2_000_000, trip=80.0):
    samples = [{"t": i * 0.5, "khz": [k, 300_000], "c": {"soc": c}} for i, (k, c) in enumerate(zip(top_khz, temps))]

    class Fixed(Source):
        def __init__(self):
            self.cpus, self.rated_max_khz, self.rated = [("cpu0", None), ("cpu1", None)], rated, [rated, rated]
            self.zones, self.trips = [("soc", None, 1e-3)], {"soc": {"temp_c": trip, "type": "passive"}}

    return summarize(samples, Fixed(), temps[0])


@pytest.mark.parametrize("top_khz, temps, expected", [
    ([2_000_000, 1_900_000, 1_700_000], [50, 60, 70], []),  # 85% of max: not throttled
    ([2_000_000, 1_500_000, 1_400_000], [50, 60, 70], ["clock"]),  # 70% of max
    ([2_000_000, 2_000_000, 2_000_000], [70, 79.9, 80.0], ["trip"]),  # reached the passive trip point
    ([1_000_000, 1_000_000, 1_000_000], [70, 85, 90], ["clock", "trip"]),  # started throttled: rated max says so
])
def test_throttled_verdict_on_constructed_samples(top_khz, temps, expected):
    summary = _summary(top_khz, temps)
    # the idle CPU at 300 MHz is never the judged clock: the fastest one runs the inference
    assert summary["cpu_khz"]["min"] == 300_000 and summary["cpu_khz"]["top_min"] == min(top_khz)
    reasons = validity.throttling(summary)
    assert [("clock" if "CPU clock" in r else "trip") for r in reasons] == expected
    verdict = validity.assess([10.0] * 60, None, conditions=summary)
    assert verdict["valid"] is (not expected)
    if expected:
        assert validity.kinds(verdict) == ["throttled"] and validity.label(verdict) == "INVALID (throttled)"


def test_big_little_judged_against_each_cores_own_max(tmp_path):
    """A little core (1.8 GHz max) running the case at full clock while the big one (2.8 GHz) idles is not
    throttled; the little one dropping to 1.2 GHz is."""
    build_tree(tmp_path, cpus=2, max_khz=1_800_000, battery_c=None, zones=())
    (tmp_path / "sys/devices/system/cpu/cpu1/cpufreq/cpuinfo_max_freq").write_text("2800000\n")
    source = Source(tmp_path)
    assert source.rated == [1_800_000, 2_800_000] and source.rated_max_khz == 2_800_000
    full = [{"t": 0.0, "khz": [1_800_000, 500_000], "c": {}}, {"t": 0.5, "khz": [1_800_000, 500_000], "c": {}}]
    summary = summarize(full, source)
    assert summary["cpu_khz"]["top_share_min"] == 1.0 and validity.throttling(summary) == []
    dropped = full + [{"t": 1.0, "khz": [1_200_000, 500_000], "c": {}}]
    (reason,) = validity.throttling(summarize(dropped, source))
    assert reason.startswith("throttled: CPU clock fell to 67% of its rated max")


def test_throttled_against_observed_max_when_no_rated_max():
    summary = _summary([2_400_000, 1_800_000], [40, 40], rated=None, trip=100)
    (reason,) = validity.throttling(summary)
    assert "75% of its max 2.40 GHz" in reason


def test_windows_curve_on_constructed_samples():
    # 10 s, 5 windows of 2 s: latency 10 ms for the first 4 s, then 15 ms; temperature rising, clock falling
    starts = [i * 0.1 for i in range(100)]
    lat = [0.010 if t < 4 else 0.015 for t in starts]
    samples = [{"t": t, "khz": [2_000_000 - int(t * 100_000)], "c": {"soc": 40 + t}} for t in (0.5, 2.5, 4.5, 6.5, 8.5)]
    curve = windows(starts, lat, samples, 10.0, 5)
    assert [w["images"] for w in curve["windows"]] == [20] * 5
    assert [w["median_ms"] for w in curve["windows"]] == [10.0, 10.0, 15.0, 15.0, 15.0]
    assert curve["last_first_ratio"] == 1.5
    assert [w["temp_c"] for w in curve["windows"]] == [40.5, 42.5, 44.5, 46.5, 48.5]
    assert [w["cpu_khz"] for w in curve["windows"]] == [1_950_000, 1_750_000, 1_550_000, 1_350_000, 1_150_000]
    bare = windows(starts, lat, [], 10.0, 5)  # nothing sampled: said so per window
    assert bare["windows"][0]["temp_c"] == NOT_EXPOSED and bare["windows"][0]["cpu_khz"] == NOT_EXPOSED


def test_cooldown_seconds_waits_and_reports(tmp_path):
    build_tree(tmp_path, temp_c=55)
    started = time.monotonic()
    report = cooldown({"seconds": 0.3}, Source(tmp_path))
    assert time.monotonic() - started >= 0.3
    assert report["mode"] == "seconds" and report["waited_s"] >= 0.3 and report["from_c"] == 55.0


def test_cooldown_until_temperature_on_a_cooling_tree(tmp_path):
    build_tree(tmp_path, temp_c=60, battery_c=None)
    stop = threading.Event()

    def cool():  # 60 C falling 40 C/s: below 45 C after ~0.4 s
        t0 = time.monotonic()
        while not stop.wait(0.02):
            set_state(tmp_path, 60 - 40 * (time.monotonic() - t0), 2_000_000)

    thread = threading.Thread(target=cool, daemon=True)
    thread.start()
    try:
        report = cooldown({"until_c": 45, "max_s": 10}, Source(tmp_path), poll_s=0.05)
    finally:
        stop.set()
        thread.join()
    assert report["reached"] is True and report["to_c"] <= 45 and report["from_c"] >= 58
    assert 0.2 < report["waited_s"] < 3


def test_cooldown_until_is_bounded_and_says_so(tmp_path):
    build_tree(tmp_path, temp_c=70)
    report = cooldown({"until_c": 40, "max_s": 0.4}, Source(tmp_path), poll_s=0.1)
    assert report["reached"] is False and 0.4 <= report["waited_s"] < 1.5 and report["to_c"] == 70.0
    nothing = cooldown({"until_c": 40, "max_s": 5}, Source(tmp_path / "empty"))
    assert nothing["reached"] == NOT_EXPOSED and nothing["waited_s"] < 0.5


@pytest.mark.parametrize("raw, parsed", [
    ("30", {"seconds": 30.0}), ("0.5", {"seconds": 0.5}), ("until=45", {"until_c": 45.0, "max_s": 600.0}),
    ("until=50.5,max=120", {"until_c": 50.5, "max_s": 120.0}),
])
def test_parse_cooldown(raw, parsed):
    assert options.parse_cooldown(raw) == parsed


@pytest.mark.parametrize("raw", ["", "-1", "abc", "until=", "until=hot", "until=45,max=0", "until=45,wait=3",
                                 "until=400", "1e9"])
def test_parse_cooldown_refuses(raw):
    with pytest.raises(ValueError, match="SECONDS"):
        options.parse_cooldown(raw)


@pytest.mark.parametrize("raw, seconds", [("90", 90), ("90s", 90), ("10m", 600), ("1.5h", 5400), ("2min", 120)])
def test_parse_duration(raw, seconds):
    assert options.parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["0", "-5s", "10d", "25h", "fast", ""])
def test_parse_duration_refuses(raw):
    with pytest.raises(ValueError, match="duration"):
        options.parse_duration(raw)
