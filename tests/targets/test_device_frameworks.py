"""ncnn, MNN and OpenVINO jobs on a device (issue 20, item 4): the framework is chosen per job and its runtime runs on
the device; the files a model loads beside it (ncnn's .bin, OpenVINO's IR weights) travel with the job and the
runner checks their sha256 like the model's; a device without the runtime skips the case naming the package (the
session goes on); benchmark_model stays TFLite-only. The device is the project's adb test device
(tests/helpers/adbdevice: the real adb server, the real runner, this machine's runtimes)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_aiotbench.targets.device.protocol import ExitCode, job_spec
from pytest_aiotbench.frameworks.base import FrameworkUnavailable, ModelLoadError
from pytest_aiotbench.frameworks.openvino import _glibc_note
from pytest_aiotbench.files import file_sha256
from pytest_aiotbench.targets import TargetError, resolve_target
from pytest_aiotbench.targets.bundle import build_runner_bundle
from pytest_aiotbench.targets.remote import job_model_files

from tests.helpers.adbdevice.fixtures import _adb_device_session, adb_device, adb_server, leftovers  # noqa: F401
from tests.helpers.adbdevice.jobs import RecordingTiming, host_topk, make_job, shared_model
from tests.helpers.zoo import ENGINE_MODEL as NAME, ENGINE_PINS as PINS, build_engine_zoo

pytestmark = pytest.mark.device

ENGINES = ("ncnn", "openvino", "mnn")
FILES = {"ncnn": f"{NAME}.ncnn.param", "openvino": f"{NAME}.xml", "mnn": f"{NAME}.mnn"}


def _job(framework: str, model: Path, images: int = 8):
    """make_job's shared crops (128 px, raw-pixel normalization, which the zoo build below also uses), as an NCHW
    job of ``framework``."""
    job = make_job(shared_model(), images=images)
    return dataclasses.replace(job, framework=framework, model_file=Path(model),
                               preprocess=dataclasses.replace(job.preprocess, layout="NCHW"))


@pytest.fixture(scope="module")
def engine_zoo(tmp_path_factory) -> Path:
    return build_engine_zoo(tmp_path_factory, ENGINES) / NAME


@pytest.mark.slow
def test_engine_jobs_carry_their_weights_to_the_device_and_match_the_host(adb_device, engine_zoo):
    target = resolve_target(f"adb:{adb_device.serial}")
    for fw in ENGINES:
        job = _job(fw, engine_zoo / FILES[fw])
        m = target.run(job, RecordingTiming())
        np.testing.assert_array_equal(m.topk, host_topk(job), err_msg=fw)
        assert m.session["runtime"] == fw and m.timed_on == "device"
        assert m.session["target"] == f"adb:{adb_device.serial}" and m.session["coverage"]["complete"]
        if fw == "openvino":  # the framework's execution device stays in its field, as on the host
            assert m.session["device"] == "CPU" and m.session["precision"] == "f32"
    assert leftovers(adb_device) == []


@pytest.mark.slow
def test_a_device_without_the_runtimes_skips_each_case_naming_the_package(adb_device, engine_zoo, tmp_path):
    """A device whose Python has numpy and LiteRT but none of the three engines (as a phone with an older env)."""
    blocker = tmp_path / "blocker"
    for module in ("ncnn", "MNN", "openvino"):
        (blocker / module).mkdir(parents=True)
        (blocker / module / "__init__.py").write_text(f"raise ImportError(\"No module named '{module}'\")\n")
    python = tmp_path / "python-without-engines"
    python.write_text(f"#!/bin/sh\nPYTHONPATH={blocker} exec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    adb_device.python = str(python)
    adb_device._setup_sandbox()
    try:
        target = resolve_target(f"adb:{adb_device.serial}")
        for fw in ENGINES:
            with pytest.raises(FrameworkUnavailable) as info:
                target.run(_job(fw, engine_zoo / FILES[fw], images=2), RecordingTiming())
            message = str(info.value)
            assert f"missing on adb:{adb_device.serial}" in message and PINS[fw] in message, message
            assert f"{fw} runtime is not installed on this device" in message and "-m pip install" in message
            assert "\n" not in message and "Traceback" not in message
        # The TFLite case on the same device still runs: one missing runtime never ends the session.
        job = make_job(shared_model(), images=2)
        np.testing.assert_array_equal(target.run(job, RecordingTiming()).topk, host_topk(job))
        assert leftovers(adb_device) == []
    finally:
        adb_device.python = sys.executable
        adb_device._setup_sandbox()


def _runner(folder: Path, spec: dict, model: str, env: dict | None = None) -> subprocess.CompletedProcess:
    (folder / "job.json").write_text(json.dumps(spec))
    return subprocess.run([sys.executable, str(build_runner_bundle()), "--job", "job.json", "--model", model,
                           "--pixels", "pixels.npy", "--out", "result.json"], cwd=folder, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_an_installed_openvino_that_cannot_start_is_a_runtime_skip_with_its_reason(tmp_path):
    """As under an emulator whose CPU lacks what the wheel needs: `import openvino` raising anything but ImportError
    is the runner's 'runtime missing' exit (the host skips the case) with the runtime's own line."""
    blocker = tmp_path / "blocker" / "openvino"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise OSError('libopenvino.so.2026.4.1: cannot enable executable stack')\n")
    model = tmp_path / "m.xml"
    model.write_text("<net/>")
    job = _job("openvino", model, images=1)
    np.save(tmp_path / "pixels.npy", job.pixels)
    proc = _runner(tmp_path, job_spec(job, "j", "pytest_aiotbench.frameworks.openvino:OpenVino"), model.name,
                   env={"PYTHONPATH": str(blocker.parent)})
    assert proc.returncode == ExitCode.RUNTIME, proc.stderr
    assert proc.stderr.strip() == ("aiotbench-runner: openvino runtime cannot start here: import openvino failed: "
                                   "OSError: libopenvino.so.2026.4.1: cannot enable executable stack"), proc.stderr


@pytest.mark.slow
def test_runner_refuses_a_companion_whose_bytes_differ_or_that_was_not_pushed(tmp_path):
    """The runner checks every listed file's sha256 before the runtime reads any (ncnn would load a short .bin)."""
    param, weights = tmp_path / "m.ncnn.param", tmp_path / "m.ncnn.bin"
    param.write_text("7767517\n")
    weights.write_bytes(os.urandom(4096))
    job = _job("ncnn", param, images=2)
    np.save(tmp_path / "pixels.npy", job.pixels)
    sums = {param.name: file_sha256(param), weights.name: file_sha256(weights)}
    weights.write_bytes(weights.read_bytes()[:1000])  # cut short on the way
    proc = _runner(tmp_path, job_spec(job, "j1", "pytest_aiotbench.frameworks.ncnn:Ncnn", files=sums), param.name)
    assert proc.returncode == ExitCode.BAD_JOB, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("aiotbench-runner: model file m.ncnn.bin: sha256 ") and "cut short" in line, line
    assert "\n" not in line and not (tmp_path / "result.json").exists()
    weights.unlink()
    proc = _runner(tmp_path, job_spec(job, "j2", "pytest_aiotbench.frameworks.ncnn:Ncnn", files=sums), param.name)
    assert proc.returncode == ExitCode.BAD_JOB and "model file m.ncnn.bin was not pushed" in proc.stderr, proc.stderr
    bad = {"../etc/passwd": "0" * 64}
    proc = _runner(tmp_path, job_spec(job, "j3", "pytest_aiotbench.frameworks.ncnn:Ncnn", files=bad), param.name)
    assert proc.returncode == ExitCode.BAD_JOB and "files must map plain file names" in proc.stderr, proc.stderr


