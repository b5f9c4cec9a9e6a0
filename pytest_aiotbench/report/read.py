"""Reading result files for ``compare``, ``rank`` and ``report``.

Two inputs are accepted and normalized into one form, the plugin's own ``aiotbench/1`` report dict:

* the plugin's JSON (``--aiotbench-json``), validated against :data:`pytest_aiotbench.report.schema.REPORT`;
* pytest-benchmark's ``--benchmark-json``: each benchmark whose ``extra_info`` carries the case keys (the plugin
  writes them, with the dataset, per case) becomes a case; the machine is pytest-benchmark's ``machine_info``.

Every problem with a file is a :class:`ReportError` whose message is one line naming the file, so the commands
can print it and exit 2 instead of showing a traceback.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

from .schema import REPORT, SCHEMA_ID
from ..verdicts.score import device_score

# Exit code of every subcommand for unusable input (argparse uses 2 for bad arguments as well).
EXIT_BAD_INPUT = 2


class ReportError(Exception):
    """A result file (or the set of them) cannot be used. The message is a single line."""


# --------------------------------------------------------------------------------------------------- loading

def load_report(path: str | os.PathLike) -> dict[str, Any]:
    """Read a plugin report or a pytest-benchmark JSON file into the normalized report form."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReportError(f"{path}: is a directory, expected a JSON report") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not raw.strip():
        raise ReportError(f"{path}: empty file")
    try:  # -sig: a report re-saved by an editor that adds a BOM
        data = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise ReportError(f"{path}: {exc}; a hand-edited or merged file? (which value counts would be a guess)"
                          ) from None
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a UTF-8 JSON file") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); "
                          "truncated or corrupt file?") from None
    return normalize_report(data, origin=str(path))


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object with a key twice is refused: ``json`` would silently keep the last value, and a verdict
    could hang on which one a reader takes."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            where = f" (in the object with id {out['id']!r})" if isinstance(out.get("id"), str) else ""
            raise _DuplicateKey(f"duplicate key {key!r} in a JSON object{where}")
        out[key] = value
    return out


def normalize_report(data: Any, origin: str = "report") -> dict[str, Any]:
    """Validate ``data`` (plugin report or pytest-benchmark dict) and return it in the plugin's form.

    The result is a new dict with an extra ``"origin"`` key (file name, for messages and headers)."""
    if not isinstance(data, dict):
        raise ReportError(f"{origin}: not an aiotbench report (top level is a JSON {_json_type(data)}, "
                          "expected an object)")
    if "schema" in data:
        if data["schema"] != SCHEMA_ID:
            raise ReportError(f"{origin}: unsupported report schema {data['schema']!r} "
                              f"(this version reads {SCHEMA_ID!r})")
        report = dict(data)
    elif isinstance(data.get("benchmarks"), list) and "machine_info" in data:
        report = _from_pytest_benchmark(data, origin)
    else:
        raise ReportError(f"{origin}: neither an aiotbench report (no \"schema\": \"{SCHEMA_ID}\") "
                          "nor a pytest-benchmark JSON (no \"benchmarks\")")
    problem = first_schema_violation(report, REPORT)
    if problem:
        raise ReportError(f"{origin}: {_name_case(report, problem)}{problem}")
    problem = first_bad_latency(report["cases"]) or first_impossible_count(report["cases"])
    if problem:
        raise ReportError(f"{origin}: {problem}")
    for case in report["cases"]:  # a case's own limits (catalog fail_on) decide verdicts: checked like --fail-on
        if case.get("fail_on"):
            from ..inputs.limits import LimitError, parse_limits

            try:
                parse_limits(case["fail_on"])
            except LimitError as exc:
                raise ReportError(f"{origin}: case {case['id']!r}: fail_on: {exc}") from None
    ids = [case["id"] for case in report["cases"]]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ReportError(f"{origin}: duplicate case id(s): {', '.join(duplicates)}")
    report["origin"] = origin
    return report


MAX_LATENCY_MS = 86_400_000.0  # one day per image: anything longer is a corrupt number, not a slow device


