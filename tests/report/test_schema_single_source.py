"""The JSON Schema file is the one list of a case entry's keys (entry.REQUIRED/OPTIONAL and the reader derive from
schema.CASE), and the plugin's own validator agrees with jsonschema on a corpus of good and broken reports."""

from __future__ import annotations

import copy
import json
import math

import jsonschema
import pytest

from pytest_aiotbench.report import entry, read
from pytest_aiotbench.report.read import _from_pytest_benchmark, first_schema_violation
from pytest_aiotbench.report.schema import CASE, REPORT
from pytest_aiotbench.verdicts import repeats, validity
from tests.helpers.reports import make_case, make_report

# The keys the writer wrote before they were derived from the schema, in the order it wrote them: the derived
# lists must write the same JSON.
WRITTEN_ALWAYS = ("id", "model", "framework", "quant", "file", "file_sha256", "images", "top1", "top5", "min_top1",
                  "latency_ms", "prepare_ms", "first_ms", "vips", "vops", "gflops", "status", "reason", "per_image")
WRITTEN_WHEN_KNOWN = ("result_id", "device", "weights", "reference_top1", "warmup", "images_per_s", "runtime",
                      "top1_ci95", "min_top1_rule", "min_top1_reference", "fail_on")


# ------------------------------------------------------------------------------------------- one key list

def test_the_entrys_key_lists_are_the_schemas_and_write_what_they_wrote():
    assert entry.REQUIRED == WRITTEN_ALWAYS
    assert entry.OPTIONAL[:len(WRITTEN_WHEN_KNOWN)] == WRITTEN_WHEN_KNOWN
    assert set(entry.REQUIRED) | set(entry.OPTIONAL) == set(CASE["properties"])
    assert set(CASE["required"]) <= set(entry.REQUIRED)


def test_a_key_given_a_default_in_the_schema_is_always_written():
    """The schema decides: a key it requires or gives a default is written on every entry, the others when known."""
    skipped = entry.case_entry(id="m-x-y", model="m", framework="x", quant="y", file="m.bin", status="skipped")
    assert list(skipped) == list(entry.REQUIRED) and skipped["per_image"] is None and "weights" not in skipped
    assert (entry.REQUIRED, entry.OPTIONAL) == entry.key_lists(CASE)
    case = copy.deepcopy(CASE)
    case["properties"]["weights"]["default"] = None
    del case["properties"]["gflops"]["default"]
    always, when_known = entry.key_lists(case)
    assert "weights" in always and "weights" not in when_known
    assert "gflops" in when_known and "gflops" not in always
    case["required"].append("warmup")
    assert "warmup" in entry.key_lists(case)[0]


def test_every_key_a_full_entry_writes_is_in_the_schema_in_the_schemas_order():
    full = entry.case_entry(**{k: v for k, v in make_case("a-tflite-int8").items() if v is not None},
                            result_id="a-tflite-int8@host", device="host", weights="pretrained", reference_top1=0.7,
                            warmup=5, images_per_s=200.0, runtime={"threads": 1}, top1_ci95=[0.6, 0.8],
                            min_top1_rule="0.9x", min_top1_reference={"id": "a", "top1": 0.7}, fail_on=["top1:-1pt"])
    order = list(CASE["properties"])
    assert list(full) == sorted(full, key=order.index)
    assert first_schema_violation(full, CASE) is None
    jsonschema.validate(full, CASE)
    with pytest.raises(TypeError, match="unknown key"):
        entry.case_entry(id="m", model="m", framework="x", quant="y", file="m.bin", status="passed", speed=1)


def test_the_reader_fills_a_pytest_benchmark_entry_with_the_schemas_required_keys():
    bench = {"name": "test_x", "param": "m-x-y", "extra_info": {"model": "m", "latency_ms": None},
             "stats": {"rounds": 3}}
    report = _from_pytest_benchmark({"benchmarks": [bench], "machine_info": {}}, "b.json")
    case = report["cases"][0]
    assert set(CASE["required"]) <= set(case)
    assert first_schema_violation(report, REPORT) is None
    assert {k: case[k] for k in ("framework", "file", "file_sha256", "top1", "status", "images")} == \
           {"framework": "", "file": "", "file_sha256": None, "top1": None, "status": "passed", "images": 3}


# ----------------------------------------------------------------------- two validators, one verdict

def _good_reports() -> dict[str, dict]:
    measured = make_case("a-tflite-int8")
    measured["top1_ci95"] = [0.66, 0.74]
    measured["validity"] = validity.assess(measured["per_image"]["latency_ms"], None)
    runs = []
    for index in (1, 2):
        run = make_case("r-tflite-int8", seed=index)
        run["repeat"] = {"index": index, "of": 2}
        run["validity"] = validity.assess(run["per_image"]["latency_ms"], None)
        runs.append(run)
    return {
        "measured": make_report([measured]),
        "every status": make_report([make_case("a-tflite-int8"), make_case("b-onnx-fp32", status="skipped"),
                                     make_case("c-tflite-int8", status="error"),
                                     make_case("d-tflite-fp32", top1=None, top5=None)]),
        "repeats": make_report([repeats.combine(runs)]),
        "no cases": make_report([]),
    }


