"""A device farm: two adb devices (the project's adbd, behind the real adb server) benchmarked in parallel,
one xdist worker each, merged into one report ranked by device score, plus a plain report per device."""

from __future__ import annotations

import json

import pytest

from tests.helpers.adbdevice.adbd import FakeAdbd
from tests.helpers.adbdevice.fixtures import adb_server  # noqa: F401
from tests.helpers.adbdevice.jobs import REPO, shared_dir

pytestmark = [pytest.mark.device, pytest.mark.slow]

# Loaded in the farm's controller and in each xdist worker: how many targets hold a connection when the session
# ends, and after the plugin's unconfigure (this impl runs last).
LIFECYCLE_CONFTEST = """
import json, os
import pytest
from pytest_aiotbench.targets import base

def _note(when):
    with open(os.path.join(os.environ["LIFECYCLE_DIR"], f"{os.getpid()}.{when}"), "w") as fh:
        json.dump(sorted(t.name for t in base._open_targets.values()), fh)

def pytest_sessionfinish():
    _note("sessionfinish")

@pytest.hookimpl(trylast=True)
def pytest_unconfigure():
    _note("unconfigure")
"""


def test_two_devices_run_in_parallel_into_one_ranked_report(pytester, adb_server, tmp_path):  # noqa: F811
    devices = []
    try:
        for name in ("Phone A", "Phone B"):
            device = FakeAdbd(tmp_path / name.replace(" ", ""), props={"ro.product.model": name})
            device.start()
            device.serial = f"127.0.0.1:{device.port}"
            adb_server.connect(device.serial)
            devices.append(device)
        report = tmp_path / "farm.json"
        pytester.makeconftest(LIFECYCLE_CONFTEST)
        lifecycle = tmp_path / "lifecycle"
        lifecycle.mkdir()
        pytester._monkeypatch.setenv("LIFECYCLE_DIR", str(lifecycle))
        result = pytester.runpytest_subprocess(
            "--aiotbench", "--aiotbench-no-builtin", f"--aiotbench-catalog={REPO / 'models' / 'shared.toml'}",
            f"--aiotbench-dataset={shared_dir() / 'data' / 'imagenet-val-500'}", "--aiotbench-images=12",
            "--aiotbench-min-top1=0", "--aiotbench-warmup=1", "--aiotbench-cache=none", "-p", "no:cacheprovider",
            "-k", "0.25_128 and not pytorch", *[f"--device=adb:{d.serial}" for d in devices],
            "-n", "2", "--dist", "loadgroup", f"--aiotbench-json={report}", timeout=300)
        result.assert_outcomes(passed=4)
        merged = json.loads(report.read_text())
        specs = [f"adb:{d.serial}" for d in devices]
        assert merged["device"] == {"target": "farm", "devices": specs}
        assert sorted(merged["ranking"]) == sorted(specs)
        vips = [merged["by_device"][d]["vips"] for d in merged["ranking"]]
        assert vips == sorted(vips, reverse=True) and all(v > 0 for v in vips)
        assert {merged["devices"][d]["model"] for d in specs} == {"Phone A", "Phone B"}
        ids = sorted(c["id"] for c in merged["cases"])
        assert ids == sorted(f"mobilenet_v1_0.25_128-{fw}-{q}@{d}" for d in specs
                             for fw, q in (("tflite", "int8"), ("onnxruntime", "fp32")))
        # Each device ran its own cases (timed on the device) and got the same answers as the other.
        per_device = {}
        for spec in specs:
            safe = spec.replace(":", "_")
            single = json.loads((tmp_path / f"farm.{safe}.json").read_text())
            assert single["device"]["model"] in ("Phone A", "Phone B") and len(single["cases"]) == 2
            assert all(c["runtime"]["timed_on"] == "device" for c in single["cases"])
            per_device[spec] = {c["id"]: c["per_image"]["top5"] for c in single["cases"]}
        assert per_device[specs[0]] == per_device[specs[1]]
        assert "Device ranking" in result.stdout.str()
        # The devices were connected during the session, and every process closed its connections at the end.
        at_finish = [json.loads(f.read_text()) for f in lifecycle.glob("*.sessionfinish")]
        assert {name for names in at_finish for name in names} == set(specs)
        at_end = [json.loads(f.read_text()) for f in lifecycle.glob("*.unconfigure")]
        assert len(at_end) == 3 and all(names == [] for names in at_end)  # controller + 2 workers
    finally:
        for device in devices:
            adb_server.adb("disconnect", device.serial, timeout=10)
            device.stop()
