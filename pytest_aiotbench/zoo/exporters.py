"""Export steps, each run in its own subprocess by ``build.py``: ``python -m pytest_aiotbench.zoo.exporters JOB RESULT``.

A job is a JSON file; the result JSON says ``{"ok": true, "info": {...}}`` or ``{"ok": false, "error": "..."}``.
Steps: ``source`` (build the weights once: torchvision pretrained/random with BatchNorm re-estimation, or a user's
TorchScript), ``ptl`` (lite interpreter), ``onnx``, ``tflite`` (fp32 via litert-torch, NHWC IO), ``quant``
(dynamic / int8 / fp16 from the fp32 TFLite via ai-edge-quantizer) and ``pte`` (ExecuTorch, XNNPACK delegate, NCHW
IO; needs the executorch extra). Heavy imports happen only here.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

from ..errors import one_line

EXIT_PRETRAINED_MISSING = 3  # the source step's way of telling the parent "pretrained weights not available"


class StepError(Exception):
    """A step that cannot be done as asked; the message is the one-line reason."""


class PretrainedUnavailable(StepError):
    pass


# ---------------------------------------------------------------------------------------------------------------
# source


def _tv_models():
    from .torchvision_compat import import_torchvision

    return import_torchvision().models


def _arch_kwargs(model: dict, pretrained: bool) -> dict:
    kwargs = dict(model.get("builder_kwargs") or {})
    kwargs["num_classes"] = int(model["num_classes"])
    if model["builder"] == "inception_v3":
        # torchvision's pretrained InceptionV3 expects transform_input=True (it re-normalizes ImageNet-normalized
        # input to its own (x-0.5)/0.5); the aux head exists only for training and is dropped after loading.
        kwargs.update(transform_input=True, aux_logits=pretrained, init_weights=not pretrained)
    return kwargs


def _build_arch(model: dict, pretrained: bool = False):
    builder = getattr(_tv_models(), model["builder"])
    net = builder(weights=None, **_arch_kwargs(model, pretrained))
    return net


def _strip_aux(net) -> None:
    if getattr(net, "AuxLogits", None) is not None:
        net.AuxLogits = None
        net.aux_logits = False


def pretrained_checkpoint(model: dict) -> Path:
    """Where torchvision's pretrained checkpoint of ``model`` lives in the torch hub cache (it may not exist)."""
    import torch

    enum = getattr(_tv_models(), model["weights_enum"])
    url = enum.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def state_sha256(state_dict) -> str:
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key]
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _normalize(pixels: np.ndarray, mean, std, color: str = "RGB") -> np.ndarray:
    if color == "BGR":  # pixels are decoded RGB; the model wants the other channel order
        pixels = pixels[..., ::-1]
    x = (pixels.astype(np.float32) - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # NCHW


def _synthetic_pixels(n: int, size: int, seed: int) -> np.ndarray:
    """Smooth random images (upsampled coarse noise): used for BatchNorm statistics when no images are given."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        coarse = rng.integers(0, 256, (int(rng.integers(2, 16)),) * 2 + (3,), dtype=np.uint8)
        out.append(np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC)))
    return np.stack(out)


def _reestimate_batchnorm(net, batches) -> int:
    """Reset every BatchNorm's running statistics and re-estimate them as a cumulative average (momentum=None)
    over train-mode forward passes. Without this, random-init MobileNetV2/MnasNet give vanishing logits."""
    import torch

    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    net.train()
    with torch.no_grad():
        for batch in batches:
            net(torch.from_numpy(batch))
    net.eval()
    return len(bns)


def _flops(net, x) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(x)
    return int(counter.get_total_flops())


def _output_health(logits: np.ndarray) -> dict:
    logits = logits.reshape(len(logits), -1)
    return {"logit_std": float(logits.std()), "distinct_top1": int(len(set(logits.argmax(1).tolist()))),
            "images": int(len(logits))}


def check_health(logits, model: dict, what: str) -> None:
    """The source model's answers on the probe images: one row of ``num_classes`` finite scores per image, else
    StepError (the model fails: nothing is exported from weights whose answers cannot be scored)."""
    logits = np.asarray(logits)
    n = int(model["num_classes"])
    if logits.ndim != 2 or logits.shape[1] != n:
        shape = "x".join(map(str, logits.shape))
        hint = (f"pass --num-classes {logits.shape[1]} (with --background if output 0 is a background class)"
                if logits.ndim == 2 else "a classifier answers one row of class scores per image")
        raise StepError(f"{what}: the model answers {shape} for {len(logits)} probe images, expected "
                        f"{len(logits)}x{n} (num_classes = {n}): {hint}")
    finite = np.isfinite(logits)
    if not finite.all():
        bad = int((~finite).any(axis=1).sum())
        raise StepError(f"{what}: the model's output is not finite (NaN/Inf) on {bad} of {len(logits)} probe "
                        "images: its weights are broken (nothing exported)")


def check_finite(out, what: str) -> None:
    """An exported artifact's answers must be finite (its health check); else the artifact fails."""
    if not np.isfinite(np.asarray(out, dtype=np.float64)).all():
        raise StepError(f"{what}: the exported model's output is not finite (NaN/Inf): not written as good")


def step_source(job: dict) -> dict:
    import torch

    model, weights = job["model"], job["weights"]
    size = int(model["input_size"])
    torch.manual_seed(int(job.get("seed", 0)))
    pixels = None
    if job.get("calibration"):
        from .calibration import make_pixels

        pixels = make_pixels(job["calibration"], size, int(model["resize"]))
    if weights == "torchscript":
        path = Path(job["torchscript"])
        net = torch.jit.load(str(path), map_location="cpu").eval()
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        info = {"weights": f"torchscript:{sha}", "source_sha256": sha, "source": str(path.resolve())}
        bn_info = None
    else:
        pretrained = weights == "pretrained"
        if weights == "state_dict":
            net, source = _load_state_dict(model, Path(job["state_dict"]))
            bn_info = None
        elif pretrained:
            net = _build_arch(model, pretrained)
            ckpt = pretrained_checkpoint(model)
            if not ckpt.is_file():  # the parent downloads it first; reaching this means it vanished meanwhile
                raise PretrainedUnavailable(
                    f"{model['name']}: pretrained weights not in the torch hub cache ({ckpt}): run the build "
                    f"again to download them, or use --weights random")
            net.load_state_dict(torch.load(str(ckpt), map_location="cpu", weights_only=True))
            _strip_aux(net)
            source = f"torchvision.models.{model['builder']}({model['weights_enum']}.IMAGENET1K_V1) {ckpt.name}"
            bn_info = None
        else:
            net = _build_arch(model, pretrained)
            n = int(job.get("bn_images", 32))
            bn_pixels = pixels[:n] if pixels is not None and len(pixels) else _synthetic_pixels(n, size, 0)
            x = _normalize(bn_pixels, model["mean"], model["std"], model.get("color", "RGB"))
            batches = [x[i:i + 8] for i in range(0, len(x), 8)]
            count = _reestimate_batchnorm(net, batches)
            source = f"torchvision.models.{model['builder']}(weights=None), seed {job.get('seed', 0)}"
            bn_info = {"layers": count, "images": int(len(x)),
                       "images_from": "calibration set" if pixels is not None else "synthetic smooth noise",
                       "momentum": None}
        net.eval()
        state = net.state_dict()
        sha = state_sha256(state)
        torch.save({"state_dict": state, "model": model, "weights": weights, "sha256": sha}, job["out"])
        tag = f"state_dict:{hashlib.sha256(Path(job['state_dict']).read_bytes()).hexdigest()}" \
            if weights == "state_dict" else weights
        info = {"weights": tag, "source_sha256": sha, "source": source}
        if bn_info:
            info["batchnorm_reestimated"] = bn_info
    x = torch.zeros(1, 3, size, size)
    info["params"] = int(sum(p.numel() for p in net.parameters()))
    try:
        info["flops"] = _flops(net, x)
    except Exception as exc:  # FLOP counting is informative only
        info["flops"] = None
        info["flops_error"] = f"{type(exc).__name__}: {exc}"
    probe = pixels[:16] if pixels is not None else _synthetic_pixels(8, size, 1)
    with torch.no_grad():
        answer = net(torch.from_numpy(_normalize(probe, model["mean"], model["std"], model.get("color", "RGB"))))
    if not isinstance(answer, torch.Tensor):
        raise StepError(f"{info['source']}: the model returns a {type(answer).__name__}, expected one tensor of "
                        "class scores")
    check_health(answer.numpy(), model, info["source"])
    info["output_health"] = _output_health(answer.numpy())
    info["torchvision_shimmed"] = bool(sys.modules.get("pytest_aiotbench.zoo.torchvision_compat")
                                       and sys.modules["pytest_aiotbench.zoo.torchvision_compat"].SHIMMED)
    return info


def _load_state_dict(model: dict, path: Path):
    """The user's ``state_dict`` (or a checkpoint dict holding one under ``state_dict``) in torchvision's builder,
    loaded strictly: a file for another architecture is a one-line error naming what does not fit."""
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise StepError(f"{path}: not a loadable PyTorch state_dict ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise StepError(f"{path}: not a state_dict (a mapping of parameter names to tensors)")
    has_aux = any(k.startswith("AuxLogits.") for k in state)
    net = _build_arch(model, pretrained=has_aux)
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = [ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln][:1] or [str(exc)[:200]]
        raise StepError(f"{path} does not fit torchvision.models.{model['builder']}: {first[0]} (pick the "
                        f"builder with --arch, or check --num-classes)") from None
    bad = [f"{len(v)} {what} (e.g. {', '.join(list(v)[:3])})" for what, v in
           (("missing", result.missing_keys), ("unexpected", result.unexpected_keys)) if v]
    if bad:
        raise StepError(f"{path} does not fit torchvision.models.{model['builder']}: {'; '.join(bad)} keys "
                        f"(pick the builder with --arch, or check --num-classes)")
    _strip_aux(net)
    return net, f"torchvision.models.{model['builder']}(weights=None) + state_dict {path.resolve()}"


def load_source(job: dict):
    """(eager or scripted module in eval mode, is_torchscript)."""
    import torch

    if job["weights"] == "torchscript":
        return torch.jit.load(job["source_path"], map_location="cpu").eval(), True
    saved = torch.load(job["source_path"], map_location="cpu", weights_only=False)
    net = _build_arch(job["model"], pretrained=False)
    _strip_aux(net)
    net.load_state_dict(saved["state_dict"])
    return net.eval(), False


def _example(job: dict):
    import torch

    size = int(job["model"]["input_size"])
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 3, size, size, generator=g)


def _source_and_reference(job: dict):
    """The source network, whether it came from TorchScript, its example input, and its eager output on that
    input: what every export is checked against."""
    import torch

    net, scripted = load_source(job)
    x = _example(job)
    with torch.no_grad():
        ref = net(x).numpy()
    return net, scripted, x, ref


# ---------------------------------------------------------------------------------------------------------------
# ptl / onnx / tflite


def step_ptl(job: dict) -> dict:
    import torch

    net, scripted, x, ref = _source_and_reference(job)
    with torch.no_grad():
        module = net if scripted else torch.jit.trace(net, x, check_trace=False)
    module = module.eval()
    info = {"from": "torchscript" if scripted else "torch.jit.trace"}
    t0 = time.perf_counter()
    try:
        from torch.utils.mobile_optimizer import optimize_for_mobile

        module = optimize_for_mobile(module)
        info["optimize_for_mobile"] = True
    except Exception as exc:  # this CPU wheel is built without XNNPACK: "Mobile optimization only available ..."
        info["optimize_for_mobile"] = False
        info["optimize_for_mobile_error"] = one_line(exc, with_type=True, limit=200)
    module._save_for_lite_interpreter(job["out"])
    info["convert_seconds"] = time.perf_counter() - t0
    from torch.jit.mobile import _load_for_lite_interpreter

    lite = _load_for_lite_interpreter(job["out"])
    out = lite(x).detach().numpy()
    check_finite(out, job["out"])
    info["max_abs_diff_vs_eager"] = float(np.abs(out - ref).max())
    info["coverage"] = _coverage("ptl", job["out"], module=lite)
    return info


def step_onnx(job: dict) -> dict:
    import torch

    net, scripted, x, ref = _source_and_reference(job)
    t0 = time.perf_counter()
    opset = int(job.get("opset", 17))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), job["out"], dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    info = {"opset": opset, "exporter": "torch.onnx.export(dynamo=False)", "convert_seconds": time.perf_counter() - t0}
    import onnxruntime as ort

    sess = ort.InferenceSession(job["out"], providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    check_finite(out, job["out"])
    info["max_abs_diff_vs_eager"] = float(np.abs(out - ref).max())
    info["coverage"] = _coverage("onnx", job["out"])
    return info


def _tflite_run(path_or_bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    kw = {"model_path": str(path_or_bytes)} if isinstance(path_or_bytes, (str, Path)) else {"model_content": path_or_bytes}
    it = Interpreter(**kw, num_threads=2)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for row in x:
        v = row[None]
        if i["dtype"] != np.float32:
            scale, zp = i["quantization"]
            info = np.iinfo(i["dtype"])
            v = np.clip(np.round(v / scale + zp), info.min, info.max).astype(i["dtype"])
        it.set_tensor(i["index"], v)
        it.invoke()
        y = it.get_tensor(o["index"]).astype(np.float32)
        if o["dtype"] != np.float32 and o["quantization"][0]:
            y = (y - o["quantization"][1]) * o["quantization"][0]
        outs.append(y[0])
    return np.stack(outs)


def _exportable_source(job: dict):
    """The source network in a form torch.export can trace, its example input, its eager output on it, and
    whether it came from TorchScript."""
    net, scripted, x, ref = _source_and_reference(job)
    if scripted:  # torch.export cannot trace a ScriptModule: convert its graph to an ExportedProgram first
        from torch._export.converter import TS2EPConverter

        net = TS2EPConverter(net, (x,)).convert().module()
    return net, x, ref, scripted


def step_tflite(job: dict) -> dict:
    import litert_torch

    from collections import Counter

    from .rewrites import rewrite_max_pool_after_relu

    t0 = time.perf_counter()
    net, x, ref, scripted = _exportable_source(job)
    rewrites: Counter = Counter()
    if not scripted:  # module-level rewrite: a TorchScript source has no torchvision structure to match
        rewrite_max_pool_after_relu(net, rewrites)
    nhwc = litert_torch.to_channel_last_io(net, args=[0])  # net is in eval mode (an exported module refuses .eval())
    edge = litert_torch.convert(nhwc, (x.permute(0, 2, 3, 1).contiguous(),))
    edge.export(job["out"])
    info = {"converter": "litert_torch.convert + to_channel_last_io(args=[0])", "layout": "NHWC",
            "convert_seconds": time.perf_counter() - t0, "rewrites": dict(rewrites)}
    out = _tflite_run(job["out"], x.permute(0, 2, 3, 1).numpy())
    check_finite(out, job["out"])
    info["max_abs_diff_vs_eager"] = float(np.abs(out - ref).max())
    info["coverage"] = _coverage("tflite", job["out"])
    return info


def step_pte(job: dict) -> dict:
    """ExecuTorch: torch.export -> exact rewrites that keep ops in XNNPACK (zoo/rewrites.py) ->
    to_edge_transform_and_lower(XNNPACK partitioner) -> .pte; fp32, NCHW IO."""
    from collections import Counter

    import torch
    from executorch import version as et_version
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from .rewrites import rewrite_exported, rewrite_module

    t0 = time.perf_counter()
    net, x, ref, scripted = _exportable_source(job)
    rewrites: Counter = Counter()
    if job.get("rewrites", True):
        rewrite_module(net, rewrites)
    exported = torch.export.export(net, (x,))
    if job.get("rewrites", True):
        exported = rewrite_exported(exported, rewrites)
    lowered = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
    delegated = sum(1 for node in lowered.exported_program().graph.nodes
                    if node.op == "call_function" and "executorch_call_delegate" in str(node.target))
    program = lowered.to_executorch()
    with open(job["out"], "wb") as fh:
        program.write_to_file(fh)
    info = {"converter": "torch.export + executorch.exir.to_edge_transform_and_lower(XnnpackPartitioner)",
            "from": "torchscript via TS2EPConverter" if scripted else "eager", "delegate": "XNNPACK",
            "delegated_subgraphs": delegated, "layout": "NCHW", "executorch": et_version.__version__,
            "convert_seconds": time.perf_counter() - t0, "rewrites": dict(rewrites)}
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(job["out"]).load_method("forward")
    out = method.execute([x])[0].numpy()
    check_finite(out, job["out"])
    info["max_abs_diff_vs_eager"] = float(np.abs(out - ref).max())
    info["coverage"] = _coverage("pte", job["out"])
    return info


def _coverage(kind: str, path: str, module=None) -> dict:
    """The artifact's delegation coverage, measured the way the benchmark measures it per case (one definition:
    frameworks/coverage.py), so the manifest says before any run which ops fall outside the accelerator."""
    from ..frameworks import coverage

    def inspect():
        if kind == "pte":
            return coverage.executorch_coverage(path)
        if kind == "ptl":
            return coverage.torch_mobile_coverage(module)
        if kind == "onnx":
            import onnxruntime as ort

            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            i = sess.get_inputs()[0]
            return coverage.onnxruntime_coverage(path, sess.get_providers(), i.name, i.shape,
                                                 np.float32 if i.type == "tensor(float)" else np.uint8)
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=path, num_threads=1)
        it.allocate_tensors()
        return coverage.tflite_coverage(it)

    return coverage.collect(inspect)


# ---------------------------------------------------------------------------------------------------------------
# quantization (no torch needed)


def _minmax_update(qsv: dict, new: dict) -> dict:
    """Global min/max over all calibration samples (ai-edge-quantizer's default is a moving average, which
    under-estimates ranges and cost MobileNetV2 ~40 top-1 points here)."""
    if not qsv:
        return dict(new)
    out = dict(new)
    out["min"] = np.minimum(qsv["min"], new["min"])
    out["max"] = np.maximum(qsv["max"], new["max"])
    if "num_samples" in qsv and "num_samples" in new:
        out["num_samples"] = qsv["num_samples"] + new["num_samples"]
    return out


def step_quant(job: dict) -> dict:
    from ai_edge_quantizer import calibrator, qtyping, quantizer, recipe
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    mode, fp32 = job["quant"], job["fp32_path"]
    qt = quantizer.Quantizer(fp32)
    info: dict = {"tool": "ai-edge-quantizer"}
    t0 = time.perf_counter()
    calibration_result = None
    if mode == "dynamic":
        qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
        info["recipe"] = "dynamic_wi8_afp32 (int8 channelwise weights, float activations quantized at run time)"
    elif mode == "fp16":
        qt.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                  algorithm_key=AlgorithmName.FLOAT_CASTING)
        info["recipe"] = "weight-only float16 casting (FLOAT_CASTING, 16 bits), float32 compute and IO"
    elif mode == "int8":
        qt.load_quantization_recipe(recipe.static_wi8_ai8())
        from .calibration import make_pixels

        model = job["model"]
        pixels = make_pixels(job["calibration"], int(model["input_size"]), int(model["resize"]))
        x = _normalize(pixels, model["mean"], model["std"], model.get("color", "RGB")).transpose(0, 2, 3, 1)  # NHWC
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=fp32)
        sig = it.get_signature_list()
        key = next(iter(sig))
        name = sig[key]["inputs"][0]
        cal = calibrator.Calibrator(qt._float_model_buffer, num_threads=2, qsv_update_func=_minmax_update)
        cal.calibrate({key: [{name: row[None]} for row in x]}, qt._recipe_manager)
        margin = float(job.get("calibration_margin", 1.25))
        calibration_result = {}
        for tensor, qsv in cal.get_model_qsvs().items():
            if "min" in qsv and "max" in qsv:
                qsv = {**qsv, "min": np.asarray(qsv["min"] * margin, np.float32),
                       "max": np.asarray(qsv["max"] * margin, np.float32)}
            calibration_result[tensor] = qsv
        info["recipe"] = ("static_wi8_ai8: int8 channelwise weights, int8 activations, int8 input/output; "
                          f"ranges = global min/max over {len(x)} calibration samples x {margin}")
        info["calibration_samples"] = int(len(x))
        info["calibration_margin"] = margin
        info["int8_io"] = True
    else:
        raise StepError(f"unknown quantization mode {mode!r}")
    result = qt.quantize(calibration_result, enable_progress_report=False)
    result.export_model(job["out"], overwrite=True)
    info["convert_seconds"] = time.perf_counter() - t0
    # Agreement with the fp32 model on a few calibration-style inputs (never evaluation images).
    rng = np.random.default_rng(0)
    model = job["model"]
    size = int(model["input_size"])
    probe = rng.normal(0, 1, (4, size, size, 3)).astype(np.float32)
    a, b = _tflite_run(fp32, probe), _tflite_run(job["out"], probe)
    check_finite(b, job["out"])
    info["max_abs_diff_vs_fp32_noise"] = float(np.abs(a - b).max())
    info["coverage"] = _coverage("tflite", job["out"])
    return info


