"""Repository conftest: the one setting through which tests and catalogs reach the shared, read-only data
(real models and ImageNet images that must never be copied into this repository)."""

import os
from pathlib import Path

os.environ.setdefault("AIOTBENCH_SHARED", str(Path(__file__).resolve().parent.parent / "shared"))
