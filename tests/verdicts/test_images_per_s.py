"""Images per second computed once (verdicts/score.py ``images_per_s``): the measured entry and the combined
repeats both call it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pytest_aiotbench.verdicts import repeats, score
from tests.helpers.reports import make_case

PACKAGE = Path(score.__file__).resolve().parents[1]


@pytest.mark.parametrize("mean_ms, expected", [(4.0, 250.0), (0.5, 2000.0), (0.0, None), (-1.0, None)])
def test_images_per_s_is_one_stream_at_the_mean_latency(mean_ms, expected):
    assert score.images_per_s(mean_ms) == expected


def test_images_per_s_is_computed_by_score_images_per_s_wherever_an_entry_gets_it():
    """Every ``images_per_s=...`` / ``[...]["images_per_s"] = ...`` in the package is a call of the one function
    (the offline scenario's throughput is measured, images / wall time in run/offline.py, and only copied by
    ``pipeline.offline_entry``)."""
    sites = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        copied = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "offline_entry"
                  for n in ast.walk(f)}
        for node in (n for n in ast.walk(tree) if id(n) not in copied):
            values = [k.value for k in node.keywords if k.arg == "images_per_s"] if isinstance(node, ast.Call) else []
            if isinstance(node, ast.Assign):
                values += [node.value for t in node.targets if isinstance(t, ast.Subscript)
                           and isinstance(t.slice, ast.Constant) and t.slice.value == "images_per_s"]
            sites += [(path.name, v) for v in values]
    assert len(sites) >= 2  # the measured entry and the repeats' combination
    for name, value in sites:
        assert isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", "")) == \
            "images_per_s", f"{name}: images_per_s computed in place"


def test_combined_repeats_get_their_images_per_s_from_the_combined_mean():
    runs = []
    for index, centre in ((1, 4.0), (2, 5.0), (3, 6.0)):
        case = make_case("a-tflite-int8", latency_ms=centre, seed=index)
        case["repeat"] = {"index": index, "of": 3}
        runs.append(case)
    out = repeats.combine(runs)
    assert out["images_per_s"] == score.images_per_s(out["latency_ms"]["mean"])
    assert out["images_per_s"] == pytest.approx(1e3 / runs[1]["latency_ms"]["mean"])
