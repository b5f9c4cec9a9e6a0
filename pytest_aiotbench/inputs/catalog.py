"""The configure module: TOML catalogs of models, expanded into benchmark cases (model x framework x quant).

A ``[[model]]`` table carries what belongs to the model (input size, preprocessing, classes, reference accuracy,
params, FLOPs); each ``[[model.variant]]`` adds a framework, a quantization label, a file and a threshold, and may
override any model key (e.g. ``layout``). A model table with ``framework``/``file`` itself is a single variant.
"""

from __future__ import annotations

import dataclasses
import json
import math
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
    baseline: Path | None = None  # a previous model file to A/B this case against (same preprocessing)
    fail_on: tuple[str, ...] = ()  # this model's gate limits (limits.parse_limits), over --aiotbench-fail-on

    @property
    def id(self) -> str:
        return f"{self.model}-{self.framework}-{self.quant}"


_MODEL_ONLY_KEYS = {"variant"}
_ENV = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _expand(path: str) -> str:
    """``${VAR}`` / ``${VAR:-default}`` in file paths, so catalogs can point at shared folders portably. An unset
    (or empty) ``${VAR}`` without a default is an error, never an empty string."""

    def sub(m: re.Match) -> str:
        value = os.environ.get(m.group(1))
        if value:
            return value
        if m.group(2) is None:
            raise ValueError(f"environment variable {m.group(1)} is not set or empty (write ${{{m.group(1)}:-default}} "
                             "for a fallback)")
        return m.group(2)

    expanded = _ENV.sub(sub, path)
    if "${" in expanded:  # a brace left over: ${VAR without its }, ${1X}, ${VAR:=x} ... never a literal path
        raise ValueError("malformed ${...}: expected ${VAR} or ${VAR:-default}")
    return os.path.expanduser(expanded)


# --------------------------------------------------------------------------------------- the entry schema
# One validator per key: returns the value (possibly normalized) or raises ValueError saying what is expected.

def _string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value


def _path(value: Any) -> str:
    value = _string(value)
    if "\x00" in value:
        raise ValueError("expected a file path (it contains a NUL character)")
    return value


def _name(value: Any) -> str:
    value = _string(value)
    if any(c.isspace() for c in value) or "@" in value:
        raise ValueError("expected a name without spaces or '@' (it becomes part of the case id)")
    return value


def _int(low: int, high: int | None = None) -> Any:
    span = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            raise ValueError(f"expected {span}")
        return value
    return check


def _number(low: float = 0.0, high: float | None = None, low_open: bool = False) -> Any:
    span = f"a number in [{low:g}, {high:g}]" if high is not None else \
        f"a number {'>' if low_open else '>='} {low:g}"

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < low or (low_open and value == low) or (high is not None and value > high):
            raise ValueError(f"expected {span}")
        return float(value)
    return check


