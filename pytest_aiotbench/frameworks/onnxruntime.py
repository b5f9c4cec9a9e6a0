"""ONNX Runtime: stands in for Caffe2, whose ONNX path led here once Caffe2 left PyTorch."""

from __future__ import annotations

import numpy as np

from .base import AcceleratorUnavailable, FrameworkUnavailable, ModelLoadError, PrepareOptions, TensorSpec, check_single_output, one_line

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8,
           "tensor(int8)": np.int8}


# Operators that only a quantized graph has (QDQ, QOperator and integer-arithmetic forms).
_QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
              "MatMulInteger", "ConvInteger", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool"}


class OnnxRuntimeSession:
    def __init__(self, session, ort_version: str, threads: int, model_file: str = ""):
        self._session = session
        self._model_file = model_file
        inp = session.get_inputs()[0]
        shape = tuple(d if isinstance(d, int) else -1 for d in inp.shape)
        self.input = TensorSpec(shape, np.dtype(_DTYPES.get(inp.type, np.float32)))
        self._run = session.run
        self._input_name = inp.name
        outputs = session.get_outputs()
        check_single_output(model_file, [o.name for o in outputs])
        self._outputs = [outputs[0].name]
        self.info = {"runtime": "onnxruntime", "version": ort_version, "threads": threads,
                     "providers": session.get_providers(), "output_dtype": str(np.dtype(_DTYPES[outputs[0].type])) if outputs[0].type in _DTYPES
                     else outputs[0].type}

    def integer_quantized(self) -> bool | None:
        """Whether the graph holds int8/uint8 tensors or quantized operators (None without the onnx package)."""
        try:
            import onnx
        except ImportError:
            return None
        try:
            model = onnx.load(self._model_file, load_external_data=False)
        except Exception:  # noqa: BLE001 - ORT loaded it; a reader that cannot says nothing either way
            return None
        integer = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
        graphs, seen = [model.graph], False
        while graphs and not seen:
            graph = graphs.pop()
            seen = any(t.data_type in integer for t in graph.initializer) or any(
                n.op_type in _QUANT_OPS for n in graph.node)
            graphs += [a.g for n in graph.node for a in n.attribute if a.type == onnx.AttributeProto.GRAPH]
        return seen

    def infer(self, x: np.ndarray) -> np.ndarray:
        return self._run(self._outputs, {self._input_name: x})[0][0]

    def infer_full(self, x: np.ndarray) -> np.ndarray:
        """The whole output tensor, batch dimension included (checked once, never timed)."""
        return np.asarray(self._run(self._outputs, {self._input_name: x})[0])

    def coverage(self) -> dict:
        from .coverage import onnxruntime_coverage

        return onnxruntime_coverage(self._model_file, self.info["providers"], self._input_name, self.input.shape,
                                    self.input.dtype, self.info["threads"])

    def close(self) -> None:
        self._session = None


class OnnxRuntime:
    name = "onnxruntime"
    requirement = "pytest-aiotbench[onnx]"
    option_keys = ("providers",)  # the catalog `options` it reads; any other key is a typo

    def prepare(self, model_file: str, options: PrepareOptions) -> OnnxRuntimeSession:
        try:
            import onnxruntime as ort
        except ImportError:
            raise FrameworkUnavailable.missing(self, "onnxruntime") from None
        providers = _providers(options, model_file)
        # ONNX Runtime warns and runs the CPU provider when asked for one it lacks: a case measured that way would
        # carry the accelerator's name. A provider this build does not have skips the case, naming it.
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing:
            raise AcceleratorUnavailable(self.name, f"options.providers asks for {', '.join(missing)}, not in this "
                                         f"onnxruntime build (it has: {', '.join(available)}): not run on "
                                         "another provider instead")
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(model_file), sess_options=so, providers=providers)
        except Exception as exc:  # ort raises its own Fail/InvalidProtobuf/... types
            raise ModelLoadError(f"ONNX Runtime cannot load {model_file}: {one_line(exc)}") from None
        dropped = [p for p in providers if p not in session.get_providers()]
        if dropped:  # listed by the build but failed to initialise (no device, driver): ort fell back silently
            raise AcceleratorUnavailable(self.name, f"options.providers: {', '.join(dropped)} could not be "
                                         f"created here (the session runs only {', '.join(session.get_providers())})")
        try:
            return OnnxRuntimeSession(session, ort.__version__, options.threads, str(model_file))
        except ModelLoadError:
            session = None  # drop the loaded graph before the case fails
            raise


def _providers(options: PrepareOptions, model_file: str) -> list[str]:
    """``options.providers``: one execution provider name or a list in priority order (default: the CPU one)."""
    value = options.extra.get("providers", ["CPUExecutionProvider"])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ModelLoadError(f"{model_file}: options.providers = {value!r}: expected an execution provider name or "
                             "a list of them, e.g. [\"CPUExecutionProvider\"]")
    return list(value)
