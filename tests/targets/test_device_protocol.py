"""The device job protocol and the runner bundle: the bundle runs with nothing but numpy and one runtime, its
module set comes from the imports (a wrong import fails here, not on a device), the protocol refuses what does not
follow it, and ``--device`` specs are read without touching a device."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pytest_aiotbench.targets.device.protocol import ExitCode, ProtocolError, job_spec, read_job, read_result, result_data
from pytest_aiotbench.targets import TargetError, parse_device_spec, resolve_target
from pytest_aiotbench.targets import bundle
from pytest_aiotbench.run.job import Measurement

from tests.helpers.adbdevice.jobs import host_topk, make_job, shared_model

pytestmark = pytest.mark.device

TFLITE_REF = "pytest_aiotbench.frameworks.tflite:TFLite"


def _site_packages() -> Path:
    return Path(np.__file__).resolve().parents[1]


def isolated_path(tmp_path: Path, *packages: str) -> Path:
    """A folder holding only the given installed packages (symlinked), for ``python -I -S``."""
    folder = tmp_path / "site"
    folder.mkdir()
    for name in packages:
        for path in _site_packages().glob(name):
            (folder / path.name).symlink_to(path)
    return folder


def run_bundle_isolated(tmp_path: Path, job, site: Path) -> subprocess.CompletedProcess:
    """The bundle under ``python -I -S``: no site-packages, no PYTHONPATH, only ``site`` and the zipapp."""
    np.save(tmp_path / "pixels.npy", job.pixels)
    (tmp_path / "job.json").write_text(json.dumps(job_spec(job, "job42", TFLITE_REF)))
    launcher = (f"import sys, runpy; sys.path.insert(0, {str(site)!r}); sys.argv = ['runner.pyz'] + sys.argv[1:]; "
                f"runpy.run_path({str(bundle.build_runner_bundle())!r}, run_name='__main__')")
    return subprocess.run([sys.executable, "-I", "-S", "-c", launcher, "--job", "job.json", "--model",
                           str(job.model_file), "--pixels", "pixels.npy", "--out", "result.json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_bundle_runs_a_job_with_only_numpy_and_one_runtime(tmp_path):
    job = make_job(shared_model(), images=6)
    proc = run_bundle_isolated(tmp_path, job, isolated_path(tmp_path, "numpy", "numpy.libs", "ai_edge_litert"))
    assert proc.returncode == ExitCode.OK, proc.stderr
    m = read_result(tmp_path / "result.json", "job42", 6, 5, 1001)
    np.testing.assert_array_equal(m.topk, host_topk(job))  # same runtime, same pixels: same answers
    assert m.timed_on == "device" and len(m.latencies_s) == 6


def test_bundle_without_the_runtime_exits_runtime_missing(tmp_path):
    job = make_job(shared_model(), images=2)
    proc = run_bundle_isolated(tmp_path, job, isolated_path(tmp_path, "numpy", "numpy.libs"))
    assert proc.returncode == ExitCode.RUNTIME
    assert proc.stderr.startswith("aiotbench-runner:") and "ai-edge-litert" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_bundle_without_numpy_exits_runtime_missing(tmp_path):
    job = make_job(shared_model(), images=2)
    proc = run_bundle_isolated(tmp_path, job, isolated_path(tmp_path))
    assert proc.returncode == ExitCode.RUNTIME
    assert "numpy" in proc.stderr and "Traceback" not in proc.stderr


def test_bundle_holds_device_code_and_what_it_imports_only():
    names = set(zipfile.ZipFile(bundle.build_runner_bundle()).namelist())
    for needed in ("targets/device/protocol.py", "targets/device/runner.py", "targets/host.py", "targets/base.py",
                   "run/job.py", "inputs/preprocess.py", "run/timing.py", "files.py", "frameworks/tflite.py",
                   "frameworks/onnxruntime.py"):
        assert f"pytest_aiotbench/{needed}" in names
    for host_only in ("targets/adb.py", "targets/ssh.py", "targets/remote.py", "plugin/__init__.py",
                      "plugin/fixture.py", "run/environment.py", "report/compare.py"):
        assert f"pytest_aiotbench/{host_only}" not in names


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the package for the bundle builder to read, so a test can plant a bad import in it."""
    copy = tmp_path / "pytest_aiotbench"
    shutil.copytree(bundle.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(bundle, "PACKAGE_DIR", copy)
    return copy


def test_bundle_refuses_an_import_of_no_module(package_copy):
    runner = package_copy / "targets" / "device" / "runner.py"
    runner.write_text(runner.read_text() + "\n\ndef later():\n    from ...scoring import topk\n")
    with pytest.raises(bundle.BundleError, match=r"imports pytest_aiotbench\.scoring, which is not a module"):
        bundle.bundle_files()


def test_bundle_refuses_host_only_imports_in_device_code(package_copy):
    job = package_copy / "run" / "job.py"  # reached from the runner through targets.host
    job.write_text("import pytest\n" + job.read_text())
    with pytest.raises(bundle.BundleError, match=r"job\.py ships to devices but imports pytest at module level"):
        bundle.bundle_files()


def test_bundle_follows_a_new_import(package_copy):
    (package_copy / "newmod.py").write_text("X = 1\n")
    host = package_copy / "targets" / "host.py"
    host.write_text("from .. import newmod  # noqa\n" + host.read_text())
    assert "pytest_aiotbench/newmod.py" in bundle.bundle_files()


# -- protocol ------------------------------------------------------------------------------------------------------
def _spec(tmp_path, **changes):
    job = make_job(shared_model(), images=2)
    np.save(tmp_path / "pixels.npy", job.pixels)
    return {**job_spec(job, "j1", TFLITE_REF), **changes}, job


def test_job_spec_round_trips(tmp_path):
    spec, job = _spec(tmp_path)
    back = read_job(json.loads(json.dumps(spec)), job.model_file, tmp_path / "pixels.npy")
    assert back.preprocess == job.preprocess and back.options == job.options
    assert (back.case_id, back.warmup, back.num_classes, back.background, back.top_k) == \
           (job.case_id, job.warmup, job.num_classes, job.background, job.top_k)
    np.testing.assert_array_equal(back.pixels, job.pixels)


@pytest.mark.parametrize("changes, message", [
    ({"format": "aiotbench-job/0"}, "job format 'aiotbench-job/0'"),
    ({"threads": "2"}, "threads must be a int"),
    ({"warmup": True}, "warmup must be a int"),
    ({"images": 3}, r"holds \(2, 128, 128, 3\), the job says 3 images"),
    ({"preprocess": {"input_size": 128}}, "bad preprocess"),
    ({"extra": ["delegate"]}, "extra must be an object"),
])
def test_bad_job_spec_is_one_line(tmp_path, changes, message):
    spec, job = _spec(tmp_path, **changes)
    with pytest.raises(ProtocolError, match=message) as err:
        read_job(spec, job.model_file, tmp_path / "pixels.npy")
    assert err.value.code == ExitCode.BAD_JOB and "\n" not in str(err.value)


def test_result_validation(tmp_path):
    m = Measurement(np.array([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]]), [0.01, 0.02], 0.1, 0.02,
                    {"runtime": "x", "odd": float("nan"), "obj": object()})
    data = result_data("j1", m, python="3.11.2")
    assert data["session"]["odd"] is None and isinstance(data["session"]["obj"], str)
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    back = read_result(path, "j1", 2, 5, 1000)
    np.testing.assert_array_equal(back.topk, m.topk)
    for broken, message in [({**data, "complete": False}, "incomplete"), ({**data, "job_id": "j2"}, "belongs to job"),
                            ({**data, "latencies_s": [0.01, -1]}, "non-positive"),
                            ({**data, "topk": [[1, 2, 3, 4, 5], [1, 2, 3, 4, 1000]]}, "malformed top-5"),
                            ({**data, "first_s": True}, "bad first_s")]:
        path.write_text(json.dumps(broken))
        with pytest.raises(ProtocolError, match=message):
            read_result(path, "j1", 2, 5, 1000)
    path.write_text(json.dumps(data)[:50])
    with pytest.raises(ProtocolError, match="truncated or garbage"):
        read_result(path, "j1", 2, 5, 1000)


