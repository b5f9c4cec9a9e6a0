"""Import torchvision next to a CPU-only torch whose ABI its C extension does not match.

Every PyPI torchvision wheel links CUDA libraries; beside ``torch==2.13.0+cpu`` its ``_C`` extension fails to load and
``import torchvision`` dies with "operator torchvision::nms does not exist" (its fake-kernel registrations need the
schemas). Defining the two schemas ``torchvision::nms`` and ``torchvision::qnms`` first makes the model builders and
transforms importable; detection ops (nms, roi_align, ...) still do not work, and the zoo never calls them.
The shim is applied only when the real extension cannot be loaded.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys

_SHIM_LIB = None  # keep the torch.library.Library alive: dropping it would unregister the schemas
SHIMMED = False


def import_torchvision():
    """Return the ``torchvision`` module, shimming the missing operator schemas only if its extension won't load."""
    global _SHIM_LIB, SHIMMED
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "torchvision is not installed: pip install 'torchvision==0.28.0' 'torch==2.13.0' "
            "(or the 'zoo' extra of pytest-aiotbench)", name="torchvision")
    loaded = False
    for path in glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "_C*.so")):
        try:
            torch.ops.load_library(path)
            loaded = True
            break
        except (OSError, RuntimeError):
            pass
    if not loaded and _SHIM_LIB is None and not _has_schema(torch, "nms"):
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _SHIM_LIB = lib
        SHIMMED = True
    import torchvision

    return torchvision


def _has_schema(torch, name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
        return True
    except (AttributeError, RuntimeError):
        return False