def first_bad_latency(cases: list[dict]) -> str | None:
    """Latencies are times: zero, negative or beyond a day is a corrupt file, not a fast or slow case (and would
    divide by zero or overflow in the statistics)."""
    for index, case in enumerate(cases):
        stats = case.get("latency_ms") or {}
        samples = (case.get("per_image") or {}).get("latency_ms") or []
        for key, value in [*((f"latency_ms.{k}", v) for k, v in stats.items() if k not in ("stddev", "iqr")),
                           *((f"per_image.latency_ms[{i}]", v) for i, v in enumerate(samples))]:
            if not 0 < value <= MAX_LATENCY_MS:
                return (f"case {case['id']!r}: cases[{index}].{key}: {value} ms is not a latency "
                        f"(expected > 0 and <= {MAX_LATENCY_MS:.0f})")
    return None


def first_impossible_count(cases: list[dict]) -> str | None:
    """The plugin times each image at most once per case (``--aiotbench-repeat`` keeps each image's median, the
    A/B one pair per image, benchmark_model fewer runs than images), so a case never holds more per-image
    latencies than it has images. More is a corrupt or forged file (and would make compare resample it all)."""
    for index, case in enumerate(cases):
        images = case.get("images") or 0
        blocks = [("per_image.latency_ms", case.get("per_image"))]
        if isinstance(case.get("ab"), dict) and isinstance(case["ab"].get("baseline"), dict):
            blocks.append(("ab.baseline.per_image.latency_ms", case["ab"]["baseline"].get("per_image")))
        for key, block in blocks:
            count = len((block or {}).get("latency_ms") or []) if isinstance(block, dict) else 0
            if count > images:
                return (f"case {case['id']!r}: cases[{index}].{key} holds {count} latencies for {images} images "
                        "(at most one per image)")
    return None


def _name_case(report: dict, problem: str) -> str:
    """``case 'ID': `` when the problem is inside a case that has an id, so the message says which one."""
    match = re.match(r"cases\[(\d+)\]", problem)
    cases = report.get("cases")
    if match and isinstance(cases, list) and int(match[1]) < len(cases):
        case = cases[int(match[1])]
        if isinstance(case, dict) and isinstance(case.get("id"), str):
            return f"case {case['id']!r}: "
    return ""


# Case keys that make a pytest-benchmark entry one of ours; other benchmarks in the same file are ignored.
_CASE_MARKERS = ("model", "framework", "latency_ms")
_BENCH_STATS_KEYS = ("min", "median", "mean", "stddev", "max", "iqr")


def _machine_from_benchmark(info: dict) -> dict[str, Any]:
    """pytest-benchmark's ``machine_info`` (platform + py-cpuinfo) in the plugin's machine facts, so that a
    ``--benchmark-json`` file and a report of the same machine compare as the same machine."""
    from ..run.environment import ISA_FEATURES

    cpu = info.get("cpu") if isinstance(info.get("cpu"), dict) else {}
    flags = set(cpu.get("flags") or []) if isinstance(cpu.get("flags"), list) else set()
    facts = {"hostname": info.get("node"), "system": info.get("system"), "release": info.get("release"),
             "machine": info.get("machine"), "cpu": cpu.get("brand_raw") or info.get("processor") or None,
             "cores": cpu.get("count"), "vendor": cpu.get("vendor_id_raw"),
             **{name: str(cpu[key]) for key, name in (("family", "family"), ("model", "model_id"),
                                                       ("stepping", "stepping")) if cpu.get(key) is not None},
             "python": info.get("python_version")}
    if flags:
        facts["isa"] = [f for f in ISA_FEATURES["x86"] + ISA_FEATURES["arm"] if f in flags]
    return {k: v for k, v in facts.items() if v is not None}


