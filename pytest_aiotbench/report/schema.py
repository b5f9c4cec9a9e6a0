"""The versioned JSON report (``aiotbench/1``). Readers (compare, rank, report) check ``schema`` first.

The schema itself is a JSON Schema (draft 2020-12) file shipped in the package, ``data/report.schema.json``, so
other tools can validate reports with any JSON Schema validator. The plugin checks it with its own validator
(``reports.first_schema_violation``: one-line messages naming the case, and NaN/Infinity refused), which refuses
to run on a schema that uses a keyword it does not implement: no keyword is ever silently skipped."""

from __future__ import annotations

import json
from importlib import resources

SCHEMA_ID = "aiotbench/1"
SCHEMA_FILE = "data/report.schema.json"

REPORT: dict = json.loads(resources.files("pytest_aiotbench").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))
CASE: dict = REPORT["properties"]["cases"]["items"]