def _quant(value: Any) -> str:
    """One of the known quantization modes (frameworks.base.QUANT_MODES): the label is checked against the model's
    real tensor types when the case runs, so a free-form label would check nothing."""
    from ..frameworks.base import QUANT_MODES

    if not isinstance(value, str) or value not in QUANT_MODES:
        raise ValueError(f"expected one of {', '.join(QUANT_MODES)}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _choice(*allowed: str) -> Any:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value.upper() not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value.upper()
    return check


def _triple(positive: bool) -> Any:
    def check(value: Any) -> tuple[float, float, float]:
        number = _number(0.0, low_open=True) if positive else _number(float("-inf"))
        if not isinstance(value, list) or len(value) != 3:
            raise ValueError(f"expected 3 numbers{' > 0' if positive else ''}, one per channel")
        try:
            return tuple(number(v) for v in value)  # type: ignore[return-value]
        except ValueError:
            raise ValueError(f"expected 3 numbers{' > 0' if positive else ''}, one per channel") from None
    return check


def _table(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError("expected a table, e.g. { delegate = \"none\" }")
    return value


def parse_min_top1(value: Any) -> float | thresholds.RelativeThreshold:
    """The accuracy threshold, the one place it is parsed: a fraction in [0, 1], or relative to another case of the
    same model in the same run (``"99% of fp32"``, see thresholds)."""
    if isinstance(value, str):
        return thresholds.parse_relative(value)
    return _number(0.0, 1.0)(value)


def parse_fail_on(value: Any) -> tuple[str, ...]:
    """Per-model gate limits, ``fail_on = ["top1:-0.5pt", "latency:+5%"]``: parsed by the one limit parser
    (limits.parse_limits), kept in its normal form. They apply wherever this case is gated (compare, the pytest
    gate, the A/B) and override a global limit on the same metric."""
    from .limits import parse_limits

    specs = [value] if isinstance(value, str) else value
    if not isinstance(specs, list) or not specs or not all(isinstance(v, str) and v.strip() for v in specs):
        raise ValueError('expected a non-empty list of limits, e.g. ["top1:-0.5pt", "latency:+5%"]')
    return tuple(str(limit) for limit in parse_limits(specs))  # a LimitError is a ValueError: one line


MAX_SIZE = 4096  # pixels per side: a typo like 22400 must fail here, not make Pillow allocate gigabytes

FIELDS: dict[str, Any] = {
    "name": _name, "framework": _name, "quant": _quant, "file": _path,
    "input_size": _int(1, MAX_SIZE), "resize": _int(0, 2 * MAX_SIZE), "color": _choice("RGB", "BGR"), "layout": _choice("NHWC", "NCHW"),
    "mean": _triple(False), "std": _triple(True), "num_classes": _int(1), "background": _bool,
    "min_top1": parse_min_top1, "reference_top1": _number(0.0, 1.0), "reference_top5": _number(0.0, 1.0),
    "params": _int(0), "gflops": _number(0.0), "flops": _number(0.0), "weights": _string, "canonical": _bool,
    "options": _table, "arch": _string, "description": _string, "source": _string, "baseline": _path,
    "fail_on": parse_fail_on,
}
_KNOWN_KEYS = set(FIELDS)
REQUIRED = ("name", "framework", "quant", "file", "input_size")


def _shown(value: Any) -> str:
    return toml_value(value) if isinstance(value, (str, bool, int, float, list, dict)) else repr(value)


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
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # -sig: editors that save a byte-order mark
    except FileNotFoundError:
        raise CatalogError(f"catalog not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except IsADirectoryError:
        raise CatalogError(f"{path}: is a directory, expected a catalog TOML file") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read ({exc.strerror or exc})") from None
    base_dir = Path(base_dir) if base_dir else path.parent
    models = data.get("model", [])
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise CatalogError(f"{path}: model = {_shown(models)}: expected [[model]] tables")
    if not models:
        raise CatalogError(f"{path}: no [[model]] entries (an empty catalog runs nothing)")
    cases: list[Case] = []
    for index, model in enumerate(models):
        name = model.get("name")
        label = f"model {name!r}" if isinstance(name, str) and name else f"model #{index + 1}"
        variants = model.get("variant", [{}])
        if not isinstance(variants, list) or not variants or not all(isinstance(v, dict) for v in variants):
            raise CatalogError(f"{path}: {label}: variant = {_shown(variants)}: expected [[model.variant]] tables")
        shared = {k: v for k, v in model.items() if k not in _MODEL_ONLY_KEYS}
        for number, variant in enumerate(variants, start=1):
            where = f"{path}: {label}" + (f", variant {number}" if "variant" in model else "")
            cases.append(_case({**shared, **variant}, where, base_dir, path, builtin))
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
    for key in REQUIRED:
        if key not in entry:
            raise CatalogError(f"{where}: missing required key '{key}'")
    values: dict[str, Any] = {}
    for key, raw in entry.items():
        try:
            values[key] = FIELDS[key](raw)
        except ValueError as exc:
            raise CatalogError(f"{where}: {key} = {_shown(raw)}: {exc}") from None
    resize = values.get("resize")
    if resize and resize < values["input_size"]:
        raise CatalogError(f"{where}: resize = {resize}: expected 0 (straight resize) or >= input_size "
                           f"({values['input_size']})")
    try:
        spec = PreprocessSpec.from_entry(values)
    except ValueError as exc:
        raise CatalogError(f"{where}: {exc}") from None
    try:
        file = Path(_expand(values["file"]))
    except ValueError as exc:
        raise CatalogError(f"{where}: file = {_shown(entry['file'])}: {exc}") from None
    if not file.is_absolute():
        file = base_dir / file
    try:
        baseline = Path(_expand(values["baseline"])) if values.get("baseline") else None
    except ValueError as exc:
        raise CatalogError(f"{where}: baseline = {_shown(entry['baseline'])}: {exc}") from None
    if baseline is not None and not baseline.is_absolute():
        baseline = base_dir / baseline
    if file.is_dir():
        raise CatalogError(f"{where}: file = {_shown(entry['file'])}: {file} is a directory, expected a model file")
    threshold = values.get("min_top1")
    gflops = values.get("gflops")
    if gflops is None and values.get("flops"):
        gflops = values["flops"] / 1e9
    return Case(
        model=values["name"],
        framework=values["framework"],
        quant=values["quant"],
        file=file,
        preprocess=spec,
        num_classes=values.get("num_classes", 1000),
        background=values.get("background", False),
        min_top1=None if isinstance(threshold, thresholds.RelativeThreshold) else threshold,
        min_top1_rule=threshold if isinstance(threshold, thresholds.RelativeThreshold) else None,
        reference_top1=values.get("reference_top1"),
        reference_top5=values.get("reference_top5"),
        params=values.get("params"),
        gflops=gflops,
        weights=values.get("weights"),
        canonical=values.get("canonical", False) and builtin,  # only the built-in catalog defines the set
        builtin=builtin,
        options=dict(values.get("options", {})),
        catalog=catalog,
        baseline=baseline,
        fail_on=values.get("fail_on", ()),
    )


def load_baselines(path: Path | None, cases: list[Case]) -> dict[str, Case]:
    """Case id -> baseline case: from the baseline catalog (same id), else the case's own ``baseline`` file."""
    baselines = {c.id: dataclasses.replace(c, file=c.baseline, baseline=None) for c in cases if c.baseline}
    if path is None:
        return baselines
    base_cases = {c.id: c for c in load(path)}
    matched = {c.id: base_cases[c.id] for c in cases if c.id in base_cases}
    if not matched:
        raise CatalogError(f"--aiotbench-baseline {path}: none of its cases ({', '.join(base_cases) or 'none'}) "
                           f"has the id of a case of this run ({', '.join(c.id for c in cases) or 'none'})")
    return {**baselines, **matched}
