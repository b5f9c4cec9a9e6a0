"""The predict module's contract: a framework prepares a model file into a session that answers infer().

A framework is any object with a ``name``, a ``requirement`` (what to pip install when its runtime is
missing) and ``prepare(model_file, options) -> Session``. It is registered under the ``aiotbench.frameworks``
entry-point group. Framework modules import their runtime inside ``prepare()`` only, so that collecting
cases (or using another framework) never pays for it.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import one_line  # noqa: F401 (the frameworks' import of it)


class FrameworkUnavailable(Exception):
    """The framework's runtime package is not installed: the case is skipped with ``fix`` shown to the user."""

    def __init__(self, framework: str, fix: str, package: str | None = None, note: str = ""):
        super().__init__(f"{framework} runtime is not installed: {fix}")
        self.fix = fix
        self.framework = framework
        self.package = package  # the runtime's own pip pins (what a device without the plugin installs)
        self.note = note  # why pip may not find it here (e.g. the system's glibc is older than its wheels need)

    @classmethod
    def missing(cls, framework: "Framework", runtime: str, note: str = "") -> "FrameworkUnavailable":
        """The install hint, from the framework's ``requirement`` (the one place it is written)."""
        return cls(framework.name, f"pip install '{framework.requirement}'  ({runtime}){note}", package=runtime,
                   note=note)


class AcceleratorUnavailable(FrameworkUnavailable):
    """The catalog asks for an execution target (a GPU, an NPU, Vulkan, an execution provider) this machine does not
    have: the case is skipped naming what is missing, never run on the CPU instead under the same name."""

    def __init__(self, framework: str, fix: str):
        Exception.__init__(self, f"{framework}: {fix}")
        self.fix = fix


class RuntimeUnusable(FrameworkUnavailable):
    """The runtime is installed but cannot start on this system (a library, CPU feature or glibc it needs is
    missing, e.g. under an emulator): the case is skipped with the runtime's own reason."""

    def __init__(self, framework: str, fix: str):
        Exception.__init__(self, f"{framework} runtime cannot start here: {fix}")
        self.fix = f"runtime cannot start here: {fix}"


class ModelLoadError(Exception):
    """The model file exists but the runtime cannot load it (corrupt, wrong format, unsupported ops)."""


@dataclass(frozen=True)
class PrepareOptions:
    threads: int = 1
    # Framework-specific knobs from the catalog entry's ``options`` table (e.g. {"delegate": "none"}).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorSpec:
    """What a session's input tensor expects. ``quant`` is (scale, zero_point) for quantized integer inputs."""

    shape: tuple[int, ...]
    dtype: np.dtype
    quant: tuple[float, int] | None = None


