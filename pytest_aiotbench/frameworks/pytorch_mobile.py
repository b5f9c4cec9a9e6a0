"""PyTorch Mobile: ``.ptl`` through the lite interpreter (what runs on phones), TorchScript ``.pt`` through
``torch.jit.load``. Both take NCHW float input unless the model says otherwise."""

from __future__ import annotations

import platform
import warnings
from pathlib import Path

import numpy as np

from .base import FrameworkUnavailable, ModelLoadError, PrepareOptions, TensorSpec, one_line


class TorchSession:
    def __init__(self, module, torch, kind: str, shape: tuple[int, ...], threads: int):
        self._module = module
        self._torch = torch
        self._from_numpy = torch.from_numpy
        self.input = TensorSpec(shape, np.dtype(np.float32))
        self.info = {"runtime": "torch", "version": torch.__version__, "threads": threads, "loader": kind}

    def infer(self, x: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self._module(self._from_numpy(x))[0].numpy()

    def infer_full(self, x: np.ndarray) -> np.ndarray:
        """The whole output, batch dimension included (checked once, never timed): TorchScript carries no input
        shape, so a wrong input_size shows up here (e.g. 4x1001 instead of 1x1001)."""
        with self._torch.inference_mode():
            out = self._module(self._from_numpy(x))
        if not isinstance(out, self._torch.Tensor):
            raise TypeError(f"model returns a {type(out).__name__}, expected one tensor of class scores")
        return out.numpy()

    def batched(self, n: int):
        """Batches of up to ``n`` (offline scenario). TorchScript carries no input shape: whether the graph takes
        a batch (or flattens it to 1 row) shows in the rows it returns, which run/offline.py checks untimed."""
        module, from_numpy, mode = self._module, self._from_numpy, self._torch.inference_mode

        def run(x: np.ndarray) -> np.ndarray:
            with mode():
                return module(from_numpy(x)).numpy()

        return run

    def coverage(self) -> dict:
        from .coverage import torch_mobile_coverage

        return torch_mobile_coverage(self._module)

    def close(self) -> None:
        self._module = None


class PyTorchMobile:
    name = "pytorch-mobile"
    requirement = "pytest-aiotbench[torch]"
    option_keys = ()  # the catalog `options` it reads; any other key is a typo

    def prepare(self, model_file: str, options: PrepareOptions) -> TorchSession:
        try:
            import torch
        except ImportError:
            if _no_torch_wheel_here():
                raise FrameworkUnavailable(self.name, NO_AARCH64_TORCH) from None
            raise FrameworkUnavailable.missing(self, "torch==2.13.0") from None
        torch.set_num_threads(options.threads)
        path = Path(model_file)
        try:
            with warnings.catch_warnings():
                # "Lite Interpreter is deprecated ... ExecuTorch", "torch.jit.load is deprecated": known, not news.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", UserWarning)
                if path.suffix == ".ptl":
                    from torch.jit.mobile import _load_for_lite_interpreter

                    module, kind = _load_for_lite_interpreter(str(path)), "lite-interpreter"
                else:
                    module, kind = torch.jit.load(str(path), map_location="cpu").eval(), "torchscript"
        except Exception as exc:  # torch raises RuntimeError/ValueError/its own C++ errors
            raise ModelLoadError(f"PyTorch cannot load {model_file}: {one_line(exc)}") from None
        # TorchScript carries no input shape: the catalog's is trusted, and the first inference checks it.
        return TorchSession(module, torch, kind, (-1, -1, -1, -1), options.threads)


# PyPI's aarch64 Linux torch wheel depends on CUDA packages that do not exist for aarch64.
NO_AARCH64_TORCH = "no installable CPU torch wheel for aarch64 Linux on PyPI (its aarch64 wheel requires CUDA packages)"


def _no_torch_wheel_here() -> bool:
    return platform.machine().lower() in ("aarch64", "arm64") and platform.system() == "Linux"
