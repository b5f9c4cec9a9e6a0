"""Build small, realistic ``aiotbench/1`` reports for the compare/rank/report tests.

Latencies come from a seeded RNG (log-normal around a centre, like real per-image timings with a right tail)
and every summary figure is computed from them, so the files are self-consistent like the plugin's."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from pytest_aiotbench.report.entry import case_entry
from tests.helpers.shared import REPO  # noqa: F401 (re-exported)

FINGERPRINT = "sha256:" + "ab" * 32


def make_case(case_id: str, *, top1: float | None = 0.70, top5: float | None = 0.89, latency_ms: float = 5.0,
              spread: float = 0.05, images: int = 200, seed: int = 0, gflops: float | None = 0.3,
              status: str = "passed", file_sha256: str = "f" * 64) -> dict:
    """A case entry built by the plugin's own builder (pytest_aiotbench.report.entry.case_entry)."""
    model, framework, quant = (case_id.split("-") + ["", "", ""])[:3]
    identity = dict(id=case_id, model=model, framework=framework, quant=quant, file=f"{model}.bin", gflops=gflops)
    if status in ("skipped", "error"):
        return case_entry(**identity, status=status, reason=f"{status} on purpose")
    rng = np.random.default_rng(seed)
    lat = latency_ms * rng.lognormal(0.0, spread, images)
    q1, q3 = np.percentile(lat, [25, 75])
    mean_s = float(lat.mean()) / 1e3
    vips = top1 / mean_s if top1 is not None else None
    return case_entry(
        **identity, status=status, file_sha256=file_sha256, images=images, top1=top1, top5=top5, min_top1=0.1,
        latency_ms={"min": float(lat.min()), "median": float(np.median(lat)), "mean": float(lat.mean()),
                    "p90": float(np.percentile(lat, 90)), "stddev": float(lat.std(ddof=1)),
                    "max": float(lat.max()), "iqr": float(q3 - q1)},
        prepare_ms=12.0, first_ms=float(lat[0]) * 3, vips=vips,
        vops=vips * gflops if vips is not None and gflops is not None else None,
        per_image={"top5": [[1, 2, 3, 4, 5]] * images, "latency_ms": [float(x) for x in lat]},
    )


def make_report(cases: list[dict], *, device: str = "host-a", fingerprint: str = FINGERPRINT,
                images: int = 200) -> dict:
    vips = [c["vips"] for c in cases if c["vips"] is not None]
    vops = [c["vops"] for c in cases if c["vops"] is not None]
    missing = [c["id"] for c in cases if c["vips"] is None]
    return {
        "schema": "aiotbench/1", "created": "2026-11-29T15:00:00+00:00",
        "machine": {"cpu": "test cpu", "cores": 2}, "device": {"target": "host", "name": device},
        "packages": {"ai-edge-litert": "2.3.0"},
        "dataset": {"path": "/data/val", "kind": "imagenet-val", "images": images, "fingerprint": fingerprint,
                    "labeled": True},
        "settings": {"threads": 1, "warmup": 5},
        "cases": cases,
        "score": {"vips": sum(vips) if vips else None, "vops": sum(vops) if vops else None, "cases": len(cases),
                  "partial": bool(missing), "missing": missing},
    }


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m pytest_aiotbench ...`` as a user would, capturing output."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "pytest_aiotbench", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or REPO, env=env, timeout=300)


def gate_plugin_args() -> list[str]:
    """Nothing: the gate is part of the one plugin (plugin.py registers it)."""
    return []


def offline_case(case: dict, images_per_s: float) -> dict:
    """``case`` as the offline scenario reports it: images/s and offline VIPS, no latency."""
    out = copy.deepcopy(case)
    out.update(scenario="offline", latency_ms=None, vips=None, vops=None, images_per_s=images_per_s,
               offline={"images": out["images"], "wall_s": out["images"] / images_per_s,
                        "images_per_s": images_per_s, "sessions": 2, "batch": 1, "vips": out["top1"] * images_per_s,
                        "vops": None})
    out["per_image"] = {**out["per_image"], "latency_ms": []}
    return out
