"""Catalog entries and catalog files for the shared real models, and the result of a ``pytest --aiotbench`` run."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

from pytest_aiotbench.inputs.catalog import toml_value


def tflite_entry(name: str, file: Path, size: int, **extra) -> dict:
    """A catalog entry for the Coral/TF-slim uint8 MobileNets in ../shared (raw pixels, 1001 outputs)."""
    entry = {"name": name, "framework": "tflite", "quant": "int8", "file": str(file), "input_size": size,
             "resize": round(size / 0.875), "layout": "NHWC", "mean": [127.5] * 3, "std": [127.5] * 3,
             "num_classes": 1001, "background": True}
    return {**entry, **extra}


def float_entry(name: str, framework: str, file: Path, size: int, **extra) -> dict:
    """A catalog entry for the float TorchScript/ONNX ports in ../shared (NCHW, (x-127.5)/127.5, 1001 logits)."""
    entry = {"name": name, "framework": framework, "quant": "fp32", "file": str(file), "input_size": size,
             "resize": round(size / 0.875), "layout": "NCHW", "mean": [127.5] * 3, "std": [127.5] * 3,
             "num_classes": 1001, "background": True}
    return {**entry, **extra}


def catalog_text(entries: list[dict]) -> str:
    lines = []
    for entry in entries:
        lines.append("[[model]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in entry.items()]
        lines.append("")
    return "\n".join(lines)


def write_catalog(path: Path, entries: list[dict]) -> Path:
    path.write_text(catalog_text(entries))
    return path


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    json_path: Path

    @property
    def report(self) -> dict:
        return json.loads(self.json_path.read_text())

    def case(self, case_id: str) -> dict:
        return next(c for c in self.report["cases"] if c["id"] == case_id)


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()
