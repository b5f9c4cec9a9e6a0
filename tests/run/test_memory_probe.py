"""run/memory.py on this machine's real /proc: the counters, the high-water-mark reset, what is reported where a
figure cannot be read (null and a reason, never 0), and the check of a device's figures."""

from __future__ import annotations

import mmap

import numpy as np
import pytest

from pytest_aiotbench.run import memory

MB = 1_000_000


def _touch(megabytes: int) -> np.ndarray:
    """``megabytes`` of newly resident memory: a mapping of its own, every page written. (np.ones may be served
    from heap an earlier test freed but the allocator kept resident: RSS would not move.) Unmapped when freed."""
    block = np.frombuffer(mmap.mmap(-1, megabytes * MB), dtype=np.uint8)
    block.fill(1)
    return block


def test_status_is_this_process_resident_size():
    before = memory.read_status()
    held = _touch(60)
    after = memory.read_status()
    assert after["VmHWM"] >= after["VmRSS"] > 0
    assert after["VmRSS"] - before["VmRSS"] > 55 * MB
    del held


def test_the_high_water_mark_resets_here():
    """The kernel of this machine accepts clear_refs 5: after a freed 150 MB block the mark comes back down."""
    block = _touch(150)
    del block
    high = memory.read_status()["VmHWM"]
    assert memory.reset_peak() is None
    now = memory.read_status()
    assert now["VmHWM"] < high - 100 * MB
    assert now["VmHWM"] <= now["VmRSS"] + MB


def test_probe_reports_what_prepare_kept_and_the_loop_peak():
    probe = memory.Probe()
    probe.start()
    kept = _touch(50)  # "the model": stays through the loop
    probe.prepared()
    inputs = _touch(10)  # "the harness's converted inputs": left out of the peak
    probe.loop_start(held=inputs.nbytes)
    transient = _touch(80)  # "an inference's activations": freed again before the loop ends
    del transient
    probe.loop_end()
    figures = probe.figures()
    assert figures["reason"] is None and figures["isolation"] == "in-process"
    assert 48 <= figures["prepare_mb"] <= 56, figures
    assert 126 <= figures["peak_mb"] <= 140, figures
    assert figures["inputs_mb"] == pytest.approx(10, abs=0.01)
    del kept, inputs


def test_a_case_after_a_bigger_one_is_not_hidden_by_freed_heap():
    """A big case's freed small-object heap is trimmed before the next base: the next case's growth shows."""
    leftovers = [bytes(2000) for _ in range(35_000)]  # ~70 MB of malloc'd blocks on the C heap (brk)
    pin = bytes(2000)  # above them: free() alone cannot shrink the heap past it
    del leftovers
    probe = memory.Probe()
    probe.start()
    again = [bytes(2000) for _ in range(35_000)]
    probe.prepared()
    figures = probe.figures()
    assert figures["prepare_mb"] > 40, figures  # without malloc_trim the reused heap hides most of it
    del again, pin


def test_no_proc_status_is_not_exposed_never_zero(tmp_path):
    probe = memory.Probe(status=tmp_path / "no-such-status")
    probe.start()
    probe.prepared()
    probe.loop_start()
    probe.loop_end()
    figures = probe.figures()
    assert figures["prepare_mb"] is None and figures["peak_mb"] is None and figures["base_mb"] is None
    assert figures["reason"].startswith("not exposed: no VmRSS in ")
    assert memory.check_figures(figures) is None  # a valid "not exposed" answer


def test_a_reset_that_cannot_be_written_leaves_the_peak_not_exposed(tmp_path):
    probe = memory.Probe(clear_refs=tmp_path / "missing-dir" / "clear_refs")
    probe.start()
    probe.prepared()
    probe.loop_start()
    probe.loop_end()
    figures = probe.figures()
    assert figures["prepare_mb"] is not None  # VmRSS is still readable
    assert figures["peak_mb"] is None
    assert figures["reason"].startswith("peak not exposed: the high-water mark cannot be reset here")


def test_a_reset_the_kernel_ignores_is_caught(tmp_path):
    """Writing "5" somewhere that does not reset the mark (here a plain file) is detected by reading it back."""
    block = _touch(100)
    del block
    problem = memory.reset_peak(clear_refs=tmp_path / "clear_refs")
    assert problem is not None and "did not reset VmHWM" in problem


@pytest.mark.parametrize("value, problem", [
    ([], "not an object"),
    ({"prepare_mb": -1.0, "peak_mb": 2.0, "reason": None}, "memory.prepare_mb = -1.0 is not a size"),
    ({"prepare_mb": 1.0, "peak_mb": "big", "reason": None}, "memory.peak_mb = 'big' is not a size"),
    ({"prepare_mb": 1.0, "peak_mb": None, "reason": None}, "null figure without a reason"),
])
def test_device_figures_are_checked(value, problem):
    assert problem in memory.check_figures(value)


def test_runtime_imported_before_the_base():
    """The probe's base includes the runtime's libraries (a fresh process imports it before reading the base)."""
    from pytest_aiotbench.frameworks import get_framework

    assert memory.import_runtime(get_framework("tflite")) in ("ai_edge_litert.interpreter",
                                                              "tflite_runtime.interpreter")
    assert memory.import_runtime(get_framework("onnxruntime")) == "onnxruntime"
