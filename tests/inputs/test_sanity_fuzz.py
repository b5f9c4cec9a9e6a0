"""Issue 22, done-when: a seeded fuzz of what is measured. Random tiny ONNX models whose answers are NaN/Inf at
random positions (on every image, or only on some images after the first), the wrong shape, the wrong type, a
second output or a type the declared quant contradicts: every one fails its case with one line naming the file
(never scores); a healthy model drawn the same way scores. Random images in every Pillow mode convert as an
independent numpy conversion says, or are refused with one line naming the file and the mode. Fast (seconds)."""

from __future__ import annotations

import colorsys
import io

import numpy as np
import pytest
from PIL import Image

from pytest_aiotbench.frameworks import ModelLoadError, PrepareOptions
from pytest_aiotbench.inputs.preprocess import MODE_RULES, PreprocessError, PreprocessSpec, crop_pixels, to_rgb
from pytest_aiotbench.run.job import Job
from pytest_aiotbench.targets.host import InferenceError, execute
from pytest_aiotbench.run.timing import PerfCounterTiming
from tests.helpers.sanity import SIZE, encoded, geometry, onnx_model

STRAIGHT = PreprocessSpec(16, 0)
FAULTS = ("nan", "posinf", "neginf", "nan_later", "classes", "batch", "bool", "two_outputs", "quant")