def _set(path):
    def change(report, value):
        target = report
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _drop(path):
    def change(report, _):
        target = report
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


C = ("cases", 0)
BROKEN = [
    ("top1_ci95 of 3", _set(C + ("top1_ci95",)), [0.6, 0.7, 0.8]),
    ("top1_ci95 of 1", _set(C + ("top1_ci95",)), [0.6]),
    ("top1_ci95 empty", _set(C + ("top1_ci95",)), []),
    ("top1_ci95 above 1", _set(C + ("top1_ci95",)), [0.6, 1.2]),
    ("images as text", _set(C + ("images",)), "200"),
    ("images negative", _set(C + ("images",)), -1),
    ("images fractional", _set(C + ("images",)), 2.5),
    ("top1 as text", _set(C + ("top1",)), "0.7"),
    ("top1 above 1", _set(C + ("top1",)), 1.5),
    ("top1 boolean", _set(C + ("top1",)), True),
    ("status unknown", _set(C + ("status",)), "ok"),
    ("latency mean as text", _set(C + ("latency_ms", "mean")), "5"),
    ("latency_ms a list", _set(C + ("latency_ms",)), [5.0]),
    ("per-image latency text", _set(C + ("per_image", "latency_ms")), ["5.0"]),
    ("fail_on empty", _set(C + ("fail_on",)), []),
    ("fail_on a string", _set(C + ("fail_on",)), "top1:-1pt"),
    ("validity without valid", _drop(C + ("validity", "valid")), None),
    ("validity reasons text", _set(C + ("validity", "reasons")), "drift"),
    ("device a number", _set(C + ("device",)), 3),
    ("images_per_s text", _set(C + ("images_per_s",)), "200"),
    ("reference_top1 in percent", _set(C + ("reference_top1",)), 71.9),
    ("schema id", _set(("schema",)), "aiotbench/2"),
    ("score cases text", _set(("score", "cases")), "1"),
    ("score partial missing", _drop(("score", "partial")), None),
    ("dataset missing", _drop(("dataset",)), None),
    ("cases an object", _set(("cases",)), {}),
    ("latency_ms without p90", _drop(C + ("latency_ms", "p90")), None),
    *[(f"case without {key}", _drop(C + (key,)), None) for key in CASE["required"]],
    *[(f"report without {key}", _drop((key,)), None) for key in REPORT["required"]],
    ("NaN top1", _set(C + ("top1",)), math.nan),
    ("NaN latency mean", _set(C + ("latency_ms", "mean")), math.nan),
    ("Infinity per-image latency", _set(C + ("per_image", "latency_ms")), [5.0, math.inf]),
    ("-Infinity vips", _set(C + ("vips",)), -math.inf),
    ("NaN score", _set(("score", "vips")), math.nan),
]


def _strict_json(text: str):
    """What a standard JSON reader makes of the text: NaN/Infinity are not JSON."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def _verdicts(report: dict) -> tuple[bool, bool]:
    """(valid for jsonschema on the standard JSON document, valid for the plugin's own validator on what
    load_report parses)."""
    text = json.dumps(report)  # allow_nan: the file a careless writer would produce
    try:
        theirs = jsonschema.Draft202012Validator(REPORT).is_valid(_strict_json(text))
    except ValueError:
        theirs = False
    ours = first_schema_violation(json.loads(text), REPORT) is None
    return theirs, ours


@pytest.mark.parametrize("name", list(_good_reports()))
def test_both_validators_accept_the_good_reports(name):
    assert _verdicts(_good_reports()[name]) == (True, True)


@pytest.mark.parametrize("name, change, value", BROKEN, ids=[b[0] for b in BROKEN])
def test_both_validators_refuse_the_broken_reports(name, change, value):
    report = _good_reports()["measured"]
    case = report["cases"][0]
    case.update(device="host", images_per_s=200.0, reference_top1=0.7, fail_on=["top1:-1pt"])
    assert _verdicts(copy.deepcopy(report)) == (True, True)
    change(report, value)
    assert _verdicts(report) == (False, False)
    if not (isinstance(value, float) and not math.isfinite(value)) and "Infinity" not in name:
        problem = first_schema_violation(report, REPORT)
        assert "\n" not in problem  # one line, for the commands to print


def test_a_broken_report_is_refused_by_load_report_with_one_line(tmp_path):
    report = _good_reports()["measured"]
    report["cases"][0]["top1_ci95"] = [0.6, 0.7, 0.8]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    with pytest.raises(read.ReportError, match=r"^.*r\.json: case 'a-tflite-int8': cases\[0\]\.top1_ci95: 3 item"
                                               r"\(s\), expected at most 2$"):
        read.load_report(path)
