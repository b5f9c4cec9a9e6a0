"""Converters for the ncnn, MNN and OpenVINO artifacts (issue 20), from the same source files as every other
artifact: pnnx from TorchScript (-> ``.ncnn.param/.bin``), MNN's converter from ONNX (-> ``.mnn``), OpenVINO's
from ONNX (-> IR ``.xml/.bin``). fp32 unless asked: pnnx writes fp16 weights by default and OpenVINO compresses
the IR to fp16 by default; both are turned off here, and a lower precision is a separately named variant.

No side effects: MNN's converter is called through its ``_tools`` extension, never through ``MNN.tools`` (whose
import runs ``pip install`` and sends telemetry); OpenVINO is imported with its telemetry opted out."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..frameworks.base import installed_version, quiet_stdio


class ConversionError(Exception):
    """A converter refused the model; the message is one line with the converter's own last words."""


def pnnx_executable() -> str:
    """The pnnx binary the ``pnnx`` wheel ships (its console script only wraps it)."""
    import importlib.util

    spec = importlib.util.find_spec("pnnx")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pnnx is not installed")
    exe = Path(list(spec.submodule_search_locations)[0]) / "pnnx"
    if not exe.is_file():
        raise ImportError(f"pnnx binary not found at {exe}")
    return str(exe)


def to_ncnn(torchscript: str | os.PathLike, param: str | os.PathLike, input_size: int, fp16: bool = False,
            timeout: float = 600) -> dict:
    """TorchScript -> ``param`` + its ``.bin`` beside it (``x.ncnn.param`` -> ``x.ncnn.bin``) with pnnx.
    ``fp16=False`` keeps fp32 weights (pnnx's default is fp16). pnnx's side files go to a temporary folder."""
    exe = pnnx_executable()
    param = Path(param)
    weights = param.with_suffix(".bin")
    with tempfile.TemporaryDirectory(prefix="aiotbench-pnnx-") as tmp:
        src = Path(tmp) / "model.pt"
        shutil.copyfile(torchscript, src)  # pnnx writes side files next to its input
        side = {k: str(Path(tmp) / f"side.{k}") for k in ("pnnxparam", "pnnxbin", "pnnxpy", "pnnxonnx", "ncnnpy")}
        args = [exe, str(src), f"inputshape=[1,3,{int(input_size)},{int(input_size)}]", f"fp16={int(bool(fp16))}",
                f"ncnnparam={Path(tmp) / 'out.param'}", f"ncnnbin={Path(tmp) / 'out.bin'}", "device=cpu"]
        args += [f"{k}={v}" for k, v in side.items()]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        out_param, out_bin = Path(tmp) / "out.param", Path(tmp) / "out.bin"
        if proc.returncode != 0 or not out_param.is_file() or not out_bin.is_file():
            lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
            raise ConversionError(f"pnnx failed (exit {proc.returncode}): {lines[-1] if lines else 'no output'}")
        unsupported = [ln.strip() for ln in proc.stdout.splitlines() + proc.stderr.splitlines()
                       if "not supported" in ln.lower() or "unsupported" in ln.lower()]
        param.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out_param), param)
        shutil.move(str(out_bin), weights)
    return {"tools": {"pnnx": installed_version("pnnx"), "ncnn": installed_version("ncnn")},
            "weights_dtype": "fp16" if fp16 else "fp32", "files": [param.name, weights.name],
            "unsupported": unsupported}


def to_mnn(onnx: str | os.PathLike, out: str | os.PathLike) -> dict:
    """ONNX -> ``.mnn`` with MNN's converter (fp32 weights)."""
    with quiet_stdio(stderr=True):  # the converter prints its progress on stdout
        import _tools  # MNN's converter extension; NOT MNN.tools (see the module doc)

        ok = _tools.mnnconvert(["mnnconvert", "-f", "ONNX", "--modelFile", str(onnx), "--MNNModel", str(out),
                                "--bizCode", "aiotbench"])
    if not ok or not Path(out).is_file():
        raise ConversionError(f"MNN's converter failed on {onnx}")
    return {"tools": {"MNN": installed_version("MNN")}, "weights_dtype": "fp32", "files": [Path(out).name]}


def to_openvino(onnx: str | os.PathLike, xml: str | os.PathLike) -> dict:
    """ONNX -> OpenVINO IR ``xml`` + ``.bin``, uncompressed (``compress_to_fp16=False``: fp32 weights)."""
    from ..frameworks.openvino import import_openvino

    ov = import_openvino()
    try:
        model = ov.convert_model(str(onnx))
        ov.save_model(model, str(xml), compress_to_fp16=False)
    except Exception as exc:
        from ..errors import one_line

        raise ConversionError(f"OpenVINO's converter failed on {onnx}: {one_line(exc)}") from None
    return {"tools": {"openvino": installed_version("openvino")}, "weights_dtype": "fp32",
            "files": [Path(xml).name, Path(xml).with_suffix(".bin").name]}
