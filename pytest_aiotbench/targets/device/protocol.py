"""The host <-> device job protocol, in one place: format names, exit codes, the job spec and the result file.

The host writes a job spec (``job_spec``), the runner reads it back (``read_job``), runs it and writes a result
(``result_data``); the host validates the pulled result against the job it sent (``read_result``). Every check
raises :class:`ProtocolError` with one line. Ships in the runner bundle: numpy and the standard library only.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ...frameworks.base import PrepareOptions
from ...inputs.preprocess import PreprocessSpec
from ...inputs.pixels import ArrivingPixels, PixelStore, StoreError
from ...run.job import Job, Measurement
from ...files import file_sha256
from ...run.memory import check_figures, figures

JOB_FORMAT = "aiotbench-job/1"
RESULT_FORMAT = "aiotbench-result/1"


class ExitCode(enum.IntEnum):
    """Exit codes of a job on the device: the runner's own, the preflight's and the device shell's."""

    OK = 0
    BAD_JOB = 2  # the job spec or its files are unusable
    MODEL = 3  # the model failed: load, input shape, inference
    RUNTIME = 4  # numpy or the framework's runtime is missing on the device
    NO_PYTHON = 12  # preflight: the device has no such Python
    DEADLINE = 124  # `timeout` ended the runner
    KILLED = 137  # SIGKILL: the deadline's `timeout -s KILL`, or the out-of-memory killer

    @classmethod
    def meaning(cls, code: int) -> str:
        return _MEANING.get(code, "runner crashed")


_MEANING = {ExitCode.BAD_JOB: "bad job", ExitCode.MODEL: "model failed",
            ExitCode.RUNTIME: "runtime missing on the device", ExitCode.NO_PYTHON: "python missing on the device",
            ExitCode.DEADLINE: "deadline", ExitCode.KILLED: "killed (deadline or out of memory)"}


class ProtocolError(Exception):
    """A job spec or result file that does not follow the protocol. One line; ``code`` is the runner's exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.BAD_JOB):
        super().__init__(message)
        self.code = code


# -- job spec ----------------------------------------------------------------------------------------------------
_JOB_KEYS = {"job_id": str, "case_id": str, "framework": str, "threads": int, "preprocess": dict, "warmup": int,
             "num_classes": int, "background": bool, "top_k": int, "images": int}


def job_spec(job: Job, job_id: str, framework_ref: str | None, pixel_files: list[int] | None = None,
             files: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON the host sends. ``framework_ref`` (``module:attr``) lets the runner import the framework directly:
    a zipapp has no entry points. ``pixel_files``: the images of each ``pixels-K.npy`` pushed while the job runs
    (``stream.ArrivingPixels``); without it the crops are one ``pixels.npy``. ``files``: name -> sha256 of the
    model and the files it loads beside it (ncnn's .bin, OpenVINO's IR weights), checked by the runner."""
    extra = {"pixel_files": list(pixel_files)} if pixel_files else {}
    if files:
        extra["files"] = dict(files)
    if job.chunk:
        extra["chunk"] = int(job.chunk)
    if job.scenario == "offline":  # the runner issues the images as the host would (run/offline.py)
        extra.update(scenario="offline", sessions=job.sessions, batch=int(job.batch))
    if job.cooldown:
        extra["cooldown"] = dict(job.cooldown)
    if job.sustain_s:
        extra["sustain_s"] = float(job.sustain_s)
    return {**extra,
        "format": JOB_FORMAT, "job_id": job_id, "case_id": job.case_id, "framework": job.framework,
        "framework_ref": framework_ref, "threads": job.options.threads, "extra": dict(job.options.extra),
        "preprocess": asdict(job.preprocess), "warmup": job.warmup, "num_classes": job.num_classes,
        "background": job.background, "top_k": job.top_k, "images": int(len(job.pixels)), "quant": job.quant,
    }


