"""The report's case entry, built in one place for every kind (measured, skipped, failed, error).

Keys the schema requires are always present (null when not measured); optional keys are left out when they have
no value. Values are plain JSON types, so an entry can travel from an xdist worker to the controller as it is
(execnet refuses str subclasses such as torch's ``TorchVersion``, numpy scalars, tuples...)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Required by schema.CASE (nullable where not measured), in report order.
REQUIRED = ("id", "model", "framework", "quant", "file", "file_sha256", "images", "top1", "top5", "min_top1",
            "latency_ms", "prepare_ms", "first_ms", "vips", "vops", "gflops", "status", "reason", "per_image")
# Left out when None.
OPTIONAL = ("result_id", "device", "weights", "reference_top1", "warmup", "images_per_s", "runtime", "top1_ci95",
            "min_top1_rule", "min_top1_reference", "fail_on", "memory")


class EntryError(ValueError):
    """A value that cannot be reported as JSON (an object, NaN, ...). Names where it sits."""


def plain_json(value: Any, where: str = "entry") -> Any:
    """``value`` as exact JSON types (dict/list/str/int/float/bool/None); raises EntryError naming the key path."""
    if value is None or type(value) in (bool, str, int):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):  # e.g. torch's TorchVersion
        return str(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            raise EntryError(f"{where} = {number}: not a finite number")
        return number
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise EntryError(f"{where}: key {key!r} is not a string")
            out[str(key)] = plain_json(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain_json(item, f"{where}[{i}]") for i, item in enumerate(list(value))]
    raise EntryError(f"{where} is a {type(value).__module__}.{type(value).__name__}, not a JSON value")


def case_entry(*, id: str, model: str, framework: str, quant: str, file: str, status: str,
               reason: str | None = None, images: int = 0, **values: Any) -> dict:
    """One case entry. ``values`` are the other keys of REQUIRED/OPTIONAL; anything else is a programming error."""
    unknown = set(values) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        raise TypeError(f"case_entry: unknown key(s) {', '.join(sorted(unknown))}")
    given = {"id": id, "model": model, "framework": framework, "quant": quant, "file": str(file),
             "status": status, "reason": reason, "images": images, **values}
    entry = {key: given.get(key) for key in REQUIRED}
    entry.update({key: given[key] for key in OPTIONAL if given.get(key) is not None})
    return plain_json(entry, f"case {id}")


# The entry travels with the test's report as a user property (to the xdist controller, and into JUnit XML, which
# writes a property's str()): a JSON string, without status and reason, which only the test's outcome decides.
OUTCOME_KEYS = ("status", "reason")


def entry_property(entry: dict) -> str:
    import json

    return json.dumps({k: v for k, v in entry.items() if k not in OUTCOME_KEYS}, allow_nan=False)


def property_value(value: Any) -> Any:
    """A JSON-string user property back as its value (older in-process callers may still pass the object)."""
    if isinstance(value, str):
        import json

        return json.loads(value)
    return value
