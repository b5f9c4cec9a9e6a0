"""The configure module: TOML catalogs of models, expanded into benchmark cases (model x framework x quant).

A ``[[model]]`` table carries what belongs to the model (input size, preprocessing, classes, reference accuracy,
params, FLOPs); each ``[[model.variant]]`` adds a framework, a quantization label, a file and a threshold, and may
override any model key (e.g. ``layout``). A model table with ``framework``/``file`` itself is a single variant.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from . import thresholds
from .preprocess import PreprocessSpec

BUILTIN_CATALOG = "aiotbench.toml"


class CatalogError(Exception):
    """A catalog that cannot be used as written. The message names the file and the entry."""


@dataclass(frozen=True)
class Case:
    model: str
    framework: str
    quant: str
    file: Path
    preprocess: PreprocessSpec
    num_classes: int
    background: bool
    min_top1: float | None = None
    min_top1_rule: thresholds.RelativeThreshold | None = None  # min_top1 = "99% of fp32": relative, see thresholds
    reference_top1: float | None = None
    reference_top5: float | None = None
    params: int | None = None
    gflops: float | None = None
    weights: str | None = None
    canonical: bool = False
    builtin: bool = False  # from the built-in catalog: its files come from the zoo
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    catalog: Path | None = None

    @property
    def id(self) -> str:
        return f"{self.model}-{self.framework}-{self.quant}"


_MODEL_ONLY_KEYS = {"variant"}
_KNOWN_KEYS = {
    "name", "framework", "quant", "file", "input_size", "resize", "color", "layout", "mean", "std",
    "num_classes", "background", "min_top1", "reference_top1", "reference_top5", "params", "gflops",
    "weights", "canonical", "options", "arch", "description", "source", "flops",
}
_ENV = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _expand(path: str) -> str:
    """``${VAR}`` / ``${VAR:-default}`` in file paths, so catalogs can point at shared folders portably."""
    return os.path.expanduser(_ENV.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), path))


def toml_value(value: Any) -> str:
    """A Python value as TOML (what catalog writers need: booleans, numbers, strings, arrays, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def load(path: Path, base_dir: Path | None = None, builtin: bool = False) -> list[Case]:
    """Read a catalog. File paths are relative to ``base_dir`` (default: the catalog's own folder)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"catalog not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    base_dir = Path(base_dir) if base_dir else path.parent
    cases: list[Case] = []
    for index, model in enumerate(data.get("model", [])):
        where = f"{path}: model #{index + 1} ({model.get('name', '?')})"
        variants = model.get("variant") or [{}]
        shared = {k: v for k, v in model.items() if k not in _MODEL_ONLY_KEYS}
        for variant in variants:
            entry = {**shared, **variant}
            cases.append(_case(entry, where, base_dir, path, builtin))
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise CatalogError(f"{path}: case {case.id} is defined twice")
        seen.add(case.id)
    try:
        return thresholds.resolve(cases, str(path))
    except ValueError as exc:
        raise CatalogError(str(exc)) from None


def _case(entry: dict[str, Any], where: str, base_dir: Path, catalog: Path, builtin: bool) -> Case:
    unknown = set(entry) - _KNOWN_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("name", "framework", "quant", "file", "input_size"):
        if key not in entry:
            raise CatalogError(f"{where}: missing required key '{key}'")
    try:
        spec = PreprocessSpec.from_entry(entry)
    except ValueError as exc:
        raise CatalogError(f"{where}: {exc}") from None
    file = Path(_expand(str(entry["file"])))
    if not file.is_absolute():
        file = base_dir / file
    try:
        rule = thresholds.parse_relative(entry.get("min_top1"))
    except ValueError as exc:
        raise CatalogError(f"{where}: {exc}") from None
    gflops = entry.get("gflops")
    if gflops is None and entry.get("flops"):
        gflops = entry["flops"] / 1e9
    return Case(
        model=str(entry["name"]),
        framework=str(entry["framework"]),
        quant=str(entry["quant"]),
        file=file,
        preprocess=spec,
        num_classes=int(entry.get("num_classes", 1000)),
        background=bool(entry.get("background", False)),
        min_top1=None if rule else _fraction(entry.get("min_top1"), "min_top1", where),
        min_top1_rule=rule,
        reference_top1=_fraction(entry.get("reference_top1"), "reference_top1", where),
        reference_top5=_fraction(entry.get("reference_top5"), "reference_top5", where),
        params=entry.get("params"),
        gflops=gflops,
        weights=entry.get("weights"),
        canonical=bool(entry.get("canonical", False)) and builtin,  # only the built-in catalog defines the set
        builtin=builtin,
        options=dict(entry.get("options", {})),
        catalog=catalog,
    )


def _fraction(value, key: str, where: str) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise CatalogError(f"{where}: {key} = {value} must be a fraction in [0, 1] (e.g. 0.70 for 70%)")
    return value
