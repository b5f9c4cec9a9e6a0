"""Resident memory of a case, from the process's own counters (Linux ``/proc/self/status``).

Figures per case, in MB (10^6 bytes) above ``base_mb``, the measuring process's VmRSS just before ``prepare()``
(the framework's runtime already imported: its libraries are the process's, not the model's):

- ``prepare_mb``: VmRSS after ``prepare()`` minus the base: what loading the model and building the runtime's
  arena left resident.
- ``peak_mb``: the high-water mark (VmHWM) over the inferences minus the base and minus ``inputs_mb`` (the chunk
  of converted inputs the harness holds through the loop: the harness's, not the model's). The mark is reset to
  the current RSS by writing ``5`` to ``/proc/self/clear_refs`` right before the loop, and the reset is checked
  by reading the mark back.

Nothing here runs inside a timed call: the readings are taken before ``prepare()``, after it, and around the whole
loop. A figure that cannot be read is null with ``reason`` saying why (no /proc on this platform, a kernel that
refuses or ignores clear_refs), never 0.

Isolation. On the host one pytest process runs every case, so a case measured there would inherit what earlier
cases left: runtime code and pools paged in by their first prepare/inference, and heap they freed that the C
allocator keeps (``release_freed`` trims the latter, which is not enough for the former). Measured
(benchmarks/memory_isolation.py), the later cases of one process showed 0.51-0.99 of their fresh-process peaks,
while the first case matched. So the host measures every case in a fresh process (``measure_fresh``: ``python -m
pytest_aiotbench.run.memory``), before the case is timed: runtime imported, base read, the same file prepared,
``PEAK_INFERENCES`` inferences on one converted input (``isolation: "fresh process"``; ~1.4 s a case;
``--aiotbench-memory off`` skips it). Devices (adb, ssh, the board) already run each case in its own runner
process: the runner reads its own counters around its own prepare and its whole timed loop (``isolation:
"runner process"``).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
MB = 1e6
PEAK_INFERENCES = 5  # the fresh-process probe's inferences (on one converted input): the arena's peak, untimed


def read_status(path: Path = STATUS) -> dict[str, int] | None:
    """VmRSS, VmHWM, RssAnon, RssFile... in bytes; None where the platform has no such file."""
    try:
        text = path.read_text()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if key.startswith(("Vm", "Rss")) and len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            out[key] = int(parts[0]) * 1024
    return out


def reset_peak(clear_refs: Path = CLEAR_REFS, status: Path = STATUS) -> str | None:
    """Reset VmHWM to the current VmRSS. None when it worked; else why not (one line). Checked, not assumed:
    a kernel may accept the write and keep the old mark."""
    try:
        clear_refs.write_text("5")
    except OSError as exc:
        return f"the high-water mark cannot be reset here ({clear_refs}: {exc.strerror or exc})"
    after = read_status(status) or {}
    hwm, rss = after.get("VmHWM"), after.get("VmRSS")
    if hwm is None or rss is None:
        return f"no VmHWM/VmRSS in {status}"
    # RSS may grow between the reset and the read by a page or two; an old mark would stay far above
    if hwm > rss + 1024 * 1024:
        return f"writing 5 to {clear_refs} did not reset VmHWM ({hwm // 1024} kB > VmRSS {rss // 1024} kB)"
    return None


def release_freed() -> None:
    """Give back what earlier work freed: Python's cyclic garbage, and glibc's free heap pages (``malloc_trim``),
    so a base read afterwards holds no reusable leftovers of an earlier case."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):  # musl and others have no malloc_trim: nothing to trim
            pass


@dataclass
class Probe:
    """Readings around one case in this process: ``start`` (before prepare), ``prepared`` (after it),
    ``loop_start``/``loop_end`` (around the timed loop). ``figures()`` gives the report's ``memory`` object."""

    isolation: str = "in-process"
    status: Path = STATUS
    clear_refs: Path = CLEAR_REFS
    base: int | None = None
    after_prepare: int | None = None
    peak: int | None = None
    held: int = 0  # converted inputs the harness holds through the loop: subtracted from the peak
    reasons: list[str] = field(default_factory=list)
    _reset_ok: bool = False

    def start(self) -> None:
        emulated = emulation_reason()
        if emulated:
            self.reasons.append(emulated)
            return
        release_freed()
        status = read_status(self.status)
        if status is None or "VmRSS" not in status:
            self.reasons.append(f"not exposed: no VmRSS in {self.status} on {sys.platform}")
            return
        self.base = status["VmRSS"]

    def prepared(self) -> None:
        if self.base is not None:
            self.after_prepare = (read_status(self.status) or {}).get("VmRSS")

    def loop_start(self, held: int = 0) -> None:
        self.held = held
        if self.base is None:
            return
        problem = reset_peak(self.clear_refs, self.status)
        self._reset_ok = problem is None
        if problem:
            self.reasons.append(f"peak not exposed: {problem}")

    def loop_end(self) -> None:
        if self.base is not None and self._reset_ok:
            self.peak = (read_status(self.status) or {}).get("VmHWM")

    def figures(self) -> dict[str, Any]:
        return figures(self.base, self.after_prepare, self.peak, self.isolation, self.reasons, self.held)


def emulation_reason() -> str | None:
    """Under user-mode emulation (the emulated ARM board) the counters are the emulator's (its translation cache,
    its own libraries), not a device's: the figures are not exposed there."""
    from .emulation import local_emulation

    emulated = local_emulation()
    return f"not exposed: emulated ({emulated}): the emulator's resident size is not a device's" if emulated \
        else None