def read_job(spec: Any, model: Path, pixels_file: Path) -> Job:
    """The runner's side: check the spec, load the packed pixels, and build the job they describe."""
    if not isinstance(spec, dict) or spec.get("format") != JOB_FORMAT:
        found = spec.get("format") if isinstance(spec, dict) else type(spec).__name__
        raise ProtocolError(f"job format {found!r}, this runner reads {JOB_FORMAT}")
    for key, kind in _JOB_KEYS.items():
        if not isinstance(spec.get(key), kind) or (kind is int and isinstance(spec.get(key), bool)):
            raise ProtocolError(f"job spec: {key} must be a {kind.__name__}, got {spec.get(key)!r}")
    if not isinstance(spec.get("extra") or {}, dict):
        raise ProtocolError(f"job spec: extra must be an object, got {spec.get('extra')!r}")
    files = spec.get("pixel_files")
    if files is not None and not (isinstance(files, list) and files and all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in files)):
        raise ProtocolError(f"job spec: pixel_files must be a list of image counts, got {files!r}")
    check_files(spec.get("files"), model.parent)
    chunk = spec.get("chunk")
    if chunk is not None and (not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1):
        raise ProtocolError(f"job spec: chunk must be a positive int, got {chunk!r}")
    scenario = spec.get("scenario", "single-stream")
    if scenario not in ("single-stream", "offline"):
        raise ProtocolError(f"job spec: scenario {scenario!r}, this runner runs single-stream or offline")
    for key, low in (("sessions", 1), ("batch", 1)):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise ProtocolError(f"job spec: {key} must be a positive int, got {value!r}")
    cool, sustain = spec.get("cooldown"), spec.get("sustain_s")
    if cool is not None and not (isinstance(cool, dict) and (
            isinstance(cool.get("seconds"), (int, float)) or isinstance(cool.get("until_c"), (int, float)))):
        raise ProtocolError(f"job spec: cooldown must be {{seconds}} or {{until_c, max_s}}, got {cool!r}")
    if sustain is not None and (not isinstance(sustain, (int, float)) or isinstance(sustain, bool) or sustain <= 0):
        raise ProtocolError(f"job spec: sustain_s must be a positive number, got {sustain!r}")
    try:  # read a chunk at a time while the job runs (stream.ModelInputs): never all in the device's memory
        size = int(spec["preprocess"].get("input_size", 0))
        pixels = ArrivingPixels(pixels_file.parent, files, size) if files else PixelStore(pixels_file)
    except StoreError as exc:
        raise ProtocolError(str(exc)) from None
    if len(pixels.shape) != 4 or len(pixels) != spec["images"]:
        raise ProtocolError(f"{pixels_file.name} holds {pixels.shape}, the job says {spec['images']} images")
    pre = dict(spec["preprocess"])
    try:
        pre["mean"], pre["std"] = tuple(pre["mean"]), tuple(pre["std"])
        preprocess = PreprocessSpec(**pre)
    except (KeyError, TypeError) as exc:
        raise ProtocolError(f"job spec: bad preprocess ({exc})") from None
    return Job(case_id=spec["case_id"], framework=spec["framework"], model_file=model,
               options=PrepareOptions(threads=spec["threads"], extra=dict(spec.get("extra") or {})),
               pixels=pixels, preprocess=preprocess, warmup=spec["warmup"], num_classes=spec["num_classes"],
               background=spec["background"], top_k=spec["top_k"], chunk=chunk,
               quant=spec["quant"] if isinstance(spec.get("quant"), str) else None,
               scenario=scenario, sessions=spec.get("sessions"), batch=spec.get("batch") or 1,
               cooldown=cool, sustain_s=float(sustain) if sustain is not None else None)


def check_files(files: Any, folder: Path) -> None:
    """Every pushed model file (the model and its companions) has the bytes the host hashed: a push cut short or
    altered on the way is refused before the runtime reads it (ncnn would load a truncated .bin silently)."""
    if files is None:
        return
    if not isinstance(files, dict) or not all(
            isinstance(n, str) and n and "/" not in n and n not in (".", "..") and isinstance(h, str) and len(h) == 64
            for n, h in files.items()):
        raise ProtocolError(f"job spec: files must map plain file names to sha256 digests, got {files!r:.200}")
    for name, expected in files.items():
        try:
            actual = file_sha256(folder / name)
        except OSError as exc:
            raise ProtocolError(f"model file {name} was not pushed: {exc.strerror or exc}") from None
        if actual != expected:
            raise ProtocolError(f"model file {name}: sha256 {actual[:12]}... on the device, the host sent "
                                f"{expected[:12]}... (push cut short or altered)")


