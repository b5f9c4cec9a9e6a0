"""Issue 18: targets come through the ``aiotbench.targets`` entry-point group, like frameworks: a new transport is one
module and one entry point. The built-in ones are found there too, loading one imports only its thin module (never
adbutils or paramiko), and a third-party target registered by an installed distribution runs real cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from pytest_aiotbench import targets
from pytest_aiotbench.targets import TargetError, accepted_forms, available_targets, parse_device_spec, target_type

BUILTIN_FORMS = "host, adb:SERIAL or ssh://user@host[:port]"


def _python(code: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_the_builtin_targets_are_registered_entry_points():
    assert available_targets()[:3] == ["host", "adb", "ssh"]
    for name in ("host", "adb", "ssh"):
        cls = target_type(name)
        assert cls.scheme == name and cls.__module__ == f"pytest_aiotbench.targets.{name}"
    assert accepted_forms() == BUILTIN_FORMS == targets.ACCEPTED_FORMS
    assert "benchmark_model" in target_type("adb").options and "key_filename" not in target_type("adb").options
    assert not target_type("host").options


@pytest.mark.parametrize("spec, loaded, not_loaded", [
    ("host", {"host"}, {"adb", "ssh", "remote", "benchmark_model"}),
    ("adb:emulator-5554", {"adb"}, {"ssh", "benchmark_model"}),
    ("R58M12ABCDE", {"adb"}, {"ssh"}),  # a bare serial: host is asked first, then adb takes it
    ("ssh://pi@127.0.0.1:2222", {"ssh"}, {"adb"}),
])
def test_resolving_a_target_imports_only_its_module_and_no_transport_library(spec, loaded, not_loaded):
    proc = _python(f"""
        import json, sys
        from pytest_aiotbench.targets import parse_device_spec, resolve_target
        parse_device_spec({spec!r})
        target = resolve_target({spec!r}, io_timeout_s=5, key_filename=None)
        mods = [m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("pytest_aiotbench.targets.")]
        print(json.dumps([mods, "adbutils" in sys.modules, "paramiko" in sys.modules]))
    """, env={"ANDROID_ADB_SERVER_PORT": "1"})  # nothing listens there: a contact would fail
    assert proc.returncode == 0, proc.stderr
    mods, adbutils, paramiko = json.loads(proc.stdout)
    assert loaded <= set(mods) and not (not_loaded & set(mods)), mods
    assert (adbutils, paramiko) == (False, False)


def test_benchmark_model_stays_the_adb_targets_variant(tmp_path):
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")
    from pytest_aiotbench.targets.benchmark_model import BenchmarkModelTarget

    target = targets.resolve_target("adb:emulator-5554", benchmark_model=str(binary), python="python3",
                                    key_filename="ignored-for-adb")
    assert type(target) is BenchmarkModelTarget and target.python is None and target._transport is None
    with pytest.raises(TargetError, match="benchmark_model runner is for adb devices; ssh devices run Python"):
        targets.resolve_target("ssh://pi@127.0.0.1", benchmark_model=str(binary))
    assert type(targets.resolve_target("host", benchmark_model=str(binary))).__name__ == "HostTarget"


@pytest.mark.parametrize("spec", ["nosuch:x", "host:", "adb:", "a/b", "ssh:/x"])
def test_a_value_no_target_accepts_lists_the_registered_forms(spec):
    with pytest.raises(TargetError) as err:
        parse_device_spec(spec)
    assert str(err.value) == f"--device={spec!r}: expected {BUILTIN_FORMS}"


def test_unavailable_is_refused_before_any_target_is_asked():
    with pytest.raises(TargetError, match="the arm board is not available"):
        parse_device_spec("unavailable:arm board")
    with pytest.raises(TargetError, match="no target 'nosuch' is registered; registered: host, adb, ssh"):
        target_type("nosuch")


# -- a third-party target: one module and one entry point in an installed distribution --------------------------------
LOOP_TARGET = '''
"""A transport in one file: runs each job in this process through the host code, as a board would run it."""
import json
import os

from pytest_aiotbench.targets import SchemeTarget
from pytest_aiotbench.targets.host import execute


class LoopTarget(SchemeTarget):
    scheme = "loop"
    forms = "loop:NAME"
    options = frozenset({"deadline_s"})

    def __init__(self, name, **given):
        self.name = f"loop:{name}"
        self.given = given

    def describe(self):
        return {"target": self.name, "name": "loopback board"}

    def run(self, job, timing):
        with open(os.environ["LOOP_LOG"], "a") as fh:
            fh.write(json.dumps({"target": self.name, "case": job.case_id, "options": self.given}) + "\\n")
        return execute(job, timing)

    def close(self):
        pass
'''


@pytest.fixture
def loop_dist(tmp_path) -> dict:
    """A throw-away distribution on sys.path (PYTHONPATH): its dist-info names the entry point, nothing installed."""
    site = tmp_path / "site"
    info = site / "aiotbench_loop-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: aiotbench-loop\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[aiotbench.targets]\nloop = loop_target:LoopTarget\n")
    (site / "loop_target.py").write_text(LOOP_TARGET)
    log = tmp_path / "loop.jsonl"
    return {"env": {"PYTHONPATH": os.pathsep.join([str(site), *sys.path]), "LOOP_LOG": str(log)}, "log": log}


@pytest.mark.real
@pytest.mark.slow
def test_a_third_party_target_is_found_and_runs_the_cases(run_aiotbench, tmp_path, shared, loop_dist):
    from tests.helpers.catalogs import write_catalog
    from tests.helpers.copies import labeled_dataset
    from tests.inputs.test_faults_catalog import small_tflite

    data = labeled_dataset(tmp_path / "data", n=4)
    catalog = write_catalog(tmp_path / "cat.toml", [small_tflite(min_top1=0.0)])
    run = run_aiotbench("--aiotbench-device=loop:bench1", "--aiotbench-warmup=1", "--aiotbench-device-deadline=77",
                        "--aiotbench-ssh-key=/nonexistent-key-not-a-loop-option", catalogs=[catalog], dataset=data,
                        env=loop_dist["env"])
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    jobs = [json.loads(line) for line in loop_dist["log"].read_text().splitlines()]
    # the target got its own option only (the ssh key is no option of its)
    assert jobs == [{"target": "loop:bench1", "case": "mobilenet_v1_025-tflite-int8", "options": {"deadline_s": 77.0}}]
    report = run.report
    assert report["device"]["target"] == "loop:bench1" and report["device"]["name"] == "loopback board"
    (case,) = report["cases"]
    assert case["status"] == "passed" and case["device"] == "loop:bench1" and len(case["per_image"]["latency_ms"]) == 4


@pytest.mark.slow
def test_an_unknown_scheme_is_one_line_listing_every_registered_form(run_aiotbench, loop_dist):
    for spec in ("nosuch:x", "loop:"):
        run = run_aiotbench(f"--aiotbench-device={spec}", "--collect-only", "-q", env=loop_dist["env"])
        assert run.returncode == 4, run.stdout + run.stderr
        errors = [line for line in run.stderr.splitlines() if line.strip()]
        assert errors == [f"ERROR: --device={spec!r}: expected host, adb:SERIAL, ssh://user@host[:port] or loop:NAME"]
        assert "Traceback" not in run.stdout + run.stderr