# ---------------------------------------------------------------------------------------------------------------
# ncnn (pnnx from TorchScript), MNN and OpenVINO (from ONNX): issue 20


def _run_framework(name: str, path: str, x: np.ndarray, extra: dict | None = None) -> tuple[np.ndarray, dict]:
    """The artifact's output on ``x`` and its coverage, through the framework plugin itself (what a case runs)."""
    from ..frameworks import PrepareOptions, get_framework
    from ..frameworks import coverage
    from ..frameworks.mnn import Mnn
    from ..frameworks.ncnn import Ncnn
    from ..frameworks.openvino import OpenVino

    # the classes directly: a build interpreter need not have this package's entry points installed
    framework = {"ncnn": Ncnn, "mnn": Mnn, "openvino": OpenVino}[name]() if name in ("ncnn", "mnn", "openvino") \
        else get_framework(name)
    session = framework.prepare(path, PrepareOptions(threads=2, extra=extra or {}))
    try:
        out = np.stack([np.asarray(session.infer(row[None])).reshape(-1) for row in x])
        return out, coverage.collect(session.coverage)
    finally:
        session.close()


def _onnx_of_source(job: dict, net, x, path: str) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), path, dynamo=False, opset_version=17, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def step_ncnn(job: dict) -> dict:
    """TorchScript (the source itself, or the eager source traced) -> pnnx -> ``.ncnn.param/.bin``; fp32 weights
    unless the variant is fp16 (then pnnx's fp16 weights, and the runtime's fp16 storage/arithmetic)."""
    import tempfile

    import torch

    from . import engines

    net, scripted, x, ref = _source_and_reference(job)
    fp16 = job.get("quant") == "fp16"
    t0 = time.perf_counter()
    out = Path(job["out"])
    with tempfile.TemporaryDirectory(prefix="aiotbench-ncnn-") as tmp:
        ts = job["source_path"] if scripted else str(Path(tmp) / "traced.pt")
        if not scripted:
            with torch.no_grad():
                torch.jit.trace(net, x, check_trace=False).save(ts)
        # pnnx names the weights after the .param: build under the final names in a scratch folder
        param = Path(tmp) / "model.ncnn.param"
        info = engines.to_ncnn(ts, param, int(job["model"]["input_size"]), fp16=fp16)
        info.update(converter="pnnx (TorchScript)", layout="NCHW", convert_seconds=time.perf_counter() - t0,
                    runtime_precision="fp16 storage + arithmetic" if fp16 else "fp32")
        got, info["coverage"] = _run_framework("ncnn", str(param), x.numpy(), {"fp16": fp16})
        info["max_abs_diff_vs_eager"] = float(np.abs(got - ref.reshape(len(got), -1)).max())
        info["companions"] = [_companion(out).name]
        os.replace(param.with_suffix(".bin"), _companion(out))
        os.replace(param, out)
    return info


