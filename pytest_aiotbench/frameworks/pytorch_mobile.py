"""PyTorch Mobile: ``.ptl`` through the lite interpreter (what runs on phones), TorchScript ``.pt`` through
``torch.jit.load``. Both take NCHW float input unless the model says otherwise."""

from __future__ import annotations

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

    def coverage(self) -> dict:
        from .coverage import torch_mobile_coverage

        return torch_mobile_coverage(self._module)

    def close(self) -> None:
        self._module = None


class PyTorchMobile:
    name = "pytorch-mobile"
    requirement = "pytest-aiotbench[torch]"

    def prepare(self, model_file: str, options: PrepareOptions) -> TorchSession:
        try:
            import torch
        except ImportError:
            raise FrameworkUnavailable(self.name, "pip install 'pytest-aiotbench[torch]'  (torch==2.13.0)") from None
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
