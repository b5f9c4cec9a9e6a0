"""Emulated devices (QEMU user mode, scripts/arm-board.sh) are told from real ones, and their latencies never reach
a device score, a rank or a latency gate, while their accuracy is still gated. Constructed reports; no board."""

from __future__ import annotations

import pytest

from pytest_aiotbench.report.compare import compare_reports, parse_limits
from pytest_aiotbench.run.emulation import emulation_of, excluding_emulated
from pytest_aiotbench.report.rank import rank_reports
from pytest_aiotbench.report.read import score_of
from pytest_aiotbench.verdicts.score import device_score
from pytest_aiotbench.report.table import render_summary
from pytest_aiotbench.targets.remote import parse_facts

from tests.helpers.reports import make_case, make_report

QEMU = "qemu-user 7.2.22 on x86_64"


def emulated(case: dict) -> dict:
    return {**case, "runtime": {"runtime": "ai-edge-litert", "emulated": QEMU}}


@pytest.mark.parametrize("machine, kernel_arch, marker, expected", [
    ("aarch64", "x86_64", None, "user-mode emulation: aarch64 on a x86_64 kernel"),
    ("aarch64", "aarch64", None, None),
    ("armv7l", "aarch64", None, None),  # 32-bit userland on a 64-bit ARM kernel is native
    ("armv8l", "arm64", None, None),
    ("i686", "x86_64", None, None),
    ("x86_64", "aarch64", None, "user-mode emulation: x86_64 on a aarch64 kernel"),
    ("aarch64", None, QEMU, QEMU),  # the board's marker is enough (kernels before 6.1 have no kernel/arch)
    ("aarch64", None, None, None),
])
def test_emulation_is_told_from_native(machine, kernel_arch, marker, expected):
    assert emulation_of(machine, kernel_arch, marker) == expected


def test_device_facts_carry_the_emulation():
    board = parse_facts(f"machine=aarch64\nkernel=Linux 6.18\nkernel_arch=x86_64\nemulated_marker={QEMU}\n")
    assert board["emulated"] == QEMU and board["abi"] == "aarch64" and "emulated_marker" not in board
    pi = parse_facts("machine=aarch64\nkernel=Linux 6.6\nkernel_arch=aarch64\nboard=Raspberry Pi 4 Model B\n")
    assert pi["emulated"] is False and pi["model"] == "Raspberry Pi 4 Model B"


def test_device_score_leaves_emulated_cases_out():
    real = make_case("m-tflite-int8", top1=0.7, latency_ms=5.0)
    emu = emulated(make_case("m-onnxruntime-fp32", top1=0.7, latency_ms=300.0))
    score = device_score([real, emu], canonical_ids=[real["id"], emu["id"]])
    assert score.vips == pytest.approx(real["vips"]) and score.cases == 1
    assert score.partial and score.missing == [emu["id"]]
    assert any("1 emulated case(s) not scored" in r for r in score.partial_reasons)
    only_emulated = device_score([emu], canonical_ids=None)
    assert only_emulated.vips is None and only_emulated.cases == 0
    assert excluding_emulated([real, emu]) == ([real], [emu["id"]])


def test_rank_does_not_score_an_emulated_board():
    real = make_report([make_case("m-tflite-int8", latency_ms=40.0, seed=1)], device="pi4")
    board = make_report([emulated(make_case("m-tflite-int8", latency_ms=4.0, seed=2))], device="qemu-board")
    assert score_of(board["cases"]) == {"vips": None, "vops": None, "cases": 1, "partial": True,
                                        "missing": ["m-tflite-int8"]}
    ranking = rank_reports([board, real])
    # The emulated board would win on VIPS (4 ms vs 40 ms): it is ranked last, unscored and partial.
    assert [e.label for e in ranking.entries] == ["pi4", "qemu-board"]
    assert ranking.entries[1].score["vips"] is None and ranking.entries[1].partial


def test_latency_gates_skip_emulated_cases_but_accuracy_is_still_gated():
    base = make_report([make_case("m-tflite-int8", top1=0.70, latency_ms=5.0, seed=1)])
    slower = make_report([emulated(make_case("m-tflite-int8", top1=0.70, latency_ms=300.0, seed=2))])
    comparison = compare_reports(base, slower, parse_limits(["p90:+10%", "vips:-5%", "top1:-0.5pt"]))
    assert not comparison.failed
    assert any("emulated" in note for note in comparison.cases[0].notes)
    assert comparison.cases[0].deltas["p90"].change > 1000  # still reported, just not gated
    worse = make_report([emulated(make_case("m-tflite-int8", top1=0.60, latency_ms=300.0, seed=2))])
    comparison = compare_reports(base, worse, parse_limits(["p90:+10%", "top1:-0.5pt"]))
    assert comparison.failed and [d.metric.name for d in comparison.cases[0].regressions] == ["top1"]
    # Real hardware on both sides: the same slowdown is gated.
    real_slow = make_report([make_case("m-tflite-int8", top1=0.70, latency_ms=300.0, seed=2)])
    assert compare_reports(base, real_slow, parse_limits(["p90:+10%"])).failed


def test_terminal_table_flags_emulated_rows():
    report = make_report([emulated(make_case("m-tflite-int8")), make_case("n-tflite-int8")])
    report["score"] = {"vips": None, "vops": None, "cases": 0, "partial": True, "missing": []}
    report["dataset"]["kind"] = "labels.csv"
    lines = render_summary(report)
    rows = [line.rstrip() for line in lines if line.startswith("  tflite-int8")]
    assert len(rows) == 2 and [row.endswith("passed *") for row in rows] == [True, False]  # models m, n
    assert any(line.startswith("* emulated") for line in lines)