def _companion(param: Path) -> Path:
    """The weights file beside a ``.ncnn.param`` / ``.xml`` (``x.ncnn.bin`` / ``x.bin``), for the build's
    ``.x.ncnn.param.partial`` the final name: the build moves the main file into place after the step."""
    name = param.name
    if name.startswith(".") and name.endswith(".partial"):
        name = name[1:-len(".partial")]
    return param.with_name(name).with_suffix(".bin")


def step_mnn(job: dict) -> dict:
    """Source -> ONNX (opset 17, as the onnx variant) -> MNN's converter -> ``.mnn`` (fp32)."""
    import tempfile

    from . import engines

    net, _, x, ref = _source_and_reference(job)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aiotbench-mnn-") as tmp:
        onnx = str(Path(tmp) / "model.onnx")
        _onnx_of_source(job, net, x, onnx)
        info = engines.to_mnn(onnx, job["out"])
    info.update(converter="torch.onnx.export(opset 17) + MNN converter (_tools.mnnconvert)", layout="NCHW",
                convert_seconds=time.perf_counter() - t0, runtime_precision="high (fp32)")
    got, info["coverage"] = _run_framework("mnn", job["out"], x.numpy())
    info["max_abs_diff_vs_eager"] = float(np.abs(got - ref.reshape(len(got), -1)).max())
    return info


