"""Labelled datasets from the shared 500 images: the first n of them, and large ones where copy k of image i % 500
gets a JPEG comment naming k, so every file has its own bytes (the pixel cache keys by sha256) and the same pixels as
its original."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from tests.helpers.shared import IMAGENET_500


def labeled_dataset(root: Path, n: int = 20, copy: bool = False) -> Path:
    """The first n shared images with their labels.csv rows in ``root``: symlinked, or copied (``copy``: a private,
    writable dataset)."""
    lines = (IMAGENET_500 / "labels.csv").read_text().splitlines()[: n + 1]
    for line in lines[1:]:
        rel = line.split(",")[0]
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if copy:
            shutil.copyfile(IMAGENET_500 / rel, root / rel)
        else:
            (root / rel).symlink_to(IMAGENET_500 / rel)
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def _with_comment(jpeg: bytes, text: str) -> bytes:
    assert jpeg[:2] == b"\xff\xd8", "not a JPEG"
    body = text.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]


def unique_copies(root: Path, n: int, shrink: int | None = None) -> Path:
    """``root/labels.csv`` listing ``n`` unique copies in ``root/img/``; ``shrink``: shorter side first reduced to
    that many pixels (re-encoded once per original), for quick decodes."""
    with open(IMAGENET_500 / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    (root / "img").mkdir(parents=True, exist_ok=True)
    originals = []
    for row in rows:
        data = (IMAGENET_500 / row["file"]).read_bytes()
        if shrink:
            from PIL import Image

            img = Image.open(io.BytesIO(data)).convert("RGB")
            w, h = img.size
            img = img.resize((max(1, w * shrink // min(w, h)), max(1, h * shrink // min(w, h))), Image.BILINEAR)
            out = io.BytesIO()
            img.save(out, format="JPEG", quality=90)
            data = out.getvalue()
        originals.append((data, row["synset"], row["class_index"]))
    lines = ["file,synset,class_index"]
    for k in range(n):
        data, synset, label = originals[k % len(originals)]
        name = f"img/{k:06d}.JPEG"
        path = root / name
        if not path.exists():
            path.write_bytes(_with_comment(data, f"aiotbench copy {k}"))
        lines.append(f"{name},{synset},{label}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root
