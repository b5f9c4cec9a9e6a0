"""``aiotbench rank`` of offline runs (the stranger test): offline cases carry no single-stream VIPS, so two
offline runs came out as a leaderboard of "-" rows, each case "no result", exit 0; an offline run beside a
single-stream one was ranked last as if it had measured nothing. Refused now (exit 2), as a sustained ranking
without sustained runs is."""

from __future__ import annotations


import pytest

from pytest_aiotbench.report.rank import rank_reports
from pytest_aiotbench.report.read import ReportError
from tests.helpers.reports import make_case, make_report, offline_case, run_cli, write_json


def _run(offline: bool, device: str) -> dict:
    cases = [make_case("m-tflite-int8", seed=len(device)), make_case("n-onnxruntime-fp32", seed=len(device))]
    return make_report([offline_case(c, 400.0) for c in cases] if offline else cases, device=device)


@pytest.mark.parametrize("first, second", [(True, True), (False, True), (True, False)])
def test_offline_runs_are_not_ranked(tmp_path, first, second):
    a = write_json(tmp_path / "a.json", _run(first, "host-a"))
    b = write_json(tmp_path / "b.json", _run(second, "host-b"))
    proc = run_cli("rank", a, b)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "leaderboard" not in proc.stdout
    offline = [name for name, is_offline in (("a.json", first), ("b.json", second)) if is_offline]
    assert f"cannot rank: {', '.join(offline)} ran the offline scenario" in proc.stderr


def test_single_stream_runs_still_rank():
    ranking = rank_reports([_run(False, "host-a"), _run(False, "host-b")])
    assert len(ranking.entries) == 2 and all(e.score["vips"] for e in ranking.entries)
    with pytest.raises(ReportError, match="offline scenario"):
        rank_reports([_run(False, "host-a"), _run(True, "host-b")])