def test_exit_code_meanings():
    assert ExitCode.meaning(3) == "model failed" and ExitCode.meaning(137).startswith("killed")
    assert ExitCode.meaning(99) == "runner crashed"


# -- --device specs --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, kind, address", [
    ("host", "host", ""), (None, "host", ""), ("adb:emulator-5554", "adb", "emulator-5554"),
    ("R58M12ABCDE", "adb", "R58M12ABCDE"), ("192.168.1.7:5555", "adb", "192.168.1.7:5555"),
    ("adb:192.168.1.7:5555", "adb", "192.168.1.7:5555"), ("ssh://pi@rpi4.local:2222", "ssh", "rpi4.local"),
])
def test_device_specs_parse(spec, kind, address):
    parsed = parse_device_spec(spec)
    assert (parsed.kind, parsed.address) == (kind, address)


@pytest.mark.parametrize("spec", ["bogus:xyz", "adb:", "adb:two words", "http://x", "ssh://pi@host/path", "a b"])
def test_bad_device_specs_list_the_accepted_forms(spec):
    with pytest.raises(TargetError) as err:
        parse_device_spec(spec)
    assert "\n" not in str(err.value)
    if not spec.startswith("ssh://"):
        assert "host, adb:SERIAL or ssh://user@host[:port]" in str(err.value)