# -- result ------------------------------------------------------------------------------------------------------
def result_data(job_id: str, m: Measurement, python: str) -> dict[str, Any]:
    """The result file the runner writes (atomically). ``complete`` comes last: a truncated file lacks it."""
    return {
        "format": RESULT_FORMAT, "job_id": job_id, "images": len(m.topk),
        "latencies_s": [float(x) for x in m.latencies_s], "topk": [[int(c) for c in row] for row in m.topk],
        "prepare_s": float(m.prepare_s), "first_s": float(m.first_s), "session": _jsonable(m.session),
        "timed_on": "device", "python": python, "memory": m.memory,
        **({"offline": _jsonable(m.offline)} if m.offline is not None else {}),
        **{k: _jsonable(v) for k, v in (("conditions", m.conditions), ("sustained", m.sustained)) if v is not None},
        "complete": True,
    }


def read_result(path: Path, job_id: str, images: int, top_k: int, num_classes: int) -> Measurement:
    """The host's side: parse a pulled result file; anything incomplete, foreign or malformed is refused."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"result file is not valid JSON ({type(exc).__name__}): truncated or garbage") from None
    if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT or data.get("complete") is not True:
        raise ProtocolError("result file is incomplete or not an aiotbench result")
    if data.get("job_id") != job_id:
        raise ProtocolError(f"result file belongs to job {data.get('job_id')!r}, not {job_id!r}")
    lat, rows = data.get("latencies_s"), data.get("topk")
    offline = data.get("offline")
    if offline is not None:  # the offline scenario: answers for every image, no per-image latency
        if not isinstance(offline, dict) or offline.get("images") != images or lat != [] \
                or not isinstance(offline.get("wall_s"), (int, float)) or not offline["wall_s"] > 0 \
                or not isinstance(rows, list) or len(rows) != images:
            raise ProtocolError(f"result file has a malformed offline result for {images} images")
    elif data.get("images") != images or not isinstance(lat, list) or not isinstance(rows, list) \
            or len(lat) != images or len(rows) != images:
        raise ProtocolError(f"result file covers {data.get('images')!r} images, the job has {images}")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0 for x in lat):
        raise ProtocolError("result file has non-positive or non-finite latencies")
    k = min(top_k, num_classes)
    if not all(isinstance(r, list) and len(r) == k and all(isinstance(c, int) and not isinstance(c, bool)
                                                           and 0 <= c < num_classes for c in r) for r in rows):
        raise ProtocolError(f"result file has malformed top-{k} rows")
    for key in ("prepare_s", "first_s"):
        value = data.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise ProtocolError(f"result file has a bad {key}")
    session = data.get("session") if isinstance(data.get("session"), dict) else {}
    extra = {}
    for key in ("conditions", "sustained"):  # measured on the device (run.conditions)
        if data.get(key) is not None:
            if not isinstance(data[key], dict):
                raise ProtocolError(f"result file has a bad {key}")
            extra[key] = data[key]
    memory = data.get("memory")
    if memory is not None:
        problem = check_figures(memory)
        if problem:
            raise ProtocolError(f"result file: {problem}")
    return Measurement(np.asarray(rows, dtype=np.int64).reshape(images, k), [float(x) for x in lat],
                       float(data["prepare_s"]), float(data["first_s"]), session, timed_on="device",
                       offline=offline, **extra,
                       memory=memory if memory is not None else figures(
                           None, None, None, "runner process", ["not measured: the runner is older than memory "
                                                                "figures"]))


def _jsonable(info: dict) -> dict:
    """Runtime facts as plain JSON values: non-finite floats become null, unknown objects their str()."""
    out = {}
    for k, v in info.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        try:
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError):
            v = str(v)
        out[str(k)] = v
    return out
