"""The one place tests find the read-only shared folder (real models, real ImageNet images): ``AIOTBENCH_SHARED``,
defaulting to ``../shared`` beside the checkout. Nothing from it is ever copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("AIOTBENCH_SHARED") or REPO.parent / "shared")
IMAGENET_500 = SHARED / "data" / "imagenet-val-500"
SAMPLES = SHARED / "data" / "samples"
TFLITE_DIR = SHARED / "models" / "tflite"
TORCH_DIR = SHARED / "models" / "torch"
SQUEEZENET_DIR = SHARED / "models" / "squeezenet"
