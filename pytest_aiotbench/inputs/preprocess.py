"""The preprocess module: decode, resize, crop (Pillow, deterministic) into uint8 pixels, cached on disk by image
content and geometry; then the cheap, in-memory conversion to a model's input tensor (colour order, layout,
normalization or the model's own quantization). Nothing here is ever timed.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..frameworks.base import TensorSpec
from ..files import write_atomic

# How each Pillow image mode becomes 8-bit RGB (``to_rgb``). Part of every cache key (PIXELS_VERSION), so a rule
# that changes for any mode never serves pixels converted the old way.
MODE_RULES = {
    # Pillow's own conversion: exact for these (greyscale and palette replicate, CMYK/YCbCr/HSV by formula).
    **{m: "pillow" for m in ("1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "HSV")},
    # Alpha: composited over white, (c*a + 255*(255-a) + 127) // 255 per channel; so are palette/grey/RGB images
    # with a transparent colour (PNG tRNS, GIF transparency).
    **{m: "alpha-over-white" for m in ("RGBA", "LA", "PA")},
    # 16-bit greyscale (PNG, TIFF) and Pillow's 32-bit "I" (what it makes of 16-bit PGM/PPM, already scaled to
    # 0..65535): the high byte, v >> 8, as Pillow itself reads 16-bit RGB PNGs; "I" values outside 0..65535 are
    # refused. Never Pillow's convert("RGB"), which clips every value above 255 to white.
    **{m: "16-bit-high-byte" for m in ("I;16", "I;16L", "I;16B", "I;16N", "I")},
}
# Refused, with the reason: no defined pixel range, or no correct conversion in Pillow.
REFUSED_MODES = {"F": "32-bit float pixels have no defined range (0..1? 0..255?)",
                 "LAB": "Pillow has no colour-correct LAB to RGB conversion"}
# Bump when decoding/resizing changes: it is part of every cache key, so old entries are never served.
PIXELS_VERSION = "pil-bilinear-v1-modes-" + hashlib.sha256(repr(sorted(MODE_RULES.items())).encode()).hexdigest()[:8]


class PreprocessError(Exception):
    """An image that cannot be used (unreadable, truncated, not an image). Names the file."""


class InputShapeError(Exception):
    """The model's input tensor does not match what the catalog entry says it takes."""


@dataclass(frozen=True)
class PreprocessSpec:
    input_size: int
    resize: int  # shorter side before the center crop; 0 = straight resize to input_size
    color: str = "RGB"
    layout: str = "NHWC"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> "PreprocessSpec":
        size = int(entry["input_size"])
        resize = int(entry.get("resize", round(size / 0.875)))
        color = str(entry.get("color", "RGB")).upper()
        layout = str(entry.get("layout", "NHWC")).upper()
        mean = tuple(float(v) for v in entry.get("mean", (0.0, 0.0, 0.0)))
        std = tuple(float(v) for v in entry.get("std", (1.0, 1.0, 1.0)))
        if size <= 0 or resize < 0 or (resize and resize < size):
            raise ValueError(f"input_size {size} / resize {resize}: resize must be 0 or >= input_size")
        if color not in ("RGB", "BGR"):
            raise ValueError(f"color must be RGB or BGR, not {color!r}")
        if layout not in ("NHWC", "NCHW"):
            raise ValueError(f"layout must be NHWC or NCHW, not {layout!r}")
        if len(mean) != 3 or len(std) != 3 or 0.0 in std:
            raise ValueError("mean and std need 3 values each, std non-zero")
        return cls(size, resize, color, layout, mean, std)  # type: ignore[arg-type]

    @property
    def geometry(self) -> str:
        """What the cached pixels depend on (colour, layout and normalization are applied afterwards)."""
        return f"{PIXELS_VERSION}-r{self.resize}-c{self.input_size}"


def bomb_problem(img, limit: int | None = None) -> str | None:
    """Why an opened image is refused for its size: over Pillow's decompression-bomb limit (MAX_IMAGE_PIXELS)."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS if limit is None else limit
    w, h = img.size
    if limit and w * h > limit:
        return (f"{w}x{h} = {w * h} pixels is over Pillow's decompression-bomb limit of {limit} pixels "
                "(PIL.Image.MAX_IMAGE_PIXELS)")
    return None


def bomb_error_text(exc: BaseException) -> str:
    """Pillow's DecompressionBombError (raised by Image.open past twice the limit) as our one line."""
    import re

    from PIL import Image

    m = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = f"{m.group(1)} pixels" if m else "its pixel count"
    return (f"{pixels} is over Pillow's decompression-bomb limit of {Image.MAX_IMAGE_PIXELS} pixels "
            "(PIL.Image.MAX_IMAGE_PIXELS)")


