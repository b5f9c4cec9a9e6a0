"""MNN (Alibaba): ``.mnn`` models (the zoo's come from ONNX) through MNN's Module API on its CPU backend.

``precision = "high"``: fp32 arithmetic (MNN's "low" may compute in fp16/bf16 where the CPU can).
Only ``MNN`` itself is imported, never ``MNN.tools``: that package's ``__init__`` imports the converter's command-
line module, which runs ``pip install`` and sends telemetry when imported. ``import MNN`` prints a banner on
stdout; it is silenced."""

from __future__ import annotations

import os

import numpy as np

from .base import FrameworkUnavailable, ModelLoadError, OsThreadsInInfo, PrepareOptions, TensorSpec, one_line, os_thread_count, quiet_stdio

PRECISION = "high"


def import_mnn():
    """``MNN`` with its import banner silenced; ImportError when it is not installed."""
    with quiet_stdio():
        import MNN
        import MNN.expr  # noqa: F401
        import MNN.nn  # noqa: F401
    return MNN


class MnnSession(OsThreadsInInfo):
    def __init__(self, module, expr, shape: tuple[int, ...], info: dict, model_file: str):
        self._module = module
        self._const = expr.const
        self._nchw = expr.NCHW
        self._model_file = model_file
        self.input = TensorSpec(shape, np.dtype(np.float32))
        self._info = info

    def infer(self, x: np.ndarray) -> np.ndarray:
        out = self._module.forward(self._const(x, list(x.shape), self._nchw))
        # a copy: read() is a view of the output variable's memory, reused once the variable is gone
        return np.array(out.read()[0])

    def infer_full(self, x: np.ndarray) -> np.ndarray:
        """The whole output tensor, batch dimension included (checked once, never timed)."""
        return np.array(self._module.forward(self._const(x, list(x.shape), self._nchw)).read())

    def coverage(self) -> dict:
        from .coverage import mnn_coverage

        return mnn_coverage(self._model_file, self.input.shape, self._info["threads"])

    def close(self) -> None:
        self._module = None


class Mnn:
    name = "mnn"
    requirement = "pytest-aiotbench[mnn]"
    option_keys = ()  # the catalog `options` it reads; any other key is a typo

    def prepare(self, model_file: str, options: PrepareOptions) -> MnnSession:
        try:
            MNN = import_mnn()
        except ImportError:
            raise FrameworkUnavailable.missing(self, "MNN==3.6.1") from None
        before = os_thread_count()
        config = {"backend": "CPU", "numThread": int(options.threads), "precision": PRECISION}
        try:
            with quiet_stdio():  # "MNN use high precision"
                runtime = MNN.nn.create_runtime_manager((config,))
            if not os.path.isfile(model_file):
                raise OSError(f"no such file: {model_file}")
            with quiet_stdio(stderr=True):  # "Invalidate buffer to create MNN Module": the exception says it
                module = MNN.nn.load_module_from_file(str(model_file), [], [], runtime_manager=runtime)
            info = module.get_info()
        except Exception as exc:  # MNN raises SystemError ("returned a result with an exception set")
            raise ModelLoadError(f"MNN cannot load {model_file}: {one_line(exc)} (not an MNN model, truncated, "
                                 "or from a newer MNN)") from None
        if len(info.get("inputNames") or []) != 1:
            raise ModelLoadError(f"MNN model {model_file} takes inputs {info.get('inputNames')}, not one")
        shape = _input_shape(info)
        details = {"runtime": "mnn", "version": MNN.version(), "backend": "CPU", "threads": int(options.threads),
                   "requested_threads": options.threads, "precision": f"{PRECISION} (fp32)",
                   "model_version": info.get("version"), "os_threads_before": before}
        return MnnSession(module, MNN.expr, shape, details, str(model_file))


def _input_shape(info: dict) -> tuple[int, ...]:
    """The input's NCHW shape when the model records it; otherwise unknown (the catalog's is trusted and the
    first inference checks the output)."""
    for var in info.get("inputs") or []:
        shape = tuple(int(d) for d in getattr(var, "shape", ()) or ())
        if len(shape) == 4:
            return shape
    return (-1, -1, -1, -1)
