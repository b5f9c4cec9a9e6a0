"""The on-device runner: runs one job where it is started and writes the result file the host validates.

Pushed to the device inside a zipapp (see ``targets.remote.build_runner_bundle``) with the framework modules,
so it needs only Python >= 3.10, numpy and the framework's runtime there: never pytest, never this package installed.
It calls the same ``execute`` as the host target, so a job means the same thing on both sides; every infer() is
timed on the device with perf_counter (warmup excluded), host<->device transfers never are.

    python3 runner.pyz --job job.json --model MODEL --pixels pixels.npy --out result.json [--pid-file F]

Exit codes: 0 result written; 2 bad job or files; 3 the model failed (load, shape, inference); 4 runtime missing.
Errors are one line on stderr starting with ``aiotbench-runner:``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from pathlib import Path

RESULT_FORMAT = "aiotbench-result/1"
JOB_FORMAT = "aiotbench-job/1"
EXIT_BAD_JOB, EXIT_MODEL, EXIT_RUNTIME = 2, 3, 4


class RunnerError(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _load_framework(spec: dict):
    """The framework object named by the host (``module:attr``): entry points do not exist in a zipapp."""
    ref = spec.get("framework_ref")
    if not ref:
        from pytest_aiotbench.frameworks import get_framework

        return get_framework(spec["framework"])
    module_name, _, attr = ref.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise RunnerError(f"framework {spec['framework']!r}: cannot import {module_name}: {exc}", EXIT_RUNTIME)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj() if isinstance(obj, type) else obj


def build_job(spec: dict, model: Path, pixels_file: Path):
    import numpy as np

    from pytest_aiotbench.frameworks.base import PrepareOptions
    from pytest_aiotbench.preprocess import PreprocessSpec
    from pytest_aiotbench.targets.base import Job

    if spec.get("format") != JOB_FORMAT:
        raise RunnerError(f"job format {spec.get('format')!r}, this runner reads {JOB_FORMAT}", EXIT_BAD_JOB)
    try:
        pixels = np.load(pixels_file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RunnerError(f"cannot read {pixels_file.name}: {exc}", EXIT_BAD_JOB)
    if pixels.ndim != 4 or len(pixels) != spec["images"]:
        raise RunnerError(f"{pixels_file.name} holds {pixels.shape}, the job says {spec['images']} images",
                          EXIT_BAD_JOB)
    pre = dict(spec["preprocess"])
    pre["mean"], pre["std"] = tuple(pre["mean"]), tuple(pre["std"])
    return Job(case_id=spec["case_id"], framework=spec["framework"], model_file=model,
               options=PrepareOptions(threads=int(spec["threads"]), extra=dict(spec.get("extra") or {})),
               pixels=pixels, preprocess=PreprocessSpec(**pre), warmup=int(spec["warmup"]),
               num_classes=int(spec["num_classes"]), background=bool(spec["background"]), top_k=int(spec["top_k"]))


def run(spec: dict, model: Path, pixels_file: Path) -> dict:
    from pytest_aiotbench.frameworks.base import FrameworkUnavailable, ModelLoadError, one_line
    from pytest_aiotbench.targets import host
    from pytest_aiotbench.timing import PerfCounterTiming

    job = build_job(spec, model, pixels_file)
    framework = _load_framework(spec)
    try:
        m = host.execute(job, PerfCounterTiming(), where="device", framework=framework)
    except FrameworkUnavailable as exc:
        raise RunnerError(str(exc), EXIT_RUNTIME)
    except (ModelLoadError, host.InferenceError) as exc:
        raise RunnerError(str(exc), EXIT_MODEL)
    except Exception as exc:  # e.g. InputShapeError, a runtime's own errors: one line for the host
        raise RunnerError(f"{type(exc).__name__}: {one_line(exc)}", EXIT_MODEL)
    return {
        "format": RESULT_FORMAT,
        "job_id": spec["job_id"],
        "images": len(m.latencies_s),
        "latencies_s": [float(x) for x in m.latencies_s],
        "topk": [[int(c) for c in row] for row in m.topk],
        "prepare_s": float(m.prepare_s),
        "first_s": float(m.first_s),
        "session": _jsonable(m.session),
        "timed_on": "device",
        "python": sys.version.split()[0],
        "complete": True,  # written last: a truncated file fails to parse or lacks it
    }


def _jsonable(info: dict) -> dict:
    out = {}
    for k, v in info.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        try:
            json.dumps(v)
        except TypeError:
            v = str(v)
        out[str(k)] = v
    return out


def write_atomically(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)  # the host never sees a half-written result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiotbench-runner")
    parser.add_argument("--job", required=True, type=Path)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--pixels", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--pid-file", type=Path, help="written first, so the host can kill a run past its deadline")
    args = parser.parse_args(argv)
    if args.pid_file:
        args.pid_file.write_text(str(os.getpid()))
    try:
        try:
            spec = json.loads(args.job.read_text())
        except (OSError, ValueError) as exc:
            raise RunnerError(f"cannot read {args.job.name}: {exc}", EXIT_BAD_JOB)
        result = run(spec, args.model, args.pixels)
        write_atomically(args.out, result)
        return 0
    except RunnerError as exc:
        print(f"aiotbench-runner: {exc}", file=sys.stderr)
        return exc.code
    except ImportError as exc:  # numpy or a module of the bundle missing on this device
        print(f"aiotbench-runner: {exc} (the device needs numpy and the framework's runtime)", file=sys.stderr)
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