def _white_under(rgba: np.ndarray) -> np.ndarray:
    """RGBA uint8 -> RGB uint8 composited over white, integer-exact: (c*a + 255*(255-a) + 127) // 255."""
    c = rgba[..., :3].astype(np.uint32)
    a = rgba[..., 3:4].astype(np.uint32)
    return ((c * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


def mode_problem(mode: str) -> str | None:
    """Why images of ``mode`` are refused (known from the header alone), or None."""
    if mode in MODE_RULES and mode not in REFUSED_MODES:
        return None
    why = REFUSED_MODES.get(mode, "no conversion rule for it")
    return f"image mode {mode} is not supported ({why}); save it as 8-bit RGB or greyscale"


def to_rgb(img, name: str):
    """One opened Pillow image as 8-bit RGB, by ``MODE_RULES``; a mode without a rule raises PreprocessError."""
    from PIL import Image

    mode = img.mode
    refused = mode_problem(mode)
    if refused:
        raise PreprocessError(f"cannot read image {name}: {refused}")
    rule = MODE_RULES[mode]
    if rule == "16-bit-high-byte":
        values = np.asarray(img)
        if mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
            raise PreprocessError(f"cannot read image {name}: image mode I with values {values.min()}..{values.max()}"
                                  " outside the 16-bit range 0..65535 (no defined pixel scale); save it as 8-bit")
        return Image.fromarray((values.astype(np.uint32) >> 8).astype(np.uint8), "L").convert("RGB")
    if rule == "alpha-over-white" or "transparency" in img.info:
        return Image.fromarray(_white_under(np.asarray(img.convert("RGBA"))), "RGB")
    return img.convert("RGB")  # "pillow"


def crop_pixels(data: bytes, spec: PreprocessSpec, name: str) -> np.ndarray:
    """Decode and crop one image to uint8 RGB HxWx3, exactly as the reference evaluations of ../shared do:
    8-bit RGB by ``MODE_RULES``, shorter side to ``resize`` (bilinear), center crop with torchvision's rounding."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # the limit is enforced below, as one line, not as Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
        with opened as img:
            too_big = bomb_problem(img)
            if too_big:
                raise PreprocessError(f"cannot read image {name}: {too_big}")
            img = to_rgb(img, name)
            size = spec.input_size
            if spec.resize:
                w, h = img.size
                short = spec.resize
                nw, nh = (short, round(h * short / w)) if w <= h else (round(w * short / h), short)
                img = img.resize((nw, nh), Image.BILINEAR)
                left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
                img = img.crop((left, top, left + size, top + size))
            else:
                img = img.resize((size, size), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except UnidentifiedImageError:
        what = "empty file" if not data else f"not an image Pillow can decode ({len(data)} bytes)"
        raise PreprocessError(f"cannot read image {name}: {what}") from None
    except Image.DecompressionBombError as exc:
        raise PreprocessError(f"cannot read image {name}: {bomb_error_text(exc)}") from None
    except (OSError, ValueError) as exc:
        raise PreprocessError(f"cannot read image {name}: {exc}") from None


class PixelCache:
    """On-disk cache of cropped pixels, keyed by sha256(image bytes) and the crop geometry. An entry that cannot be
    read as the expected array is rebuilt; a cache that cannot be written is switched off for the session (``note``
    says why, once) and the run goes on without it."""

    def __init__(self, root: Path | None):
        self.root = Path(root) if root else None
        self.hits = 0
        self.misses = 0
        self.note: str | None = None

    def disable(self, why: str) -> None:
        self.note = f"pixel cache {self.root} not used: {why}"
        self.root = None

    def probe(self) -> None:
        """Check once, before any case, that the cache folder can be written; else run without it."""
        if self.root is None:
            return
        if self.root.exists() and not self.root.is_dir():
            self.disable("it is a file, not a folder")
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".probe")
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            self.disable(exc.strerror or str(exc))

    def get(self, content_sha: str, data_loader, spec: PreprocessSpec, name: str) -> np.ndarray:
        path = self.root / spec.geometry / content_sha[:2] / f"{content_sha}.npy" if self.root else None
        if path is not None and path.is_dir():  # something else took this entry's name: rebuild it, write nothing
            path = None
        if path is not None and path.is_file():
            try:
                pixels = np.load(path, allow_pickle=False)
                if pixels.shape == (spec.input_size, spec.input_size, 3) and pixels.dtype == np.uint8:
                    self.hits += 1
                    return pixels
            except Exception:  # noqa: BLE001 - zero-byte, truncated, not .npy (EOFError, ValueError, ...): rebuild
                pass
        self.misses += 1
        pixels = crop_pixels(data_loader(), spec, name)
        if path is not None:
            try:
                write_atomic(path, lambda fh: np.save(fh, pixels, allow_pickle=False), durable=False)
            except OSError as exc:
                self.disable(exc.strerror or str(exc))
        return pixels


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_pixel_scale(spec: PreprocessSpec, quant: tuple[float, int]) -> bool:
    """True when quantizing (x - mean) / std with the model's (scale, zero_point) lands within one step of x for
    every pixel value: the model's input quantization *is* the pixel scale, so raw pixels are fed unchanged, as
    TFLite's own tools and the reference evaluations do (re-quantizing would shift half the values by one)."""
    scale, zero_point = quant
    x = np.arange(256, dtype=np.float64)
    for m, s in zip(spec.mean, spec.std):
        q = np.round((x - m) / s / scale + zero_point)
        if np.abs(q - x).max() > 1:
            return False
    return True


SATURATED_SHARE = 0.5  # more than half the pixel values clipping: the normalization is not the model's


def _saturation(spec: PreprocessSpec, quant: tuple[float, int], dtype: np.dtype) -> tuple[float, float, float]:
    """(share of the 256 pixel values that clip in the worst channel, that channel's normalized low and high):
    what quantizing (x - mean) / std with the model's own (scale, zero_point) does to the whole pixel range."""
    scale, zero_point = quant
    info = np.iinfo(dtype)
    x = np.arange(256, dtype=np.float64)
    worst = (0.0, 0.0, 0.0)
    for m, s in zip(spec.mean, spec.std):
        norm = (x - m) / s
        q = np.round(norm / scale + zero_point)
        share = float(np.mean((q < info.min) | (q > info.max)))
        if share > worst[0]:
            worst = (share, float(norm.min()), float(norm.max()))
    return worst


def to_model_inputs(pixels: np.ndarray, spec: PreprocessSpec, tensor: TensorSpec, name: str) -> list[np.ndarray]:
    """Turn stacked uint8 crops (N, S, S, 3) into N batch-1 arrays shaped and typed as the model's input."""
    expected = (1, 3, spec.input_size, spec.input_size) if spec.layout == "NCHW" else (1, spec.input_size, spec.input_size, 3)
    if len(tensor.shape) != 4 or any(d not in (e, -1, 0, None) for d, e in zip(tensor.shape, expected)):
        raise InputShapeError(
            f"{name}: model input is {'x'.join(map(str, tensor.shape))} but the catalog says "
            f"{spec.layout} {spec.input_size}x{spec.input_size} (expected {'x'.join(map(str, expected))})"
        )
    x = pixels[..., ::-1] if spec.color == "BGR" else pixels
    dtype = np.dtype(tensor.dtype)
    if dtype.kind in "iu":
        if tensor.quant and not (dtype == np.uint8 and _is_pixel_scale(spec, tensor.quant)):
            scale, zero_point = tensor.quant
            info = np.iinfo(dtype)
            share, low, high = _saturation(spec, tensor.quant, dtype)
            if share > SATURATED_SHARE:  # default mean 0 / std 1 on a [-1, 1] model: every pixel but 0 clips
                raise InputShapeError(
                    f"{name}: the catalog's mean/std map pixels to [{low:g}, {high:g}] but the model's {dtype} "
                    f"input (scale {scale:g}, zero point {zero_point}) holds "
                    f"[{(info.min - zero_point) * scale:.3g}, {(info.max - zero_point) * scale:.3g}]: "
                    f"{share:.0%} of pixel values would clip; set mean/std to the model's training normalization")
            norm = (x.astype(np.float32) - np.float32(spec.mean)) / np.float32(spec.std)
            x = np.clip(np.round(norm / scale + zero_point), info.min, info.max).astype(dtype)
        else:
            x = x.astype(dtype)
    else:
        x = ((x.astype(np.float32) - np.float32(spec.mean)) / np.float32(spec.std)).astype(dtype)
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    x = np.ascontiguousarray(x)
    return [x[i : i + 1] for i in range(len(x))]
