"""One validity builder (verdicts/validity.py): per case (``assess``), per A/B pairing (``assess_pairing``), per
repeated case (``assess_repeats``), every limit named there once, and ``label``/``kinds``/``case_label`` the only
readers of the tables. Pure functions on constructed figures."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from pytest_aiotbench.report import columns
from pytest_aiotbench.verdicts import ab, repeats, validity

PACKAGE = Path(validity.__file__).resolve().parents[1]
SHAPE = {"valid", "reasons", "notes", "checks"}


def _lat(n=200, centre=2.0, seed=0):
    return centre * np.random.default_rng(seed).lognormal(0.0, 0.03, n)


# ---------------------------------------------------------------------------------------------- one home

def test_every_validity_limit_is_assigned_in_validity_py_only():
    """A second ``*_LIMIT`` / ``MIN_*PAIRS`` assignment anywhere in the package would be a second home."""
    homes = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                if isinstance(node, ast.AnnAssign) else []
            for target in targets:
                name = getattr(target, "id", "")
                if name.endswith("_LIMIT") or (name.startswith("MIN_") and name.endswith("PAIRS")):
                    homes.setdefault(name, []).append(path.relative_to(PACKAGE).as_posix())
    assert {"DRIFT_LIMIT", "SPREAD_LIMIT", "WAIT_LIMIT", "OTHER_BUSY_LIMIT", "PAIR_DRIFT_LIMIT", "MIN_PAIRS",
            "MIN_CELL_PAIRS", "REPEAT_SPREAD_LIMIT"} <= set(homes)
    assert {name: where for name, where in homes.items() if where != ["verdicts/validity.py"]} == {}


def test_the_three_builders_return_the_same_shape():
    built = [validity.assess(_lat(), None), validity.assess([1.0] * 10, None),
             validity.assess_pairing(40, 50, 20), validity.assess_pairing(3, 50, 1),
             validity.assess_repeats([(1, None), (2, None)], [5.0, 5.0], 0.0),
             validity.assess_repeats([(1, None), (2, None)], [5.0, 9.0], 0.6)]
    for v in built:
        assert set(v) == SHAPE and v["valid"] is (not v["reasons"])
        assert all(isinstance(r, str) for r in v["reasons"] + v["notes"])
    assert [v["valid"] for v in built] == [True, False, True, False, True, False]


def test_the_pairing_and_the_repeats_read_their_limits_from_validity(monkeypatch):
    """ab.pair_validity and repeats.combine decide nothing themselves: move a limit in validity.py and both
    follow it."""
    ratios = ab.clean_ratios(_lat(200, 2.0, 1), _lat(200, 2.0, 2))
    assert ab.pair_validity(ratios, 200)["valid"]
    monkeypatch.setattr(validity, "MIN_PAIRS", 1000)
    tight = ab.pair_validity(ratios, 200)
    assert not tight["valid"] and tight["reasons"][0].startswith("too few clean pairs")
    assert "need >= 1000, 500 with each model first" in tight["reasons"][0]

    runs = [_repeat(1, 5.0), _repeat(2, 6.0)]  # medians ~18 % apart
    assert not repeats.combine(runs)["validity"]["valid"]
    monkeypatch.setattr(validity, "REPEAT_SPREAD_LIMIT", 0.5)
    assert repeats.combine(runs)["validity"]["valid"]


def _repeat(index, centre, valid=True):
    lat = [float(x) for x in _lat(60, centre, index)]
    return {"id": "c", "result_id": "c", "top1": 0.5, "top5": 0.9, "gflops": None, "images": 60, "status": "passed",
            "reason": None, "repeat": {"index": index, "of": 2},
            "latency_ms": {"min": min(lat), "median": float(np.median(lat)), "mean": float(np.mean(lat)),
                           "p90": float(np.percentile(lat, 90)), "max": max(lat), "stddev": 0.1, "iqr": 0.1},
            "per_image": {"top5": [[1, 2, 3, 4, 5]] * 60, "latency_ms": lat},
            "validity": {"valid": valid, "reasons": [] if valid else ["drift: second-half median +20% vs first half "
                                                                      "(limit 10%)"],
                         "notes": ["governor: schedutil (clock may ramp during the case)"], "checks": {}}}


# ------------------------------------------------------------------------------------------------ pairing

@pytest.mark.parametrize("clean, each_first, valid", [
    (validity.MIN_PAIRS, validity.MIN_PAIRS // 2, True),
    (validity.MIN_PAIRS - 1, validity.MIN_PAIRS // 2, False),
    (validity.MIN_PAIRS + 40, validity.MIN_PAIRS // 2 - 1, False),  # plenty, but nearly all with one model first
])
def test_pairing_needs_enough_clean_pairs_of_each_order(clean, each_first, valid):
    v = validity.assess_pairing(clean, 100, each_first)
    assert v["valid"] is valid and v["checks"] == {"clean_pairs": clean, "pairs": 100}
    if not valid:
        assert v["reasons"] == [f"too few clean pairs: {clean} of 100 (need >= {validity.MIN_PAIRS}, "
                                f"{validity.MIN_PAIRS // 2} with each model first)"]


def test_pairing_names_the_sessions_without_enough_clean_pairs_only_when_the_total_is_enough():
    v = validity.assess_pairing(80, 100, 40, [(0, 1), (1, 1)])
    assert v["reasons"] == ["too few clean pairs on sessions NEW 0/BASE 1, NEW 1/BASE 1 (need >= "
                            f"{validity.MIN_CELL_PAIRS} with each model first on every pair of sessions)"]
    assert len(validity.assess_pairing(10, 100, 5, [(0, 1)])["reasons"]) == 1  # the total says it all


@pytest.mark.parametrize("drift, apart, valid", [
    (validity.PAIR_DRIFT_LIMIT * 1.5, True, False),
    (-validity.PAIR_DRIFT_LIMIT * 1.5, True, False),
    (validity.PAIR_DRIFT_LIMIT * 1.5, False, True),  # halves' intervals overlap: noise, not drift
    (validity.PAIR_DRIFT_LIMIT * 0.5, True, True),
    (float("nan"), True, True),
    (None, False, True),
])
def test_pairing_drift_counts_beyond_the_limit_with_the_halves_apart(drift, apart, valid):
    v = validity.assess_pairing(80, 100, 40, (), drift, apart)
    assert v["valid"] is valid
    if drift is not None and np.isfinite(drift):
        assert v["checks"]["ratio_drift"] == round(drift, 4)
    else:
        assert "ratio_drift" not in v["checks"]
    if not valid:
        assert v["reasons"][0].startswith("ratio drift: second-half median ratio ")
        assert validity.kinds(v) == ["ratio drift"]


# ------------------------------------------------------------------------------------------------ repeats

def test_repeats_spread_at_the_limit_is_valid_beyond_it_is_not():
    at = validity.assess_repeats([(1, None), (2, None)], [5.0, 5.5], validity.REPEAT_SPREAD_LIMIT)
    beyond = validity.assess_repeats([(1, None), (2, None)], [5.0, 5.6], validity.REPEAT_SPREAD_LIMIT + 0.01)
    assert at["valid"] and not beyond["valid"]
    limit = validity.REPEAT_SPREAD_LIMIT
    assert beyond["reasons"] == [f"repeats disagree: medians 5-5.6 ms, spread {limit + 0.01:.0%} (limit {limit:.0%})"]
    assert beyond["checks"] == {"repeats": 2, "repeat_spread": round(validity.REPEAT_SPREAD_LIMIT + 0.01, 4)}


def test_repeats_carry_each_repeats_reasons_and_notes_once():
    bad = {"valid": False, "reasons": ["load: load average 9.00 > 2 cores"], "notes": ["n1"], "checks": {}}
    good = {"valid": True, "reasons": [], "notes": ["n1", "n2"], "checks": {}}
    v = validity.assess_repeats([(1, good), (3, bad)], [5.0, 5.0], 0.0, accuracy_identical=False)
    assert v["reasons"] == ["repeat 3: load: load average 9.00 > 2 cores"]
    assert v["notes"] == ["n1", "n2", "predictions differ between repeats: accuracy is the first repeat's"]
    assert validity.kinds(v) == ["load"] and validity.label(v) == "INVALID (load)"


# ------------------------------------------------------------------------------------------------ readers

def test_label_and_case_label_are_what_the_tables_show():
    invalid = validity.assess([1.0] * 10, None)
    assert validity.label(None) == validity.label({}) == "-"
    assert validity.label(invalid) == "INVALID (too few images)"
    assert validity.label(invalid, with_kinds=False) == "INVALID"
    timed = {"latency_ms": {"mean": 1.0}, "validity": validity.assess(_lat(), None)}
    untimed = {"latency_ms": None, "validity": timed["validity"]}  # a skipped case never has a latency verdict
    assert validity.case_label(timed) == "VALID" and validity.case_label(untimed) == "-"
    assert validity.case_label({**timed, "validity": invalid}) == "INVALID"
    assert validity.case_label({**timed, "validity": invalid}, with_kinds=True) == "INVALID (too few images)"
    # the terminal table and the HTML say the same (the HTML leaves a cell empty where the table writes '-')
    for case in (timed, untimed, {**timed, "validity": invalid}, {"latency_ms": {"mean": 1.0}}):
        shown = next(c for c in columns.COLUMNS if c.key == "latency").text_cell(case)
        assert shown == validity.case_label(case)
        assert columns.validity_word(case) == ("" if shown == "-" else shown)
