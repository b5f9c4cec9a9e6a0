"""ncnn (Tencent): ``.ncnn.param`` + ``.ncnn.bin`` (the zoo's come from pnnx, from TorchScript), CHW input.

fp32 unless the catalog says otherwise: ncnn's own defaults store and compute in fp16 where the CPU can
(``use_fp16_packed/storage/arithmetic``), which is a different precision, not a faster fp32. ``options.fp16 =
true`` restores them (the zoo's ``fp16`` variant); ``options.vulkan = true`` runs on a Vulkan GPU, and a machine
without one skips the case instead of running the CPU under the GPU's name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import AcceleratorUnavailable, FrameworkUnavailable, ModelLoadError, PrepareOptions, OsThreadsInInfo, TensorSpec, installed_version, os_thread_count, quiet_stdio


def bin_path(param: Path) -> Path:
    """``m.ncnn.param`` -> ``m.ncnn.bin`` (pnnx's names); ``m.param`` -> ``m.bin``."""
    return param.with_suffix(".bin")


def _flag(options: PrepareOptions, key: str, model_file: str) -> bool:
    value = options.extra.get(key, False)
    if not isinstance(value, bool):
        raise ModelLoadError(f"{model_file}: options.{key} = {value!r}: the ncnn framework expects true or false")
    return value


def gpu_count(ncnn) -> int:
    # ncnn prints "dlopen failed libvulkan.so.1 ..." on stderr for every probe when there is no Vulkan loader.
    with quiet_stdio(stderr=True):
        return int(ncnn.get_gpu_count())


class NcnnSession(OsThreadsInInfo):
    def __init__(self, net, ncnn, info: dict):
        self._net = net
        self._mat = ncnn.Mat
        self._in, self._out = net.input_names()[0], net.output_names()[0]
        self._extractor = net.create_extractor
        # ncnn has no batch dimension: one CHW image per extract; the input's size is not in the .param file.
        self.input = TensorSpec((1, 3, -1, -1), np.dtype(np.float32))
        self._info = info

    def infer(self, x: np.ndarray) -> np.ndarray:
        ex = self._extractor()
        ex.input(self._in, self._mat(x[0]))
        status, out = ex.extract(self._out)
        if status != 0:
            raise RuntimeError(f"ncnn extract({self._out!r}) returned {status}")
        return np.array(out).reshape(-1)

    def coverage(self) -> dict:
        from .coverage import ncnn_coverage

        return ncnn_coverage(self._net, self._info["vulkan"])

    def close(self) -> None:
        if self._net is not None:
            self._net.clear()
        self._net = self._extractor = None


class Ncnn:
    name = "ncnn"
    requirement = "pytest-aiotbench[ncnn]"
    option_keys = ("vulkan", "fp16")  # the catalog `options` it reads; any other key is a typo

    def companions(self, model_file: str) -> list[Path]:
        """The weights prepare() reads beside the .param: a device job pushes them with it."""
        return [bin_path(Path(model_file))] if Path(model_file).suffix == ".param" else []

    def prepare(self, model_file: str, options: PrepareOptions) -> NcnnSession:
        try:
            import ncnn
        except ImportError:
            raise FrameworkUnavailable.missing(self, "ncnn==1.0.20261020") from None
        param = Path(model_file)
        weights = bin_path(param)
        vulkan, fp16 = _flag(options, "vulkan", model_file), _flag(options, "fp16", model_file)
        if param.suffix != ".param":
            raise ModelLoadError(f"ncnn cannot load {model_file}: expected a .param file (its weights beside it "
                                 "as .bin)")
        if not weights.is_file():
            raise ModelLoadError(f"ncnn cannot load {model_file}: its weights {weights.name} are missing")
        if vulkan and gpu_count(ncnn) == 0:
            raise AcceleratorUnavailable(self.name, "options.vulkan = true but no Vulkan GPU is available here "
                                         "(no Vulkan device or libvulkan.so.1): not run on the CPU instead")
        net = ncnn.Net()
        opt = net.opt
        opt.num_threads = int(options.threads)  # before load_param: layers create their pipelines with it
        opt.use_vulkan_compute = vulkan
        for attr in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic"):
            setattr(opt, attr, fp16)
        opt.use_bf16_storage = False
        before = os_thread_count()
        with quiet_stdio(stderr=True):  # ncnn prints its own parse errors; the status codes below say it
            status = (net.load_param(str(param)), net.load_model(str(weights)))
        if status != (0, 0):
            net.clear()
            raise ModelLoadError(f"ncnn cannot load {model_file}: load_param/load_model returned {status} "
                                 "(not an ncnn model, truncated, or .param and .bin do not match)")
        if not net.input_names() or not net.output_names():
            raise ModelLoadError(f"ncnn cannot load {model_file}: the network declares no input or output blob")
        info = {"runtime": "ncnn", "version": getattr(ncnn, "__version__", None) or installed_version("ncnn"),
                "threads": int(opt.num_threads), "requested_threads": options.threads,
                "precision": "fp16 storage + arithmetic" if fp16 else "fp32",
                "fp16": {a: bool(getattr(opt, a)) for a in ("use_fp16_packed", "use_fp16_storage",
                                                            "use_fp16_arithmetic", "use_bf16_storage")},
                "vulkan": bool(opt.use_vulkan_compute), "device": "Vulkan GPU" if vulkan else "CPU",
                "os_threads_before": before}
        return NcnnSession(net, ncnn, info)