def figures(base: int | None, after_prepare: int | None, peak: int | None, isolation: str,
            reasons: list[str] | tuple = (), held: int = 0) -> dict[str, Any]:
    """The report's ``memory`` object (MB). A reading that is missing gives null and a reason, never 0.
    ``held``: bytes of converted inputs the harness held through the loop, left out of ``peak_mb``."""
    def mb(value, minus=0):
        return None if value is None or base is None else round(max(value - base - minus, 0) / MB, 3)

    return {"prepare_mb": mb(after_prepare), "peak_mb": mb(peak, held), "inputs_mb": round(held / MB, 3),
            "base_mb": None if base is None else round(base / MB, 3), "isolation": isolation,
            "source": "/proc/self/status VmRSS/VmHWM", "reason": "; ".join(reasons) or None}


def check_figures(value: Any) -> str | None:
    """Why a ``memory`` object from a device's result file is unusable, or None."""
    if not isinstance(value, dict):
        return "memory is not an object"
    for key in ("prepare_mb", "peak_mb", "base_mb"):
        number = value.get(key)
        if number is not None and (not isinstance(number, (int, float)) or isinstance(number, bool)
                                   or number != number or number < 0 or number == float("inf")):
            return f"memory.{key} = {number!r} is not a size"
    if (value.get("prepare_mb") is None or value.get("peak_mb") is None) and not value.get("reason"):
        return "memory has a null figure without a reason"
    return None


# -- the fresh-process probe (host) -------------------------------------------------------------------------------

def probe_in_this_process(spec: dict) -> dict[str, Any]:
    """Load the runtime, read the base, prepare ``spec["model"]``, infer ``PEAK_INFERENCES`` times on one input
    (black crop converted as the case converts its crops: a CNN's memory does not depend on pixel values), read
    VmHWM. Run in a fresh
    process by ``measure_fresh``; the figures are this process's own."""
    import numpy as np

    from ..frameworks import get_framework
    from ..frameworks.base import PrepareOptions
    from ..inputs.preprocess import PreprocessSpec, to_model_inputs

    framework = get_framework(spec["framework"])
    options = PrepareOptions(threads=int(spec.get("threads", 1)), extra=dict(spec.get("extra") or {}))
    import_runtime(framework)
    probe = Probe(isolation="fresh process")
    probe.start()
    session = framework.prepare(spec["model"], options)
    try:
        probe.prepared()
        pre = dict(spec["preprocess"])
        pre["mean"], pre["std"] = tuple(pre["mean"]), tuple(pre["std"])
        crops = np.zeros((1, pre["input_size"], pre["input_size"], 3), np.uint8)  # the pixels do not matter
        x = to_model_inputs(crops, PreprocessSpec(**pre), session.input, Path(spec["model"]).name)[0]
        probe.loop_start(held=int(x.nbytes))
        for _ in range(PEAK_INFERENCES):
            session.infer(x)
        probe.loop_end()
    finally:
        session.close()
    return probe.figures()


def import_runtime(framework) -> str | None:
    """Import the framework's runtime before the base is read: its libraries are the process's, not the model's
    (frameworks import their runtime inside ``prepare``). A framework may name its modules (``runtime_modules``);
    the built-in ones are listed here. Returns the module imported (None: none found). Best effort: a runtime that
    cannot be imported, or fails while importing, is left to ``prepare()``, which says why as the case's own error."""
    name = getattr(framework, "name", "")
    if name == "openvino":  # its own import: telemetry opted out before the module loads
        from ..frameworks.openvino import import_openvino

        try:
            import_openvino()
            return "openvino"
        except Exception:  # noqa: BLE001 (prepare() reports it)
            return None
    groups = getattr(framework, "runtime_modules", None) or _RUNTIMES.get(name, ())
    found = None
    for group in groups:  # each group: alternatives, the first importable one (tflite: LiteRT, else tflite-runtime)
        for module in group:
            try:
                __import__(module)
                found = found or module
                break
            except Exception:  # noqa: BLE001 (prepare() reports it)
                continue
    return found


# The runtime each built-in framework imports in prepare(): imported before the base is read.
_RUNTIMES = {"tflite": (("ai_edge_litert.interpreter", "tflite_runtime.interpreter"),),
             "onnxruntime": (("onnxruntime",),), "pytorch-mobile": (("torch",),),
             "executorch": (("torch",), ("executorch.extension.pybindings.portable_lib",), ("executorch.runtime",)),
             "ncnn": (("ncnn",),), "mnn": (("MNN",), ("MNN.expr",), ("MNN.nn",))}


class ProbeError(Exception):
    """The fresh-process probe failed (one line)."""


def measure_fresh(framework: str, model: str, threads: int, extra: dict, preprocess: dict, timeout: float = 600
                  ) -> dict[str, Any]:
    """The case's memory measured in a fresh Python process (this module's ``main``): nothing an earlier case
    left in this process counts. Raises ProbeError with one line."""
    import subprocess

    spec = json.dumps({"framework": framework, "model": str(model), "threads": threads, "extra": extra,
                       "preprocess": preprocess})
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # this checkout, whatever sys.path the parent had
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    try:
        done = subprocess.run([sys.executable, "-m", "pytest_aiotbench.run.memory", spec], capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise ProbeError(f"memory probe of {Path(model).name}: no answer within {timeout:g} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProbeError(f"memory probe of {Path(model).name} failed (exit {done.returncode}): {tail}")
    try:
        result = json.loads(lines[-1])
    except ValueError:
        raise ProbeError(f"memory probe of {Path(model).name}: unreadable answer {lines[-1][:80]!r}") from None
    problem = check_figures(result)
    if problem:
        raise ProbeError(f"memory probe of {Path(model).name}: {problem}")
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        print(json.dumps(probe_in_this_process(json.loads(args[0]))))
    except Exception as exc:  # one line for the parent, which reports it
        from ..frameworks.base import one_line

        print(f"{type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
