"""One case-entry builder (issue 12.2), plain JSON that travels from xdist workers (issue 8, bad 6), every report
kind the tests produce loads in the plugin's own tools (bad 7), and the option parsers' ranges (12.4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import execnet
import jsonschema
import numpy as np
import pytest

from pytest_aiotbench.inputs import options
from pytest_aiotbench.report import read as reports
from pytest_aiotbench.inputs.catalog import Case
from pytest_aiotbench.inputs.dataset import open_dataset
from pytest_aiotbench.report.entry import EntryError, case_entry, plain_json
from pytest_aiotbench.inputs.thresholds import Requirement
from pytest_aiotbench.pipeline import measured_entry
from pytest_aiotbench.frameworks import PrepareOptions
from pytest_aiotbench.inputs.preprocess import PixelCache, PreprocessSpec
from pytest_aiotbench.report.schema import CASE
from pytest_aiotbench.run.job import Job
from pytest_aiotbench.targets.host import execute
from pytest_aiotbench.run.timing import PerfCounterTiming
from tests.helpers.catalogs import dedent
from tests.helpers.reports import make_case, make_report
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR, TORCH_DIR

pytestmark = pytest.mark.real

IDENTITY = dict(id="m-tflite-int8", model="m", framework="tflite", quant="int8", file="/models/m.tflite")


def _exact_json_types(value) -> bool:
    if isinstance(value, dict):
        return type(value) is dict and all(type(k) is str and _exact_json_types(v) for k, v in value.items())
    if isinstance(value, list):
        return type(value) is list and all(_exact_json_types(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


@pytest.mark.parametrize("kind", ["skipped", "failed", "error"])
def test_unmeasured_entries_of_every_status_match_the_schema(kind):
    entry = case_entry(**IDENTITY, status=kind, reason="why", gflops=0.3, min_top1=0.5, result_id="x@host",
                       device="host")
    assert reports.first_schema_violation(entry, CASE) is None
    jsonschema.validate(entry, CASE)  # and by an independent validator
    assert entry["top1"] is None and entry["latency_ms"] is None and entry["reason"] == "why"
    assert "weights" not in entry and "runtime" not in entry  # optional keys: left out when unknown


def test_helper_reports_come_from_the_same_builder_and_round_trip(tmp_path):
    cases = [make_case("a-tflite-int8"), make_case("b-onnxruntime-fp32", top1=None, top5=None),
             make_case("c-tflite-int8", status="skipped"), make_case("d-tflite-int8", status="error")]
    for case in cases:
        assert reports.first_schema_violation(case, CASE) is None
        assert list(case)[:5] == ["id", "model", "framework", "quant", "file"]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(make_report(cases)))
    assert [c["id"] for c in reports.load_report(path)["cases"]] == [c["id"] for c in cases]


def test_plain_json_converts_subclasses_and_numpy_and_names_what_cannot_travel():
    class Version(str):
        pass

    value = plain_json({"v": Version("2.13.0"), "n": np.int64(3), "f": np.float32(0.5), "t": (1, 2),
                        "b": np.bool_(True), "a": np.arange(2)})
    assert value == {"v": "2.13.0", "n": 3, "f": 0.5, "t": [1, 2], "b": True, "a": [0, 1]}
    assert _exact_json_types(value)
    with pytest.raises(EntryError, match=r"case x.runtime.handle is a builtins.object, not a JSON value"):
        plain_json({"runtime": {"handle": object()}}, "case x")
    with pytest.raises(EntryError, match=r"top1 = nan: not a finite number"):
        plain_json({"top1": float("nan")}, "case x")
    with pytest.raises(TypeError, match="unknown key"):
        case_entry(**IDENTITY, status="passed", topone=0.5)


# --------------------------------------------------------------- per framework: entries travel through execnet

@pytest.fixture(scope="module")
def tiny_pte(tmp_path_factory) -> Path:
    """A tiny XNNPACK-delegated ExecuTorch program (8x8 input, 10 classes), exported in a child process."""
    pytest.importorskip("executorch")
    out = tmp_path_factory.mktemp("pte") / "tiny.pte"
    code = dedent(f"""
        import warnings; warnings.simplefilter("ignore")
        import torch
        from executorch.exir import to_edge_transform_and_lower
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 10)).eval()
        ep = torch.export.export(m, (torch.zeros(1, 3, 8, 8),))
        prog = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
        open({str(out)!r}, "wb").write(prog.buffer)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


