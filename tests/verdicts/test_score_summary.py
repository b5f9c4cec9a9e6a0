"""The report's score object built once (verdicts/score.py ``report_score``) for the plugin's report and for a
reader scoring a report's cases by themselves."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pytest_aiotbench.plugin.state import AiotbenchState
from pytest_aiotbench.report.read import score_of
from pytest_aiotbench.verdicts import score
from tests.helpers.reports import make_case


def _cases():
    return [make_case("a-tflite-int8", seed=1), make_case("b-onnx-fp32", status="skipped"),
            make_case("c-tflite-fp32", top1=None, seed=2)]


def test_the_plugins_score_counts_the_scored_cases_and_says_why_it_is_partial():
    cases = _cases()
    out = score.report_score(cases, ["a-tflite-int8", "b-onnx-fp32", "z-x-y"], ["only the first 40 images"])
    rule = score.device_score(cases, ["a-tflite-int8", "b-onnx-fp32", "z-x-y"], ["only the first 40 images"])
    assert list(out) == ["vips", "vops", "cases", "partial", "missing", "partial_reasons"]
    assert out == {"vips": rule.vips, "vops": rule.vops, "cases": 1, "partial": True,
                   "missing": ["b-onnx-fp32", "z-x-y"],
                   "partial_reasons": ["only the first 40 images", "2 canonical case(s) not scored"]}
    assert score.report_score([], None)["partial_reasons"] == ["the canonical catalog was not found",
                                                                "no case was scored"]


def test_a_readers_score_takes_the_listed_cases_as_the_full_set():
    cases = _cases()
    out = score.report_score(cases, ["ignored"], listed=True)
    assert out == {"vips": pytest.approx(cases[0]["vips"]), "vops": pytest.approx(cases[0]["vops"]), "cases": 3,
                   "partial": True, "missing": ["b-onnx-fp32", "c-tflite-fp32"]}
    assert not score.report_score(cases[:1], listed=True)["partial"]


def test_the_session_and_the_report_reader_both_use_it(monkeypatch):
    """Change the rule in score.py and both the plugin's report and the reader follow: no second builder."""
    fixed = score.DeviceScore(vips=42.0, vops=None, cases=7, partial=True, missing=["m"], partial_reasons=["r"])
    monkeypatch.setattr(score, "device_score", lambda *args, **kwargs: fixed)
    session = SimpleNamespace(canonical_ids=["a"], dataset=SimpleNamespace(gaps=lambda: []))
    assert AiotbenchState._score(session, _cases()) == {"vips": 42.0, "vops": None, "cases": 7, "partial": True,
                                                        "missing": ["m"], "partial_reasons": ["r"]}
    assert score_of(_cases()) == {"vips": 42.0, "vops": None, "cases": 3, "partial": True, "missing": ["m"]}