def test_the_host_sends_each_framework_s_companions_and_refuses_a_missing_one(tmp_path):
    for fw, name, companion in (("ncnn", "m.ncnn.param", "m.ncnn.bin"), ("openvino", "m.xml", "m.bin")):
        model = tmp_path / name
        model.write_text("x")
        job = _job(fw, model, images=1)
        with pytest.raises(ModelLoadError, match=f"{companion}, which {fw} loads beside it, is missing"):
            job_model_files(job)
        (tmp_path / companion).write_bytes(b"w")
        assert job_model_files(job) == [model, tmp_path / companion]
    for fw, name in (("mnn", "m.mnn"), ("openvino", "m.onnx"), ("tflite", "m.tflite")):  # one file: nothing beside
        (tmp_path / name).write_text("x")
        assert job_model_files(_job(fw, tmp_path / name, images=1)) == [tmp_path / name]
    (tmp_path / "job.json").write_text("x")
    with pytest.raises(ModelLoadError, match="cannot push a model file of that name"):
        job_model_files(_job("tflite", tmp_path / "job.json", images=1))


def test_benchmark_model_stays_tflite_only(tmp_path):
    binary = tmp_path / "benchmark_model"
    binary.write_text("#!/bin/sh\n")  # never pushed: the job is refused before the device is contacted
    target = resolve_target("adb:never-connected", benchmark_model=str(binary))
    for fw in ENGINES:
        with pytest.raises(TargetError, match=f"benchmark_model runs TFLite models only, not {fw}"):
            target.run(_job(fw, tmp_path / "m", images=1), RecordingTiming())


def test_an_old_aarch64_glibc_is_named_with_the_openvino_hint():
    note = _glibc_note("aarch64", ("glibc", "2.31"))
    assert "need glibc >= 2.35" in note and "glibc 2.31" in note and "openvino==2023.1.0" in note
    assert _glibc_note("aarch64", ("glibc", "2.36")) == "" and _glibc_note("x86_64", ("glibc", "2.31")) == ""