FRAMEWORK_CASES = {
    "tflite": (TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite", 128, "NHWC", 1001),
    "onnxruntime": (TORCH_DIR / "mobilenet_v1_0.25_128.onnx", 128, "NCHW", 1001),
    "pytorch-mobile": (TORCH_DIR / "mobilenet_v1_0.25_128.pt", 128, "NCHW", 1001),
    "executorch": (None, 8, "NCHW", 10),
}


@pytest.mark.parametrize("framework", [
    "tflite", "onnxruntime", "pytorch-mobile", pytest.param("executorch", marks=pytest.mark.slow)])
def test_measured_entry_of_every_framework_is_plain_json_that_xdist_can_carry(framework, request, tmp_path,
                                                                              shared):
    file, size, layout, classes = FRAMEWORK_CASES[framework]
    if file is None:
        file = request.getfixturevalue("tiny_pte")
    spec = PreprocessSpec(size, 0 if size < 32 else round(size / 0.875), "RGB", layout, (127.5,) * 3, (127.5,) * 3)
    ds = open_dataset(IMAGENET_500, limit=3)
    pixels = ds.pixels(spec, PixelCache(tmp_path / "cache"))
    case = Case("m", framework, "q", file, spec, classes, classes == 1001, gflops=0.01)
    job = Job(case_id=case.id, framework=framework, model_file=file, options=PrepareOptions(threads=1),
              pixels=pixels, preprocess=spec, warmup=1, num_classes=classes, background=case.background)
    measurement = execute(job, PerfCounterTiming())
    entry = measured_entry(case, measurement, ds, None, Requirement(0.0), 1)
    assert _exact_json_types(entry), entry["runtime"]
    assert reports.first_schema_violation(entry, CASE) is None
    jsonschema.validate(entry, CASE)
    assert execnet.loads(execnet.dumps(entry)) == entry  # what xdist does with user_properties
    assert entry["images"] == 3 and len(entry["per_image"]["top5"]) == 3 and entry["top1"] is not None


def test_a_result_that_cannot_travel_fails_its_case_with_one_line(pytester, shared):
    """A framework whose session reports an object in ``info``: the case fails naming the key; no INTERNALERROR."""
    site = pytester.mkdir("site")
    (site / "objfw.py").write_text(dedent("""
        import numpy as np
        from pytest_aiotbench.frameworks.base import TensorSpec

        class Session:
            input = TensorSpec((1, 8, 8, 3), np.dtype(np.float32))
            info = {"runtime": "objfw", "handle": object()}
            def infer(self, x):
                return np.arange(10, dtype=np.float32)
            def close(self):
                pass

        class ObjFramework:
            name = "objfw"
            requirement = "objfw"
            def prepare(self, model_file, options):
                return Session()
    """))
    dist = site / "objfw-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: objfw\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[aiotbench.frameworks]\nobjfw = objfw:ObjFramework\n")
    pytester.syspathinsert(site)
    (pytester.path / "m.bin").write_bytes(b"weights")
    (pytester.path / "c.toml").write_text(dedent("""
        [[model]]
        name = "obj"
        framework = "objfw"
        quant = "fp32"
        file = "m.bin"
        input_size = 8
        resize = 0
        num_classes = 10
    """))
    result = pytester.runpytest_inprocess("--aiotbench", "--aiotbench-no-builtin", "-p", "no:cacheprovider",
                                          "--aiotbench-catalog=c.toml", "--aiotbench-images=2",
                                          "--aiotbench-warmup=0", "--aiotbench-json=r.json",
                                          f"--aiotbench-cache={pytester.path / 'cache'}")
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out[-3000:]
    message = ("obj-objfw-fp32: result cannot be reported: case obj-objfw-fp32.runtime.handle is a "
               "builtins.object, not a JSON value")
    # Once in the failure section; the short summary repeats it (in full where pytest sees CI=true).
    assert sum(message in line for line in out.splitlines() if not line.startswith("FAILED ")) == 1
    assert "Traceback" not in out and "INTERNALERROR" not in out
    report = reports.load_report(pytester.path / "r.json")
    assert report["cases"][0]["status"] == "failed" and report["cases"][0]["reason"] == message


# ------------------------------------------------------------------------------------------- option parsers

@pytest.mark.parametrize("parse,good,bad,valid", [
    (options.integer(1), [("1", 1), ("16", 16), (3, 3)], ["0", "-3", "1.5", "two", "", True], "an integer >= 1"),
    (options.integer(0), [("0", 0)], ["-1"], "an integer >= 0"),
    (options.number(0.0, 1.0), [("0", 0.0), ("0.7", 0.7), ("1", 1.0)], ["70", "-0.1", "nan", "inf", "x"],
     "a number in [0, 1]"),
    (options.number(0.0, low_open=True), [("0.5", 0.5), ("900", 900.0)], ["0", "-1", "inf"], "a number > 0"),
])
def test_option_parsers_check_their_range(parse, good, bad, valid):
    for raw, value in good:
        assert parse(raw) == value
    for raw in bad:
        with pytest.raises(ValueError, match=f"expected {valid.replace('[', '.').replace(']', '.')}"):
            parse(raw)


def test_every_option_is_declared_once_with_a_unique_flag_and_ini_key():
    declared = options.CORE_OPTIONS + options.GATE_OPTIONS
    assert len({o.flag for o in declared}) == len({o.ini for o in declared}) == len(declared)
    assert all(o.ini == o.flag.removeprefix("--").replace("-", "_") for o in declared)
