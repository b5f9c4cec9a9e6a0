"""The report schema is a JSON Schema file shipped in the package, checked with jsonschema here; the plugin's own
validator implements every keyword it uses (issue 18: minItems/maxItems were skipped, a 3-element top1_ci95
passed) and agrees with jsonschema on valid and broken reports."""

from __future__ import annotations

import copy
import json
from importlib import resources

import jsonschema
import numpy as np
import pytest

from pytest_aiotbench.report.read import ReportError, first_schema_violation, normalize_report, unsupported_keywords
from pytest_aiotbench.report.schema import REPORT, SCHEMA_FILE
from tests.helpers.reports import make_case, make_report


def _shipped() -> dict:
    return json.loads(resources.files("pytest_aiotbench").joinpath(SCHEMA_FILE).read_text())


def test_shipped_schema_is_a_valid_json_schema_and_is_what_the_plugin_uses():
    schema = _shipped()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == REPORT and schema["properties"]["schema"]["const"] == "aiotbench/1"
    assert unsupported_keywords(schema) == []


def test_unknown_keyword_is_detected_not_skipped():
    schema = copy.deepcopy(REPORT)
    schema["properties"]["cases"]["items"]["properties"]["top1"]["multipleOf"] = 0.01
    assert unsupported_keywords(schema) == ["cases[items].top1: multipleOf"]


@pytest.mark.parametrize("ci", [[0.6, 0.7, 0.8], [0.6], []])
def test_top1_ci95_must_hold_two_bounds(ci):
    case = make_case("a-tflite-int8")
    case["top1_ci95"] = ci
    with pytest.raises(ReportError, match=r"cases\[0\]\.top1_ci95: \d item\(s\), expected at (least|most) 2"):
        normalize_report(make_report([case]), "r.json")


def _mutations(rng: np.random.Generator, base: dict):
    """Seeded breakages of a valid report: wrong types, missing keys, out-of-range numbers, wrong array sizes."""
    paths = [("cases", 0, "top1"), ("cases", 0, "images"), ("cases", 0, "status"), ("cases", 0, "top1_ci95"),
             ("cases", 0, "latency_ms"), ("dataset", "kind"), ("score", "cases"), ("schema",), ("cases", 0, "fail_on"),
             ("cases", 0, "per_image", "latency_ms")]
    values = [None, "x", -1, 1.5, 2, [], [0.1, 0.2, 0.3], [0.1, 0.2], {}, True, ["top1:-1pt"], "passed"]
    for _ in range(120):
        report = copy.deepcopy(base)
        path = paths[rng.integers(len(paths))]
        target = report
        for key in path[:-1]:
            target = target[key]
        if rng.random() < 0.15 and isinstance(target, dict):
            target.pop(path[-1], None)
        else:
            target[path[-1]] = copy.deepcopy(values[rng.integers(len(values))])
        yield report


def test_own_validator_agrees_with_jsonschema():
    validator = jsonschema.Draft202012Validator(REPORT)
    base = make_report([make_case("a-tflite-int8")])
    base["cases"][0]["top1_ci95"] = [0.6, 0.8]
    assert validator.is_valid(base) and first_schema_violation(base, REPORT) is None
    checked = 0
    for report in _mutations(np.random.default_rng(2026), base):
        ours = first_schema_violation(report, REPORT)
        assert (ours is None) == validator.is_valid(report), (ours, next(iter(validator.iter_errors(report)), None))
        checked += 1
    assert checked == 120