def test_building_a_target_contacts_nothing(monkeypatch):
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "1")  # nothing listens there: any contact would fail
    for spec in ("adb:no-such-device", "ssh://nobody@127.0.0.1:1"):
        target = resolve_target(spec, io_timeout_s=1)
        assert target._transport is None
        target.close()  # closing a target that never connected is a no-op


def test_plugin_bogus_device_is_a_usage_error(run_aiotbench):
    run = run_aiotbench("--device=bogus:xyz", "--collect-only", "-q")
    assert run.returncode == 4, run.stdout
    assert "expected host, adb:SERIAL or ssh://user@host[:port]" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_plugin_collects_remote_cases_without_connecting(run_aiotbench, tmp_path):
    from tests.helpers.catalogs import tflite_entry, write_catalog

    catalog = write_catalog(tmp_path / "cat.toml", [tflite_entry("m", shared_model(), 128)])
    run = run_aiotbench("--device=adb:no-such-device", "--device=ssh://nobody@127.0.0.1:1", "--collect-only", "-q",
                        catalogs=[catalog], env={"ANDROID_ADB_SERVER_PORT": "1"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "@adb:no-such-device" in run.stdout and "@ssh://nobody@127.0.0.1:1" in run.stdout


def test_one_line_is_the_one_rule_for_error_lines():
    from pytest_aiotbench.errors import one_line

    wrapped = RuntimeError("The following operation failed in the TorchScript interpreter.\n  File x, line 3\n"
                           "RuntimeError: shape '[1, 3, 224, 224]' is invalid\n")
    assert one_line(wrapped) == "RuntimeError: shape '[1, 3, 224, 224]' is invalid"
    assert one_line(ValueError("first\nsecond")) == "first"
    assert one_line(ValueError("bad\nthing"), with_type=True) == "ValueError: bad"
    assert one_line(KeyError()) == "KeyError"
    assert one_line("Traceback...\n  line\naiotbench-runner: model failed\n\n", last=True) == "aiotbench-runner: model failed"
    assert one_line("", last=True) == "no output"
    assert len(one_line("x" * 1000, last=True)) == 300


@pytest.mark.parametrize("job_text, code, message", [
    ("{not json", ExitCode.BAD_JOB, "cannot read job.json"),
    ('{"format": "aiotbench-job/9"}', ExitCode.BAD_JOB, "job format 'aiotbench-job/9'"),
])
def test_runner_bad_job_exit_codes(tmp_path, job_text, code, message):
    job = make_job(shared_model(), images=1)
    np.save(tmp_path / "pixels.npy", job.pixels)
    (tmp_path / "job.json").write_text(job_text)
    proc = subprocess.run([sys.executable, str(bundle.build_runner_bundle()), "--job", "job.json", "--model",
                           str(job.model_file), "--pixels", "pixels.npy", "--out", "result.json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == code and message in proc.stderr
    assert proc.stderr.startswith("aiotbench-runner: ") and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "result.json").exists()