def _fault_model(path, fault: str, rng: np.random.Generator):
    """(model file, declared quant, images' brightness) with ``fault`` drawn at random positions/values."""
    classes = 10
    brightness = [int(v) for v in rng.integers(120, 256, int(rng.integers(2, 7)))]
    kw: dict = {"seed": int(rng.integers(0, 1000))}
    quant = "fp32"
    if fault in ("nan", "posinf", "neginf"):
        bias = np.zeros(classes, np.float32)
        positions = rng.choice(classes, int(rng.integers(1, 4)), replace=False)
        bias[positions] = {"nan": np.nan, "posinf": np.inf, "neginf": -np.inf}[fault]
        kw["bias"] = bias
    elif fault == "nan_later":  # the first image is fine: caught after timing, among all answers
        kw["nan_below"] = 100.0
        k = int(rng.integers(1, len(brightness)))
        brightness[k] = int(rng.integers(0, 100))
    elif fault == "classes":
        kw["classes"] = int(rng.choice([c for c in range(2, 20) if c != classes]))
    elif fault == "batch":
        kw["out_shape"] = (2, classes // 2)
    elif fault == "bool":
        kw["out_dtype"] = "bool"
    elif fault == "two_outputs":
        kw["outputs"] = int(rng.integers(2, 4))
    elif fault == "quant":
        kw["out_dtype"] = str(rng.choice(["uint8", "int8"]))
        quant = str(rng.choice(["fp32", "fp16", "dynamic"]))
    elif fault != "healthy":
        raise AssertionError(fault)
    return onnx_model(path, classes=kw.pop("classes", classes), **kw), quant, brightness


def _run(model, quant: str, brightness: list[int]):
    pixels = np.stack([np.full((SIZE, SIZE, 3), v, np.uint8) for v in brightness])
    job = Job(case_id="fuzz", framework="onnxruntime", model_file=model, options=PrepareOptions(), pixels=pixels,
              preprocess=PreprocessSpec(SIZE, 0, layout="NCHW"), warmup=0, num_classes=10, background=False,
              quant=quant)
    return execute(job, PerfCounterTiming())


def test_fuzz_model_outputs_every_fault_fails_and_healthy_scores(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(22)
    failed: dict[str, int] = {}
    for i in range(45):
        fault = FAULTS[i % len(FAULTS)] if i % 5 else "healthy"
        model, quant, brightness = _fault_model(tmp_path / f"m{i}_{fault}.onnx", fault, rng)
        if fault == "healthy":
            m = _run(model, quant, brightness)
            assert m.topk.shape == (len(brightness), 5)
            continue
        with pytest.raises((InferenceError, ModelLoadError)) as err:
            _run(model, quant, brightness)
        message = str(err.value)
        assert model.name in message and "\n" not in message, (fault, message)
        failed[fault] = failed.get(fault, 0) + 1
    assert set(failed) == set(FAULTS)


# ------------------------------------------------------------------------------------------------ image modes

def _white(c: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return ((c.astype(np.uint32) * alpha + 255 * (255 - alpha.astype(np.uint32)) + 127) // 255).astype(np.uint8)


def _reference(img) -> tuple[np.ndarray, int] | None:
    """An independent RGB conversion of ``img`` (numpy and colorsys from its raw bands) and the largest difference
    allowed (0 where the rule is ours; 1 where Pillow's integer formula rounds differently), or None: refused."""
    mode = img.mode
    if mode in ("F", "LAB"):
        return None
    a = np.asarray(img)
    if mode == "1":
        return np.stack([a.astype(np.uint8) * 255] * 3, -1), 0
    if mode == "L":
        return np.stack([a] * 3, -1), 0
    if mode == "LA":
        return np.stack([_white(a[..., 0], a[..., 1])] * 3, -1), 0
    if mode in ("P", "PA"):
        pal = np.array(img.getpalette("RGB"), np.uint8).reshape(-1, 3)
        idx = a[..., 0] if mode == "PA" else a
        rgb = pal[idx]
        if mode == "PA":
            return _white(rgb, a[..., 1:2]), 0
        if "transparency" in img.info:
            return _white(rgb, np.where(idx == img.info["transparency"], 0, 255)[..., None]), 0
        return rgb, 0
    if mode in ("RGB", "RGBX"):
        return a[..., :3], 0
    if mode == "RGBA":
        return _white(a[..., :3], a[..., 3:4]), 0
    if mode == "CMYK":
        k = a[..., 3:4].astype(np.float64)
        return np.round((255 - a[..., :3]) * (255 - k) / 255).astype(np.uint8), 1
    if mode == "YCbCr":
        y, cb, cr = (a[..., i].astype(np.float64) for i in range(3))
        rgb = np.stack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                        y + 1.772 * (cb - 128)], -1)
        return np.clip(np.round(rgb), 0, 255).astype(np.uint8), 1
    if mode == "HSV":
        flat = [[round(c * 255) for c in colorsys.hsv_to_rgb(*(p / 255.0))] for p in a.reshape(-1, 3)]
        return np.array(flat, np.uint8).reshape(a.shape), 1
    if mode.startswith("I"):
        v = a.astype(np.int64)
        if v.min() < 0 or v.max() > 65535:
            return None
        return np.stack([(v // 256).astype(np.uint8)] * 3, -1), 0
    raise AssertionError(f"no reference for mode {mode}")


def _random_image(mode: str, rng: np.random.Generator):
    w, h = (int(v) for v in rng.integers(3, 20, 2))
    if mode == "1":
        return Image.fromarray(rng.integers(0, 2, (h, w)).astype(bool))
    if mode.startswith("I;16"):
        img = Image.new(mode, (w, h))
        img.frombytes(rng.integers(0, 65536, (h, w)).astype({"I;16B": ">u2", "I;16N": "=u2"}.get(mode, "<u2"))
                      .tobytes())
        return img
    if mode == "I":
        wide = rng.random() < 0.5  # often outside 16 bits: refused
        return Image.fromarray(rng.integers(-5 if wide else 0, 100000 if wide else 65536, (h, w)).astype(np.int32),
                               "I")
    if mode == "F":
        return Image.fromarray(rng.random((h, w)).astype(np.float32), "F")
    if mode in ("P", "PA"):
        img = Image.new(mode, (w, h))
        img.putpalette(rng.integers(0, 256, 768).astype(np.uint8).tobytes())
        img.frombytes(rng.integers(0, 256, (h, w, 2 if mode == "PA" else 1)).astype(np.uint8).tobytes())
        if mode == "P" and rng.random() < 0.5:
            img.info["transparency"] = int(img.getpixel((0, 0)))
        return img
    bands = len(Image.new(mode, (1, 1)).getbands())
    return Image.frombytes(mode, (w, h), rng.integers(0, 256, (h, w, bands)).astype(np.uint8).tobytes())


# Modes Pillow opens from files, and a format that keeps each (None: no file format keeps it; in memory only).
FUZZ_MODES = {"1": "PNG", "L": "PNG", "LA": "PNG", "P": "PNG", "PA": "TIFF", "RGB": "PNG", "RGBA": "PNG",
              "RGBX": None, "CMYK": "TIFF", "YCbCr": "TIFF", "LAB": "TIFF", "HSV": None, "I": "TIFF",
              "I;16": "PNG", "I;16B": "TIFF", "I;16L": "TIFF", "I;16N": None, "F": "TIFF"}


def test_fuzz_every_image_mode_matches_an_independent_conversion_or_is_refused():
    rng = np.random.default_rng(2022)
    seen: dict[str, set] = {"converted": set(), "refused": set()}
    for round_ in range(6):
        for mode, fmt in FUZZ_MODES.items():
            img = _random_image(mode, rng)
            expected = _reference(img)
            name = f"fuzz-{round_}-{mode}"
            if expected is None:
                with pytest.raises(PreprocessError) as err:
                    to_rgb(img, name)
                assert str(err.value).startswith(f"cannot read image {name}: image mode {img.mode} ")
                assert "\n" not in str(err.value)
                seen["refused"].add(mode)
            else:
                want, tolerance = expected
                got = np.asarray(to_rgb(img, name))
                assert got.dtype == np.uint8 and got.shape == want.shape, (mode, got.shape, want.shape)
                assert np.abs(got.astype(int) - want.astype(int)).max() <= tolerance, (mode, round_)
                seen["converted"].add(mode)
            if fmt is None:
                continue
            data = encoded(img, fmt)  # through a file, as the dataset reads it
            with Image.open(io.BytesIO(data)) as reopened:
                assert reopened.mode == (img.mode if img.mode != "I;16L" else "I;16"), (mode, reopened.mode)
                expected = _reference(reopened)
            if expected is None:
                with pytest.raises(PreprocessError, match=f"^cannot read image {name}: image mode "):
                    crop_pixels(data, STRAIGHT, name)
            else:
                got = crop_pixels(data, STRAIGHT, name)
                ref = geometry(Image.fromarray(expected[0], "RGB"), STRAIGHT)
                assert np.abs(got.astype(int) - ref.astype(int)).max() <= expected[1], (mode, round_)
    assert seen["refused"] >= {"F", "LAB", "I"} and seen["converted"] >= set(FUZZ_MODES) - {"F", "LAB"}
    assert set(MODE_RULES) <= set(FUZZ_MODES)  # every mode with a rule is fuzzed
