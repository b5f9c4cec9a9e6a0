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
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..oneline import one_line  # noqa: F401 (the frameworks' import of it)


class FrameworkUnavailable(Exception):
    """The framework's runtime package is not installed: the case is skipped with ``fix`` shown to the user."""

    def __init__(self, framework: str, fix: str):
        super().__init__(f"{framework} runtime is not installed: {fix}")
        self.fix = fix

    @classmethod
    def missing(cls, framework: "Framework", runtime: str) -> "FrameworkUnavailable":
        """The install hint, from the framework's ``requirement`` (the one place it is written)."""
        return cls(framework.name, f"pip install '{framework.requirement}'  ({runtime})")


class AcceleratorUnavailable(FrameworkUnavailable):
    """The catalog asks for an execution target (a GPU, an NPU, Vulkan, an execution provider) this machine does not
    have: the case is skipped naming what is missing, never run on the CPU instead under the same name."""

    def __init__(self, framework: str, fix: str):
        Exception.__init__(self, f"{framework}: {fix}")
        self.fix = fix


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


@runtime_checkable
class Framework(Protocol):
    name: str
    requirement: str
    # Optional: the catalog ``options`` keys it reads (e.g. ("delegate",)); declared, any other key is an error.

    def prepare(self, model_file: str, options: PrepareOptions) -> Session: ...


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
