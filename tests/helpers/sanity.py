"""Tiny models and datasets for the sanity tests (issue 22): ONNX graphs built with the ``onnx`` helper API (a few
hundred bytes, milliseconds to run) and labelled PNG folders whose pixels the test chooses."""

from __future__ import annotations

from pathlib import Path

import io

import numpy as np

SIZE = 8  # input_size of the tiny models: NCHW 1x3x8x8 float


def onnx_model(path: Path, *, classes: int = 10, bias=None, nan_below: float | None = None, outputs: int = 1,
               out_shape: tuple[int, ...] | None = None, out_dtype: str = "float", in_dtype: str = "float",
               seed: int = 0) -> Path:
    """A linear classifier over the flattened input: ``logits = X W + bias``. ``bias`` may hold NaN/Inf (every
    image's answer is then not finite there); ``nan_below``: add sqrt(mean(X) - nan_below), NaN exactly for the
    images whose mean pixel is below it. ``out_shape`` reshapes the answer, ``out_dtype`` casts it ("float",
    "float16", "double", "int8", "uint8", "int32", "bool"), ``in_dtype`` "uint8" takes integer input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    feats = 3 * SIZE * SIZE
    w = rng.normal(0, 0.05, (feats, classes)).astype(np.float32)
    b = np.zeros(classes, np.float32) if bias is None else np.asarray(bias, np.float32)
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B"),
             numpy_helper.from_array(np.array([1, feats], np.int64), "flat")]
    types = {"float": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "double": TensorProto.DOUBLE,
             "int8": TensorProto.INT8, "uint8": TensorProto.UINT8, "int32": TensorProto.INT32,
             "bool": TensorProto.BOOL}
    nodes = []
    x = "X"
    if in_dtype != "float":
        nodes.append(helper.make_node("Cast", ["X"], ["Xf"], to=TensorProto.FLOAT))
        x = "Xf"
    nodes += [helper.make_node("Reshape", [x, "flat"], ["F"]), helper.make_node("MatMul", ["F", "W"], ["M"]),
              helper.make_node("Add", ["M", "B"], ["L"])]
    last = "L"
    if nan_below is not None:
        inits.append(numpy_helper.from_array(np.array(nan_below, np.float32), "T"))
        nodes += [helper.make_node("ReduceMean", ["F"], ["Mean"], keepdims=1),
                  helper.make_node("Sub", ["Mean", "T"], ["D"]), helper.make_node("Sqrt", ["D"], ["S"]),
                  helper.make_node("Add", [last, "S"], ["LN"])]
        last = "LN"
    if out_shape is not None:
        inits.append(numpy_helper.from_array(np.array(out_shape, np.int64), "oshape"))
        nodes.append(helper.make_node("Reshape", [last, "oshape"], ["LR"]))
        last = "LR"
    if out_dtype != "float":
        nodes.append(helper.make_node("Cast", [last], ["LC"], to=types[out_dtype]))
        last = "LC"
    nodes.append(helper.make_node("Identity", [last], ["Y"]))
    shape = list(out_shape) if out_shape is not None else [1, classes]
    outs = [helper.make_tensor_value_info("Y", types[out_dtype], shape)]
    for k in range(1, outputs):
        nodes.append(helper.make_node("Identity", [last], [f"Y{k}"]))
        outs.append(helper.make_tensor_value_info(f"Y{k}", types[out_dtype], shape))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info(
        "X", types[in_dtype], [1, 3, SIZE, SIZE])], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def png_dataset(root: Path, brightness: list[int], labels: list[int] | None = None) -> Path:
    """One flat-colour 16x16 RGB PNG per value of ``brightness`` (its every pixel), with a labels.csv."""
    from PIL import Image

    from pytest_aiotbench.inputs.dataset import imagenet_synsets

    root.mkdir(parents=True, exist_ok=True)
    labels = labels if labels is not None else [i % 10 for i in range(len(brightness))]
    rows = ["file,synset,class_index"]
    for i, (value, label) in enumerate(zip(brightness, labels)):
        name = f"img{i:03d}.png"
        Image.new("RGB", (16, 16), (value, value, value)).save(root / name)
        rows.append(f"{name},{imagenet_synsets()[label]},{label}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def onnx_entry(name: str, file: Path, **extra) -> dict:
    """A catalog entry for a tiny ONNX model: raw pixels in (mean 0, std 1), 10 classes."""
    entry = {"name": name, "framework": "onnxruntime", "quant": "fp32", "file": str(file), "input_size": SIZE,
             "resize": 0, "layout": "NCHW", "num_classes": 10}
    return {**entry, **extra}


def encoded(img, fmt: str) -> bytes:
    """A Pillow image saved to ``fmt`` in memory."""
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def geometry(img, spec) -> np.ndarray:
    """The resize and center crop of ``preprocess.crop_pixels``, written out again on an RGB image."""
    from PIL import Image

    w, h = img.size
    if spec.resize:
        nw, nh = (spec.resize, round(h * spec.resize / w)) if w <= h else (round(w * spec.resize / h), spec.resize)
        img = img.resize((nw, nh), Image.BILINEAR)
        left, top = int(round((nw - spec.input_size) / 2.0)), int(round((nh - spec.input_size) / 2.0))
        img = img.crop((left, top, left + spec.input_size, top + spec.input_size))
    else:
        img = img.resize((spec.input_size, spec.input_size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)
