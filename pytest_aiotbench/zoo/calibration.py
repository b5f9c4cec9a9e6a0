"""Calibration images for full-integer quantization, kept disjoint from the evaluation images.

The plan (which files, what was excluded, how many augmented crops) is resolved once in the build process and stored
in the manifest; the export subprocess turns it into pixels with :func:`make_pixels`. numpy + Pillow only.

Method: every calibration image once with the model's own evaluation preprocessing (shorter side, center crop); if
fewer images than ``count``, the rest are seeded augmentations of them (random resized crop 8-100 % of the area,
aspect 3/4-4/3, horizontal flip, brightness/contrast/saturation x0.6-1.4); if more, a seeded draw of ``count`` files.
Files whose content (sha256) is also in an excluded folder (the evaluation set) are dropped before anything else.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from ..inputs.dataset import IMAGE_SUFFIXES

METHOD = "eval-crop + seeded random-resized-crop/flip/colour augmentation (calibration.py v1)"


class CalibrationError(Exception):
    """No usable calibration images."""


def list_images(folder: Path) -> list[Path]:
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def plan(calibration: Path, count: int, seed: int, exclude: list[Path]) -> dict:
    """Resolve the calibration set. Raises CalibrationError with a one-line reason when nothing is usable."""
    calibration = Path(calibration)
    if not calibration.exists():
        raise CalibrationError(f"calibration folder not found: {calibration}")
    files = list_images(calibration)
    excluded_shas: set[str] = set()
    excluded_info = []
    for folder in exclude:
        imgs = list_images(folder)
        shas = {_sha(p) for p in imgs}
        excluded_shas |= shas
        excluded_info.append({"path": str(folder), "images": len(imgs),
                              "fingerprint": hashlib.sha256("".join(sorted(shas)).encode()).hexdigest()})
    kept, overlap = [], []
    for p in files:
        sha = _sha(p)
        (overlap if sha in excluded_shas else kept).append({"file": p.relative_to(calibration).as_posix()
                                                             if p != calibration else p.name, "sha256": sha})
    if not kept:
        raise CalibrationError(f"no calibration images left in {calibration} "
                               f"({len(files)} found, {len(overlap)} are evaluation images)")
    if len(kept) > count:
        rng = np.random.default_rng(seed)
        kept = [kept[i] for i in sorted(rng.choice(len(kept), count, replace=False))]
    return {
        "source": str(calibration.resolve()),
        "files": kept,
        "samples": max(count, len(kept)),
        "augmented": max(0, count - len(kept)),
        "seed": seed,
        "method": METHOD,
        "excluded": excluded_info,
        "overlap_removed": [o["file"] for o in overlap],
    }


def _crop(data: bytes, size: int, resize: int, name: str) -> np.ndarray:
    from ..inputs.preprocess import PreprocessSpec, crop_pixels  # the evaluation's own crop, so calibration matches it

    return crop_pixels(data, PreprocessSpec(size, resize), name)


def make_pixels(the_plan: dict, input_size: int, resize: int) -> np.ndarray:
    """uint8 RGB crops (N, S, S, 3) for the plan, deterministic for a given plan."""
    from PIL import Image, ImageEnhance

    root = Path(the_plan["source"])
    rng = np.random.default_rng(the_plan["seed"])
    originals, out = [], []
    for item in the_plan["files"]:
        path = root / item["file"] if root.is_dir() else root
        data = path.read_bytes()
        out.append(_crop(data, input_size, resize, str(path)))
        with Image.open(io.BytesIO(data)) as img:
            originals.append(img.convert("RGB"))
    size = input_size
    for _ in range(the_plan["augmented"]):
        img = originals[int(rng.integers(len(originals)))]
        w, h = img.size
        area = rng.uniform(0.08, 1.0) * w * h
        aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
        cw = int(min(w, max(1, round((area * aspect) ** 0.5))))
        ch = int(min(h, max(1, round((area / aspect) ** 0.5))))
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = img.crop((left, top, left + cw, top + ch)).resize((size, size), Image.BILINEAR)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        crop = ImageEnhance.Brightness(crop).enhance(rng.uniform(0.6, 1.4))
        crop = ImageEnhance.Contrast(crop).enhance(rng.uniform(0.6, 1.4))
        crop = ImageEnhance.Color(crop).enhance(rng.uniform(0.6, 1.4))
        out.append(np.asarray(crop, dtype=np.uint8))
    return np.stack(out)
