"""OpenVINO (Intel): IR ``.xml`` + ``.bin`` (the zoo's come from ONNX; an ``.onnx`` file loads too).

- Precision: OpenVINO's CPU plugin computes in bf16 by default where the CPU has it (GPU/NPU: f16). That is not
  fp32, so ``INFERENCE_PRECISION_HINT`` is ``f32`` unless ``options.precision`` asks for ``bf16``/``f16`` (the zoo's
  ``bf16`` variant); the precision read back from the compiled model is recorded, and one that differs from the
  request skips the case (a CPU without bf16 would run f32 under the bf16 label).
- Target: ``options.device`` = ``CPU`` (default), ``GPU`` or ``NPU``; a device this machine lacks skips the case
  naming what is missing (never AUTO's silent fallback to the CPU).
- No telemetry: ``openvino_telemetry`` is made unimportable before ``openvino`` is first imported, so its model
  converter falls back to its no-op stub and nothing is sent or written under ``~/intel``.
"""

from __future__ import annotations

import sys

import numpy as np

from .base import AcceleratorUnavailable, FrameworkUnavailable, ModelLoadError, OsThreadsInInfo, PrepareOptions, TensorSpec, one_line, os_thread_count

DEVICES = ("CPU", "GPU", "NPU")
PRECISIONS = {"f32": "f32", "fp32": "f32", "bf16": "bf16", "f16": "f16", "fp16": "f16"}


def import_openvino():
    """``openvino`` with its telemetry opted out in code (see the module doc). ImportError when not installed."""
    if "openvino" not in sys.modules:
        # None in sys.modules makes `import openvino_telemetry` raise ImportError: openvino.tools.ovc then uses
        # its telemetry stub (no consent file, no client id, no network).
        sys.modules.setdefault("openvino_telemetry", None)
    import openvino

    return openvino


def _choice(options: PrepareOptions, key: str, allowed, default: str, model_file: str) -> str:
    value = options.extra.get(key, default)
    norm = str(value).upper() if key == "device" else str(value).lower()
    if not isinstance(value, str) or norm not in allowed:
        raise ModelLoadError(f"{model_file}: options.{key} = {value!r}: the openvino framework runs "
                             f"{', '.join(repr(a) for a in dict.fromkeys(allowed))}")
    return norm


def _present(core, device: str) -> bool:
    return any(d == device or d.startswith(device + ".") for d in core.available_devices)


def _why_missing(core, device: str) -> str:
    try:  # loading the plugin is what fails: its message names the missing library or driver
        core.get_property(device, "FULL_DEVICE_NAME")
    except Exception as exc:
        return one_line(exc)[:300]
    return "the plugin loads but finds no device"


class OpenVinoSession(OsThreadsInInfo):
    def __init__(self, core, model, compiled, request, info: dict):
        self._core, self._model, self._compiled = core, model, compiled
        self._request = request
        self._infer = request.infer
        self._output = request.get_output_tensor
        inp = compiled.inputs[0]
        shape = tuple(d.get_length() if d.is_static else -1 for d in inp.get_partial_shape())
        self.input = TensorSpec(shape, np.dtype(inp.get_element_type().to_dtype()))
        self._info = info

    def infer(self, x: np.ndarray) -> np.ndarray:
        self._infer({0: x})
        # a copy: the output tensor is the request's buffer, overwritten by the next inference
        return np.array(self._output(0).data[0])

    def infer_full(self, x: np.ndarray) -> np.ndarray:
        """The whole output tensor, batch dimension included (checked once, never timed)."""
        self._infer({0: x})
        return np.array(self._output(0).data)

    def coverage(self) -> dict:
        from .coverage import openvino_coverage

        return openvino_coverage(self._core, self._model, self._compiled, self._info["device"])

    def close(self) -> None:
        self._request = self._infer = self._output = self._compiled = self._model = self._core = None


class OpenVino:
    name = "openvino"
    requirement = "pytest-aiotbench[openvino]"
    option_keys = ("device", "precision")  # the catalog `options` it reads; any other key is a typo

    def prepare(self, model_file: str, options: PrepareOptions) -> OpenVinoSession:
        try:
            ov = import_openvino()
        except ImportError:
            raise FrameworkUnavailable.missing(self, "openvino==2026.4.1") from None
        device = _choice(options, "device", DEVICES, "CPU", model_file)
        precision = PRECISIONS[_choice(options, "precision", PRECISIONS, "f32", model_file)]
        before = os_thread_count()
        core = ov.Core()
        if not _present(core, device):
            raise AcceleratorUnavailable(self.name, f"options.device = {device!r} but OpenVINO sees only "
                                         f"{', '.join(core.available_devices) or 'no device'} here "
                                         f"({_why_missing(core, device)}): not run on another device instead")
        try:
            model = core.read_model(str(model_file))
        except Exception as exc:  # RuntimeError with the reader's multi-line message
            raise ModelLoadError(f"OpenVINO cannot load {model_file}: {one_line(exc)}") from None
        if len(model.inputs) != 1:
            raise ModelLoadError(f"OpenVINO model {model_file} takes {len(model.inputs)} inputs, not 1")
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if device == "CPU":
            config["INFERENCE_NUM_THREADS"] = int(options.threads)
        try:
            compiled = core.compile_model(model, device, config)
        except Exception as exc:
            raise ModelLoadError(f"OpenVINO cannot compile {model_file} for {device}: "
                                 f"{one_line(exc)}") from None
        used = _read(compiled, "INFERENCE_PRECISION_HINT")
        used = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}.get(used, used)
        if used != precision:
            raise AcceleratorUnavailable(self.name, f"options.precision = {precision!r} but {device} compiled the "
                                         f"model in {used!r} (this {device} does not support {precision})")
        threads = _read(compiled, "INFERENCE_NUM_THREADS")
        info = {"runtime": "openvino", "version": ov.get_version(), "device": device,
                "execution_devices": _read(compiled, "EXECUTION_DEVICES"),
                "threads": int(threads) if threads not in (None, "") else None,
                "requested_threads": options.threads, "streams": _read(compiled, "NUM_STREAMS"),
                "precision": used, "performance_hint": _read(compiled, "PERFORMANCE_HINT"),
                "os_threads_before": before}
        return OpenVinoSession(core, model, compiled, compiled.create_infer_request(), info)


def _read(compiled, key: str):
    """A compiled-model property as plain JSON (None where the device does not report it)."""
    try:
        value = compiled.get_property(key)
    except Exception:
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, (bool, int, float, str)):
        return value
    text = str(value)
    return text.split("'")[1] if text.startswith("<Type: '") else text
