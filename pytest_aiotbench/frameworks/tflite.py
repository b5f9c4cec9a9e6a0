"""TensorFlow Lite through ai-edge-litert (LiteRT), falling back to the legacy tflite-runtime."""

from __future__ import annotations

import numpy as np

from .base import BatchUnsupported, FrameworkUnavailable, ModelLoadError, PrepareOptions, TensorSpec, check_single_output, installed_version, one_line


def _interpreter_module():
    """The interpreter module of the runtime found first, and its distribution name. Both expose the same
    ``Interpreter`` and ``OpResolverType``: everything after this uses the module found, never the other one."""
    try:
        import ai_edge_litert.interpreter as module

        return module, "ai-edge-litert"
    except ImportError:
        pass
    try:
        import tflite_runtime.interpreter as module

        return module, "tflite-runtime"
    except ImportError:
        raise FrameworkUnavailable.missing(TFLite, "ai-edge-litert") from None


def _delegate_info(runtime: str, delegate: str, quantized: bool) -> str:
    # tflite-runtime 2.14 creates XNNPACK but hands it float ops only: a quantized model runs on the builtin
    # kernels, exactly as LiteRT with delegate = "none" (same outputs, measured), never as LiteRT's XNNPACK.
    if runtime == "tflite-runtime" and delegate == "xnnpack" and quantized:
        return "xnnpack (float ops only: quantized ops on builtin kernels)"
    return delegate


class TFLiteSession:
    def __init__(self, interpreter, runtime: str, threads: int, delegate: str, model_file: str = ""):
        self._interpreter = interpreter
        inp = interpreter.get_input_details()[0]
        outputs = interpreter.get_output_details()
        check_single_output(model_file, [o["name"] for o in outputs])
        out = outputs[0]
        scale, zero_point = inp["quantization"]
        self.input = TensorSpec(tuple(int(d) for d in inp["shape"]), np.dtype(inp["dtype"]),
                                (float(scale), int(zero_point)) if scale else None)
        # Bound methods looked up once: infer() is the timed path.
        self._set = interpreter.set_tensor
        self._invoke = interpreter.invoke
        self._get = interpreter.get_tensor
        self._in, self._out = inp["index"], out["index"]
        self.info = {"runtime": runtime, "version": installed_version(runtime), "threads": threads,
                     "delegate": _delegate_info(runtime, delegate, self.input.quant is not None),
                     "output_dtype": str(np.dtype(out["dtype"]))}

    def infer(self, x: np.ndarray) -> np.ndarray:
        self._set(self._in, x)
        self._invoke()
        return self._get(self._out)[0]

    def infer_full(self, x: np.ndarray) -> np.ndarray:
        """The whole output tensor, batch dimension included (checked once, never timed)."""
        self._set(self._in, x)
        self._invoke()
        return np.array(self._get(self._out))

    def batched(self, n: int):
        """Batches of up to ``n`` (offline scenario): the input is resized to n (TFLite's resize_tensor_input); a
        model whose graph fixes the batch (a Reshape to 1 x classes) refuses, and the interpreter is put back. A
        shorter last batch resizes again (inside the timed region: it is part of serving that batch)."""
        interp, index = self._interpreter, self._in
        one = list(self.input.shape)

        def resize(k: int) -> None:
            interp.resize_tensor_input(index, [k, *one[1:]], strict=False)
            interp.allocate_tensors()

        try:
            resize(n)
        except (ValueError, RuntimeError) as exc:
            resize(1)
            raise BatchUnsupported(one_line(exc)) from None
        size = [n]
        set_, invoke, get, out = self._set, self._invoke, self._get, self._out

        def run(x: np.ndarray) -> np.ndarray:
            if len(x) != size[0]:
                resize(len(x))
                size[0] = len(x)
            set_(index, x)
            invoke()
            return get(out)

        return run

    def integer_quantized(self) -> bool:
        """Whether the model holds int8/uint8 tensors with a quantization scale (full-integer or dynamic-range)."""
        def quantized(t) -> bool:  # per-tensor scale, or per-channel scales (dynamic-range weights)
            scales = (t.get("quantization_parameters") or {}).get("scales")
            return bool(t.get("quantization", (0.0, 0))[0]) or (scales is not None and len(scales) > 0)

        return any(np.dtype(t["dtype"]).kind in "iu" and np.dtype(t["dtype"]).itemsize == 1 and quantized(t)
                   for t in self._interpreter.get_tensor_details())

    def coverage(self) -> dict:
        from .coverage import tflite_coverage

        return tflite_coverage(self._interpreter, self.info["delegate"])

    def close(self) -> None:
        self._interpreter = None


class TFLite:
    name = "tflite"
    requirement = "pytest-aiotbench[tflite]"
    option_keys = ("delegate",)  # the catalog `options` it reads; any other key is a typo

    def prepare(self, model_file: str, options: PrepareOptions) -> TFLiteSession:
        module, runtime = _interpreter_module()
        # XNNPACK is the runtime's default CPU delegate; options.extra["delegate"] = "none" turns it off.
        delegate = str(options.extra.get("delegate", "xnnpack")).lower()
        if delegate not in ("xnnpack", "none"):  # never report a delegate that is not the one used
            raise ModelLoadError(f"{model_file}: options.delegate = {delegate!r}: the tflite framework runs "
                                 "'xnnpack' (default) or 'none'")
        kwargs = {"model_path": str(model_file), "num_threads": options.threads}
        if delegate == "none":
            kwargs["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            interpreter = module.Interpreter(**kwargs)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"TFLite cannot load {model_file}: {one_line(exc)}") from None
        return TFLiteSession(interpreter, runtime, options.threads, delegate, str(model_file))
