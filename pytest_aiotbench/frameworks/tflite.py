"""TensorFlow Lite through ai-edge-litert (LiteRT), falling back to the legacy tflite-runtime."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import numpy as np

from .base import FrameworkUnavailable, ModelLoadError, PrepareOptions, TensorSpec, one_line


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError:
        raise FrameworkUnavailable("tflite", "pip install 'pytest-aiotbench[tflite]'  (ai-edge-litert)") from None


class TFLiteSession:
    def __init__(self, interpreter, runtime: str, threads: int, delegate: str):
        self._interpreter = interpreter
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
        scale, zero_point = inp["quantization"]
        self.input = TensorSpec(tuple(int(d) for d in inp["shape"]), np.dtype(inp["dtype"]),
                                (float(scale), int(zero_point)) if scale else None)
        # Bound methods looked up once: infer() is the timed path.
        self._set = interpreter.set_tensor
        self._invoke = interpreter.invoke
        self._get = interpreter.get_tensor
        self._in, self._out = inp["index"], out["index"]
        self.info = {"runtime": runtime, "version": _version(runtime), "threads": threads, "delegate": delegate,
                     "output_dtype": str(np.dtype(out["dtype"]))}

    def infer(self, x: np.ndarray) -> np.ndarray:
        self._set(self._in, x)
        self._invoke()
        return self._get(self._out)[0]

    def coverage(self) -> dict:
        from .coverage import tflite_coverage

        return tflite_coverage(self._interpreter, self.info["delegate"])

    def close(self) -> None:
        self._interpreter = None


class TFLite:
    name = "tflite"
    requirement = "pytest-aiotbench[tflite]"

    def prepare(self, model_file: str, options: PrepareOptions) -> TFLiteSession:
        Interpreter, runtime = _interpreter_class()
        # XNNPACK is the runtime's default CPU delegate; options.extra["delegate"] = "none" turns it off.
        delegate = str(options.extra.get("delegate", "xnnpack")).lower()
        kwargs = {"model_path": str(model_file), "num_threads": options.threads}
        if delegate == "none":
            from ai_edge_litert.interpreter import OpResolverType  # only meaningful with LiteRT

            kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            interpreter = Interpreter(**kwargs)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"TFLite cannot load {model_file}: {one_line(exc)}") from None
        return TFLiteSession(interpreter, runtime, options.threads, delegate)


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None