def _from_pytest_benchmark(data: dict, origin: str) -> dict[str, Any]:
    info = data.get("machine_info") if isinstance(data.get("machine_info"), dict) else {}
    machine = _machine_from_benchmark(info)
    cases = []
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info") if isinstance(bench, dict) else None
        if not isinstance(extra, dict) or not any(key in extra for key in _CASE_MARKERS):
            continue
        cases.append(_case_from_benchmark(bench, extra))
    if not cases:
        raise ReportError(f"{origin}: pytest-benchmark JSON without aiotbench cases "
                          "(no benchmark has aiotbench metrics in extra_info)")
    dataset = cases[0].get("dataset") or {}
    if isinstance(dataset, str):  # a bare fingerprint
        dataset = {"fingerprint": dataset}
    dataset = {"path": None, "kind": "synthetic" if not dataset.get("labeled", True) else "imagenet-val",
               "images": max(case.get("images") or 0 for case in cases), "fingerprint": "unknown",
               "labeled": any(case.get("top1") is not None for case in cases), **dataset}
    for case in cases:
        case.pop("dataset", None)
    report = {
        "schema": SCHEMA_ID,
        "created": data.get("datetime") or "",
        "machine": machine,
        "device": {"target": "host", "name": info.get("node") or "host"},
        "packages": {},
        "dataset": dataset,
        "settings": {"threads": None, "warmup": None},
        "cases": cases,
        "score": score_of(cases),
    }
    return report


def _case_from_benchmark(bench: dict, extra: dict) -> dict[str, Any]:
    case = dict(extra)
    case.setdefault("id", bench.get("param") or bench.get("name") or "?")
    for key in ("model", "framework", "quant", "file"):
        case.setdefault(key, "")
    for key in ("file_sha256", "top1", "top5", "prepare_ms", "first_ms", "vips", "vops"):
        case.setdefault(key, None)
    case.setdefault("status", "passed")
    per_image = case.get("per_image") if isinstance(case.get("per_image"), dict) else None
    stats = bench.get("stats") if isinstance(bench.get("stats"), dict) else {}
    if per_image is None and isinstance(stats.get("data"), list):  # --benchmark-save-data keeps raw seconds
        per_image = case["per_image"] = {"latency_ms": [s * 1e3 for s in stats["data"]]}
    if "latency_ms" not in case:
        if all(isinstance(stats.get(k), (int, float)) for k in _BENCH_STATS_KEYS):
            case["latency_ms"] = {k: stats[k] * 1e3 for k in _BENCH_STATS_KEYS}
            samples = (per_image or {}).get("latency_ms")
            if samples:
                case["latency_ms"]["p90"] = _percentile(samples, 90)
        else:
            case["latency_ms"] = None
    case.setdefault("images", len((per_image or {}).get("latency_ms") or []) or int(stats.get("rounds") or 0))
    return case


def _percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, the same definition as ``numpy.percentile``'s default."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def score_of(cases: list[dict]) -> dict[str, Any]:
    """The device score of a report's cases: ``score.device_score`` (the one rule), with the listed cases as the
    full set, so it is partial when any of them has no VIPS. ``cases`` counts the listed cases."""
    score = device_score(cases, [case["id"] for case in cases])
    return {"vips": score.vips, "vops": score.vops, "cases": len(cases), "partial": score.partial,
            "missing": score.missing}


# ------------------------------------------------------------------------------------------------ validation

_JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "integer" if isinstance(value, int) else "number"
    return next((name for name, cls in _JSON_TYPES.items() if isinstance(value, cls)), type(value).__name__)


def _has_type(value: Any, name: str) -> bool:
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, _JSON_TYPES[name])


# The JSON Schema keywords first_schema_violation implements, and the annotations it may ignore. A schema using
# any other keyword is refused (unsupported_keywords), so a constraint is never silently skipped.
VALIDATION_KEYWORDS = frozenset({"type", "required", "properties", "items", "enum", "const", "minimum", "maximum",
                                 "additionalProperties", "minItems", "maxItems"})
ANNOTATIONS = frozenset({"$schema", "$id", "title", "description"})


