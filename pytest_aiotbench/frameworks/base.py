"""The predict module's contract: a framework prepares a model file into a session that answers infer().

A framework is any object with a ``name``, a ``requirement`` (what to pip install when its runtime is
missing) and ``prepare(model_file, options) -> Session``. It is registered under the ``aiotbench.frameworks``
entry-point group. Framework modules import their runtime inside ``prepare()`` only, so that collecting
cases (or using another framework) never pays for it.
"""

from __future__ import annotations

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
