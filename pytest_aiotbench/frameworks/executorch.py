"""ExecuTorch, PyTorch Mobile's successor: ``.pte`` programs (the zoo's are XNNPACK-delegated) through
``executorch.runtime.Runtime``. NCHW float input unless the program says otherwise (its method metadata carries the
input shape and dtype, unlike TorchScript)."""

from __future__ import annotations

import os
import re
import warnings

import numpy as np

from .base import FrameworkUnavailable, ModelLoadError, PrepareOptions, TensorSpec, check_single_output, one_line

# ExecuTorch ScalarType codes (c10 numbering) -> numpy
_DTYPES = {0: np.uint8, 1: np.int8, 3: np.int32, 4: np.int64, 5: np.float16, 6: np.float32, 7: np.float64}


# executorch/runtime/core/error.h: the pybindings report only the number ("error: 0x:23").
_ERRORS = {0x01: "Internal", 0x02: "InvalidState", 0x10: "NotSupported", 0x12: "InvalidArgument",
           0x13: "InvalidType", 0x14: "OperatorMissing (the runtime lacks a kernel the program needs)",
           0x20: "NotFound", 0x21: "MemoryAllocationFailed", 0x22: "AccessFailed",
           0x23: "InvalidProgram (truncated or corrupt)", 0x24: "InvalidExternalData", 0x25: "OutOfResources",
           0x30: "DelegateInvalidCompatibility (delegate payload corrupt or from another version)",
           0x31: "DelegateMemoryAllocationFailed", 0x32: "DelegateInvalidHandle"}


def _explain(exc: BaseException) -> str:
    line = one_line(exc)
    m = re.search(r"error: 0x:?([0-9a-fA-F]+)", line)
    if m and int(m.group(1), 16) in _ERRORS:
        line += f" = {_ERRORS[int(m.group(1), 16)]}"
    return line


def _check_identifier(model_file: str) -> None:
    """A .pte is a flatbuffer whose file identifier (bytes 4-8) is ``ET`` + two digits. ExecuTorch 1.5 logs a
    mismatching identifier raw, and its Python log hook then aborts the whole process on non-UTF-8 bytes
    (``terminate called after throwing pybind11::error_already_set``): refuse such files before the runtime sees
    them."""
    try:
        with open(model_file, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelLoadError(f"ExecuTorch cannot load {model_file}: {one_line(exc)}") from None
    ident = head[4:8]
    if len(head) < 8 or ident[:2] != b"ET" or not ident[2:].isdigit():
        raise ModelLoadError(f"ExecuTorch cannot load {model_file}: not an ExecuTorch program (file identifier "
                             f"{ident!r}, expected b'ET' + 2 digits at bytes 4-8)")


def _set_threads(portable_lib, threads: int) -> tuple[int | None, str]:
    """The runtime's process-wide threadpool (XNNPACK uses it). Returns (threads now, how)."""
    get = getattr(portable_lib, "_threadpool_get_thread_count", None)
    reset = getattr(portable_lib, "_unsafe_reset_threadpool", None)
    if get is None or reset is None:
        return None, "runtime default (this executorch has no threadpool control)"
    if get() != threads:
        # "unsafe": not while another method executes; cases run one at a time in this process.
        reset(int(threads))
    return int(get()), "threadpool reset (process-wide)"


class ExecuTorchSession:
    def __init__(self, program, method, torch, shape: tuple[int, ...], dtype: np.dtype, info: dict):
        self._program = program  # a method must not outlive its program
        self._method = method
        self._execute = method.execute
        self._from_numpy = torch.from_numpy
        self.input = TensorSpec(shape, dtype)
        self.info = info

    def infer(self, x: np.ndarray) -> np.ndarray:  # x is contiguous (preprocess.to_model_inputs makes it so)
        out = self._execute([self._from_numpy(x)])[0]
        return out.numpy()[0]

    def infer_full(self, x: np.ndarray) -> np.ndarray:
        """The whole output tensor, batch dimension included (checked once, never timed)."""
        return np.array(self._execute([self._from_numpy(x)])[0].numpy())

    def coverage(self) -> dict:
        from .coverage import executorch_coverage

        return executorch_coverage(self.model_file, self.info["method"])

    def close(self) -> None:
        self._method = self._execute = self._program = None


class ExecuTorch:
    name = "executorch"
    requirement = "pytest-aiotbench[executorch]"
    option_keys = ()  # the catalog `options` it reads; any other key is a typo

    def prepare(self, model_file: str, options: PrepareOptions) -> ExecuTorchSession:
        try:
            with warnings.catch_warnings():
                # import-time deprecation/"experimental API" warnings of executorch and torchao: known, not news.
                warnings.simplefilter("ignore")
                import torch
                from executorch.extension.pybindings import portable_lib
                from executorch.runtime import Runtime
        except ImportError:
            raise FrameworkUnavailable.missing(self, "executorch==1.5.1, torch==2.13.0") from None
        from executorch.version import __version__ as et_version

        _check_identifier(os.fspath(model_file))
        threads, how = _set_threads(portable_lib, options.threads)
        runtime = Runtime.get()
        try:
            program = runtime.load_program(os.fspath(model_file))
            if "forward" not in program.method_names:
                raise ModelLoadError(f"ExecuTorch cannot load {model_file}: the program has no 'forward' method "
                                     f"(methods: {', '.join(sorted(program.method_names)) or 'none'})")
            method = program.load_method("forward")
            meta = method.metadata
        except ModelLoadError:
            raise
        except Exception as exc:  # the pybindings raise RuntimeError with the runtime's error code
            raise ModelLoadError(f"ExecuTorch cannot load {model_file}: {_explain(exc)}") from None
        if meta.num_inputs() != 1:
            raise ModelLoadError(f"ExecuTorch program {model_file} takes {meta.num_inputs()} inputs, not 1")
        outputs = meta.num_outputs() if hasattr(meta, "num_outputs") else 1
        check_single_output(os.fspath(model_file), [f"output {i}" for i in range(outputs)])
        tin = meta.input_tensor_meta(0)
        shape = tuple(int(d) for d in tin.sizes())
        dtype = np.dtype(_DTYPES.get(int(tin.dtype()), np.float32))
        backends = runtime.backend_registry.registered_backend_names
        info = {"runtime": "executorch", "version": et_version, "threads": threads, "threads_set_by": how,
                "requested_threads": options.threads, "method": "forward", "backends_available": backends,
                "torch": torch.__version__}
        session = ExecuTorchSession(program, method, torch, shape, dtype, info)
        session.model_file = os.fspath(model_file)  # read again by coverage(), after timing
        return session