def unsupported_keywords(schema: Any, where: str = "") -> list[str]:
    """Keywords of ``schema`` (recursively) that first_schema_violation does not implement."""
    if not isinstance(schema, dict):
        return []
    found = [f"{where or 'top level'}: {k}" for k in schema if k not in VALIDATION_KEYWORDS | ANNOTATIONS]
    for key, sub in (schema.get("properties") or {}).items():
        found += unsupported_keywords(sub, f"{where}.{key}" if where else key)
    for key in ("items", "additionalProperties"):
        found += unsupported_keywords(schema.get(key), f"{where}[{key}]")
    return found


def first_schema_violation(value: Any, schema: dict, where: str = "") -> str | None:
    """The first place where ``value`` breaks ``schema`` as a one-line message, or None.

    Implements the JSON Schema keywords in VALIDATION_KEYWORDS (those the shipped schema uses; checked by
    unsupported_keywords), so no jsonschema dependency is needed at run time."""
    label = where or "top level"
    if "const" in schema and value != schema["const"]:
        return f"{label}: expected {schema['const']!r}, got {value!r}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{label}: {value!r} is not one of {', '.join(map(repr, schema['enum']))}"
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_has_type(value, t) for t in types):
            if isinstance(value, float) and not math.isfinite(value):  # JSON has no NaN: Python's writer lets it in
                spelled = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
                return f"{label}: {spelled} is not allowed (expected {' or '.join(types)})"
            return f"{label}: expected {' or '.join(types)}, got {_json_type(value)}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{label}: {value} is below the minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{label}: {value} is above the maximum {schema['maximum']}"
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                return f"{label}: missing key {key!r}"
        for key, item in value.items():
            sub = schema.get("properties", {}).get(key, schema.get("additionalProperties"))
            if isinstance(sub, dict):
                problem = first_schema_violation(item, sub, f"{where}.{key}" if where else key)
                if problem:
                    return problem
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            return f"{label}: {len(value)} item(s), expected at least {schema['minItems']}"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{label}: {len(value)} item(s), expected at most {schema['maxItems']}"
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problem = first_schema_violation(item, schema["items"], f"{where}[{index}]")
            if problem:
                return problem
    return None


# ------------------------------------------------------------------------------------------- shared helpers

def describe_run(report: dict) -> str:
    """One line naming a run: file, device, when."""
    device = report.get("device", {})
    name = device.get("name") or device.get("model") or device.get("target", "?")
    when = str(report.get("created", ""))[:19].replace("T", " ")
    return f"{report.get('origin', 'report')} ({name}, {device.get('target', '?')}{', ' + when if when else ''})"


def describe_dataset(report: dict) -> str:
    dataset = report["dataset"]
    fingerprint = str(dataset.get("fingerprint", "?"))
    return f"{dataset.get('kind', '?')}, {dataset.get('images', '?')} images, {fingerprint[:19]}"


def case_map(report: dict) -> dict[str, dict]:
    return {case["id"]: case for case in report["cases"]}


def text_table(headers: list[str], rows: list[list[str]], right_from: int = 1) -> str:
    """Plain-text table; columns from ``right_from`` on are right-aligned (numbers)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).rjust(w) if i >= right_from else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(row) for row in rows])


def cli_command(command: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a subcommand's ``func``: a :class:`ReportError` (or a bad limit) becomes one stderr line and exit
    code 2."""
    from ..inputs.limits import LimitError

    def decorate(func: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(func)
        def run(args) -> int:
            try:
                return func(args)
            except (ReportError, LimitError) as exc:
                print(f"aiotbench {command}: error: {exc}", file=sys.stderr)
                return EXIT_BAD_INPUT
            except OSError as exc:  # e.g. an output path that cannot be written
                where = f"{exc.filename}: " if exc.filename else ""
                print(f"aiotbench {command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
                return EXIT_BAD_INPUT

        return run

    return decorate


if unsupported_keywords(REPORT):  # a schema edit this validator cannot enforce: fail loudly, never skip it
    raise RuntimeError(f"report schema uses keywords the validator does not implement: "
                       f"{', '.join(unsupported_keywords(REPORT))}")