def step_openvino(job: dict) -> dict:
    """Source -> ONNX (opset 17) -> ``openvino.convert_model`` -> IR ``.xml/.bin`` saved without fp16 compression.
    The bf16 variant is the same IR run with ``precision = "bf16"``."""
    import tempfile

    from . import engines

    net, _, x, ref = _source_and_reference(job)
    t0 = time.perf_counter()
    out = Path(job["out"])
    precision = "bf16" if job.get("quant") == "bf16" else "f32"
    with tempfile.TemporaryDirectory(prefix="aiotbench-ov-") as tmp:
        onnx = str(Path(tmp) / "model.onnx")
        _onnx_of_source(job, net, x, onnx)
        xml = Path(tmp) / "model.xml"
        info = engines.to_openvino(onnx, xml)
        info.update(converter="torch.onnx.export(opset 17) + openvino.convert_model, compress_to_fp16=False",
                    layout="NCHW", convert_seconds=time.perf_counter() - t0, runtime_precision=precision)
        try:
            got, info["coverage"] = _run_framework("openvino", str(xml), x.numpy(), {"precision": precision})
            info["max_abs_diff_vs_eager"] = float(np.abs(got - ref.reshape(len(got), -1)).max())
        except Exception as exc:  # a CPU without bf16: the file is fine, this machine cannot run the variant
            info["verify_error"] = one_line(exc)
        info["companions"] = [_companion(out).name]
        os.replace(xml.with_suffix(".bin"), _companion(out))  # x.xml -> x.bin, as OpenVINO looks for it
        os.replace(xml, out)
    return info


STEPS = {"source": step_source, "ptl": step_ptl, "onnx": step_onnx, "tflite": step_tflite, "quant": step_quant,
         "pte": step_pte, "ncnn": step_ncnn, "mnn": step_mnn, "openvino": step_openvino}


def main(argv: list[str]) -> int:
    job_path, result_path = argv[0], argv[1]
    job = json.loads(Path(job_path).read_text())
    code = 0
    try:
        info = STEPS[job["step"]](job)
        result = {"ok": True, "info": info}
    except PretrainedUnavailable as exc:
        result, code = {"ok": False, "error": str(exc), "pretrained_missing": True}, EXIT_PRETRAINED_MISSING
    except StepError as exc:
        result, code = {"ok": False, "error": str(exc)}, 1
    except Exception as exc:  # the parent reports it in one line and keeps going with the other artifacts
        traceback.print_exc()
        result, code = {"ok": False, "error": one_line(exc, with_type=True)}, 1
    Path(result_path).write_text(json.dumps(result, default=_jsonable))
    return code


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
