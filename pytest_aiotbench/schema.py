"""The versioned JSON report (``aiotbench/1``). Readers (compare, rank, report) check ``schema`` first."""

SCHEMA_ID = "aiotbench/1"

_num_or_null = {"type": ["number", "null"]}
_fraction_or_null = {"type": ["number", "null"], "minimum": 0, "maximum": 1}

_validity = {
    "type": "object",
    "required": ["valid", "reasons"],
    "properties": {"valid": {"type": "boolean"}, "reasons": {"type": "array", "items": {"type": "string"}},
                   "notes": {"type": "array", "items": {"type": "string"}}, "checks": {"type": "object"}},
}

CASE = {
    "type": "object",
    "required": ["id", "model", "framework", "quant", "file", "file_sha256", "images", "top1", "top5",
                 "latency_ms", "prepare_ms", "first_ms", "vips", "vops", "status"],
    "properties": {
        "id": {"type": "string"},
        "model": {"type": "string"},
        "framework": {"type": "string"},
        "quant": {"type": "string"},
        "file": {"type": "string"},
        "file_sha256": {"type": ["string", "null"]},
        "weights": {"type": "string"},
        "images": {"type": "integer", "minimum": 0},
        "top1": _fraction_or_null,
        "top5": _fraction_or_null,
        "min_top1": _fraction_or_null,
        "top1_ci95": {"type": ["array", "null"], "items": {"type": "number", "minimum": 0, "maximum": 1},
                      "minItems": 2, "maxItems": 2},
        "min_top1_rule": {"type": ["string", "null"]},
        "min_top1_reference": {"type": ["object", "null"], "required": ["id", "top1"]},
        "latency_ms": {
            "type": ["object", "null"],
            "required": ["min", "median", "mean", "p90", "stddev"],
            "properties": {k: {"type": "number"} for k in ("min", "median", "mean", "p90", "stddev", "max", "iqr")},
        },
        "prepare_ms": _num_or_null,
        "first_ms": _num_or_null,
        "warmup": {"type": "integer"},
        "vips": _num_or_null,
        "vops": _num_or_null,
        "gflops": _num_or_null,
        "status": {"enum": ["passed", "failed", "skipped", "error"]},
        "reason": {"type": ["string", "null"]},
        "runtime": {"type": "object"},
        "fail_on": {"type": "array", "items": {"type": "string"}, "minItems": 1},  # the catalog's per-model limits
        "validity": _validity,  # is the latency trustworthy (validity.py); accuracy is never affected
        "repeats": {"type": "object", "required": ["n", "medians_ms", "spread"]},  # --aiotbench-repeat
        "ab": {  # interleaved A/B against a baseline (ab.py, abrun.py)
            "type": "object",
            "required": ["baseline", "ratio", "pair_validity", "verdict", "judgements"],
            "properties": {
                "ratio": {"type": "object", "required": ["median", "low", "high", "pairs", "sampling", "sessions"]},
                "timed_with": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
                "pair_validity": _validity,
                "verdict": {"enum": ["regression", "no regression", "cannot judge", "not gated"]},
                "judgements": {"type": "array", "items": {"type": "object",
                                                          "required": ["metric", "verdict", "detail"]}},
            },
        },
        "per_image": {
            "type": ["object", "null"],
            "properties": {
                "top5": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
                "latency_ms": {"type": "array", "items": {"type": "number"}},
            },
        },
    },
}

REPORT = {
    "type": "object",
    "required": ["schema", "created", "machine", "device", "packages", "dataset", "settings", "cases", "score"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "created": {"type": "string"},
        "machine": {"type": "object"},
        "device": {"type": "object", "required": ["target"]},
        "packages": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
        "dataset": {
            "type": "object",
            "required": ["path", "images", "fingerprint", "kind", "labeled"],
            "properties": {
                "path": {"type": ["string", "null"]},
                "kind": {"enum": ["labels.csv", "imagenet-val", "synthetic"]},
                "images": {"type": "integer"},
                "fingerprint": {"type": "string"},
                "labeled": {"type": "boolean"},
                "labels": {"type": ["array", "null"], "items": {"type": "integer"}},  # null: synthetic images
                "files": {"type": "array", "items": {"type": "string"}},
            },
        },
        "settings": {"type": "object", "required": ["threads", "warmup"]},
        "cases": {"type": "array", "items": CASE},
        "score": {
            "type": "object",
            "required": ["vips", "vops", "cases", "partial"],
            "properties": {
                "vips": _num_or_null,
                "vops": _num_or_null,
                "cases": {"type": "integer"},
                "partial": {"type": "boolean"},
                "missing": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}