@runtime_checkable
class Session(Protocol):
    input: TensorSpec
    # Facts for the report: runtime version, delegate, threads actually used, optimizations, ...
    info: dict[str, Any]

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Run one batch-1 input (already preprocessed to ``input``) and return the 1-D class scores."""

    def close(self) -> None: ...


class BatchUnsupported(Exception):
    """A session cannot run batches of the size asked (the model's batch dimension is fixed). One line."""


# Optional on a session, for the offline scenario (run/offline.py): ``batched(n)`` returns a callable that runs up to
# ``n`` batch-1 inputs stacked on axis 0 and returns their (k, classes) outputs, or raises BatchUnsupported. The
# session then serves that callable only (its interpreter may have been resized).


@runtime_checkable
class Framework(Protocol):
    name: str
    requirement: str
    # Optional: the catalog ``options`` keys it reads (e.g. ("delegate",)); declared, any other key is an error.

    def prepare(self, model_file: str, options: PrepareOptions) -> Session: ...

    # Optional: ``companions(model_file) -> list[Path]``, the files prepare() reads beside the model (ncnn's .bin,
    # OpenVINO's IR weights). A device job pushes them with the model and the runner checks their sha256.


# ----------------------------------------------------------------------------------------- output sanity (shared)
# Every framework's answers go through these checks (targets/host.py calls them for any registered framework): a
# score that is NaN or infinite, or an output that is not a real-valued tensor of class scores, is never ranked.
# Ranking NaN logits gives class 0 with a top-1 of 0.0 that "passes"; an int8 variant "97% of" it passes too.

class OutputError(Exception):
    """A model's answers cannot be scored (not finite, not numbers, not one score per class). One line."""


def check_outputs(outputs, model_file: str, num_classes: int | None = None, first_image: int = 1,
                  total: int | None = None) -> None:
    """Raise OutputError naming ``model_file`` unless every output in ``outputs`` is a real-valued array of
    ``num_classes`` finite scores. Called on the first (untimed) answer and on all collected answers after timing,
    never inside the timed call. ``first_image``: the 1-based dataset position of ``outputs[0]``."""
    outputs = list(outputs)
    total = total if total is not None else first_image - 1 + len(outputs)
    bad: list[int] = []
    kinds: set[str] = set()
    for i, out in enumerate(outputs):
        arr = np.asarray(out)
        image = first_image + i
        if arr.dtype.kind not in "fiu":  # bool, complex, strings, objects: not class scores
            raise OutputError(f"{model_file}: model output (image {image} of {total}) has dtype {arr.dtype}, "
                              "expected real-valued class scores (float or integer)")
        if num_classes is not None and arr.size != num_classes:
            raise OutputError(f"{model_file}: model output for image {image} of {total} has "
                              f"{arr.size} values ({'x'.join(map(str, arr.shape)) or 'a scalar'}), expected "
                              f"num_classes = {num_classes}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad.append(image)
            kinds.update(k for k, hit in (("NaN", np.isnan(arr).any()), ("+Inf", np.isposinf(arr).any()),
                                          ("-Inf", np.isneginf(arr).any())) if hit)
    if bad:
        where = (f"image {bad[0]} of {total}" if len(outputs) == 1 else
                 f"{len(bad)} of {total} image(s), first image {bad[0]}")
        raise OutputError(f"{model_file}: model output is not finite ({', '.join(sorted(kinds))}) on {where}: scores that are not numbers cannot be ranked "
                          "(check the model's weights and its input normalization)")


# The quantization labels a catalog may declare, and the tensor types each implies. "float": the model takes and
# returns float tensors (its weights may be float16 or int8 inside); "integer": a full-integer model (integer input
# or output tensors, or integer-quantized tensors inside when the framework can list them).
QUANT_MODES = {"fp32": "float", "fp16": "float", "bf16": "float", "dynamic": "float", "int8": "integer"}


def check_quant(quant: str | None, model_file: str, input_dtype, output_dtype, integer_inside=None) -> None:
    """Raise OutputError when the catalog's ``quant`` contradicts the model's real tensor types.
    ``integer_inside``: whether the model holds integer-quantized (int8/uint8) tensors, or a callable that says so
    (asked only when the input and output types cannot decide: it may read the whole model file); None = the
    framework cannot tell (then only the input and output types are judged)."""
    if quant is None or quant not in QUANT_MODES:
        return  # unknown labels are refused by the catalog schema; a job from elsewhere is not judged here
    ins, outs = np.dtype(input_dtype), np.dtype(output_dtype)
    integer_io = [f"{what} {dt}" for what, dt in (("input", ins), ("output", outs)) if dt.kind in "iu"]
    expects_float = QUANT_MODES[quant] == "float"
    if expects_float != bool(integer_io):
        return  # float IO for a float label, integer IO for an integer one: consistent
    inside = integer_inside() if callable(integer_inside) else integer_inside
    actual = (f"{ins} input, {outs} output" + ("" if inside is None else
                                                ", integer-quantized tensors inside" if inside
                                                else ", no integer-quantized tensors inside"))
    if expects_float:
        raise OutputError(f"{model_file}: quant = {quant!r} but the model is integer-quantized ({actual}); "
                          "declare quant = \"int8\"")
    if inside is False:
        raise OutputError(f"{model_file}: quant = {quant!r} but the model is a float model ({actual}); "
                          "declare its real mode (fp32, fp16, bf16 or dynamic)")


def check_single_output(model_file: str, names: list[str]) -> None:
    """Refuse a model with more than one output tensor: which one holds the class scores would be a guess."""
    if len(names) != 1:
        raise ModelLoadError(f"{model_file}: the model has {len(names)} outputs ({', '.join(map(str, names))}); "
                             "aiotbench scores a model with exactly one output, its class scores (export the "
                             "classifier with that output only)")


@contextmanager
def quiet_stdio(stderr: bool = False):
    """Silence what native code prints on file descriptor 1 (and 2 if asked) for the duration: some runtimes print
    banners at import (MNN: "The device supports: ..."), which would land inside pytest's terminal line."""
    fds = (1, 2) if stderr else (1,)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
    saved = []
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        for fd in fds:
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(devnull, fd)
            except OSError:
                pass
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def installed_version(dist: str) -> str | None:
    """The version of the installed distribution ``dist``; None when it is not installed."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def os_thread_count() -> int | None:
    """Threads of this process as the OS sees them (Linux): what really runs, whatever a runtime was told."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


class OsThreadsInInfo:
    """Mixin for a session whose ``info`` also says how many OS threads the process runs, read when the report
    asks for it (after timing, when the runtime's pools exist): a runtime told to use 1 thread may keep others
    (OpenVINO does). ``_info`` holds the facts; ``os_threads_before`` in it is the count before prepare()."""

    _info: dict

    @property
    def info(self) -> dict:
        now, before = os_thread_count(), self._info.get("os_threads_before")
        return {**self._info, "os_threads": now,
                "os_threads_added": None if now is None or before is None else now - before}
