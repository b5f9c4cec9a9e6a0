"""An independent evaluation, written from ../shared/models/*/README.md ("Exact reference preprocessing") and
sharing no code with the plugin: the plugin's per-image predictions must equal these."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image


def reference_crop(path: Path, size: int) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    short = round(size / 0.875)
    w, h = img.size
    nw, nh = (short, round(h * short / w)) if w <= h else (round(w * short / h), short)
    img = img.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


def labels_csv(root: Path) -> tuple[list[Path], list[int]]:
    with open(root / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [root / r["file"] for r in rows], [int(r["class_index"]) for r in rows]


def rank(scores: np.ndarray) -> list[int]:
    """Drop background (output 0); best first; equal scores keep ascending class order."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)[1:]
    order = sorted(range(len(s)), key=lambda i: (-s[i], i))
    return order[:5]


def tflite_predictions(model: Path, images: list[Path], size: int) -> list[list[int]]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model), num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    preds = []
    for path in images:
        interp.set_tensor(inp, reference_crop(path, size)[None])
        interp.invoke()
        preds.append(rank(interp.get_tensor(out)[0]))
    return preds


def float_batch(images: list[Path], size: int) -> np.ndarray:
    x = np.stack([reference_crop(p, size) for p in images]).astype(np.float32)
    return ((x - 127.5) / 127.5).transpose(0, 3, 1, 2).copy()


def onnx_predictions(model: Path, images: list[Path], size: int) -> list[list[int]]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    batch = float_batch(images, size)
    return [rank(sess.run(None, {"input": batch[i : i + 1]})[0][0]) for i in range(len(batch))]


def accuracy(preds: list[list[int]], labels: list[int], k: int) -> float:
    return sum(label in p[:k] for p, label in zip(preds, labels)) / len(labels)
