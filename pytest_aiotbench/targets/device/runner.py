"""The on-device runner: runs one job where it is started and writes the result file the host validates.

Pushed to the device inside a zipapp (see ``targets.remote.build_runner_bundle``), so it needs only Python >= 3.10,
numpy and the framework's runtime there: never pytest, never this package installed. It calls the same
``execute`` as the host target, so a job means the same thing on both sides; every infer() is timed on the device
with perf_counter (warmup excluded), host<->device transfers never are.

    python3 runner.pyz --job job.json --model MODEL --pixels pixels.npy --out result.json [--pid-file F]

Exit codes: ``protocol.ExitCode``. Errors are one line on stderr starting with ``aiotbench-runner:``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from .protocol import ExitCode, ProtocolError, read_job, result_data


def load_framework(spec: dict):
    """The framework object named by the host (``module:attr``): entry points do not exist in a zipapp."""
    ref = spec.get("framework_ref")
    if not ref:
        from ...frameworks import get_framework

        return get_framework(spec["framework"])
    module_name, _, attr = str(ref).partition(":")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise ProtocolError(f"framework {spec['framework']!r}: cannot import {module_name}: {exc}",
                            ExitCode.RUNTIME) from None
    try:
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ProtocolError(f"framework {spec['framework']!r}: {module_name} has no {attr!r}") from None
    return obj() if isinstance(obj, type) else obj


def device_hint(exc) -> str:
    """A missing runtime in this device's terms: its own pip package for this Python (the plugin is not installed
    here, so the host's ``pip install 'pytest-aiotbench[...]'`` would be the wrong advice)."""
    package = getattr(exc, "package", None)
    if not package:
        return str(exc)
    pins = " ".join(p.strip() for p in package.split(","))
    return (f"{getattr(exc, 'framework', 'the')} runtime is not installed on this device: "
            f"{sys.executable} -m pip install {pins}{getattr(exc, 'note', '')}")


def run(spec: dict, model: Path, pixels_file: Path) -> dict:
    from ...frameworks.base import FrameworkUnavailable, ModelLoadError, one_line
    from ...run import memory
    from .. import host
    from ...run.timing import PerfCounterTiming

    job = read_job(spec, model, pixels_file)
    framework = load_framework(spec)
    # This process runs this one case: its counters hold no other case's memory. The runtime is imported before
    # the base is read (as the host's fresh-process probe does): its libraries are the process's, not the model's.
    memory.import_runtime(framework)
    try:
        m = host.execute(job, PerfCounterTiming(), where="device", framework=framework,
                         probe=memory.Probe(isolation="runner process"))
    except FrameworkUnavailable as exc:  # the host skips the case with this line
        raise ProtocolError(device_hint(exc), ExitCode.RUNTIME) from None
    except (ModelLoadError, host.InferenceError) as exc:
        raise ProtocolError(str(exc), ExitCode.MODEL) from None
    except Exception as exc:  # e.g. InputShapeError, a runtime's own errors: one line for the host
        raise ProtocolError(f"{type(exc).__name__}: {one_line(exc)}", ExitCode.MODEL) from None
    return result_data(spec["job_id"], m, python=sys.version.split()[0])


def main(argv: list[str] | None = None) -> int:
    from ...files import write_json_atomic

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
            raise ProtocolError(f"cannot read {args.job.name}: {exc}") from None
        write_json_atomic(args.out, run(spec, args.model, args.pixels))  # the host never sees half a result
        return ExitCode.OK
    except ProtocolError as exc:
        print(f"aiotbench-runner: {exc}", file=sys.stderr)
        return exc.code
    except ImportError as exc:  # numpy or a module of the bundle missing on this device
        print(f"aiotbench-runner: {exc} (the device needs numpy and the framework's runtime)", file=sys.stderr)
        return ExitCode.RUNTIME


if __name__ == "__main__":
    sys.exit(main())
