"""``aiotbench zoo build``: source weights -> .ptl, .onnx, four TFLite variants and (with executorch) .pte,
incremental, one subprocess per artifact (peak memory from ``os.wait4``; a crash loses only that artifact), manifest
updated after every artifact.

Layout: ``<out>/<model>/<model>.ptl``, ``<model>.onnx``, ``<model>-{fp32,dynamic,int8,fp16}.tflite``, ``<model>.pte``;
``<out>/manifest.json``; ``<out>/catalog.toml`` (what this folder holds, in the catalog schema);
``<out>/.sources/`` (the one set of weights every artifact is exported from) and ``<out>/.logs/`` (step logs).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from . import ARCHS, BUILD_VARIANTS, MODELS, OPTIONAL_VARIANTS, RELATIVE_REFERENCE, RELATIVE_THRESHOLDS, VARIANT_OPTIONS, VARIANTS, ZooModel
from ..inputs import manifest as mf
from . import weights as wt
from ..inputs.catalog import toml_value

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SOURCES_DIR, LOGS_DIR = ".sources", ".logs"

# Tools each step depends on: a version change of any of them rebuilds the artifact.
STEP_TOOLS = {
    "source": ("torch", "torchvision"),
    "ptl": ("torch",),
    "onnx": ("torch", "onnx", "onnxruntime"),
    "tflite": ("torch", "litert-torch", "litert-converter", "ai-edge-litert"),
    "quant": ("ai-edge-quantizer", "ai-edge-litert", "litert-torch", "litert-converter", "torch"),
    "pte": ("torch", "executorch"),
    "ncnn": ("torch", "pnnx", "ncnn"),
    "mnn": ("torch", "onnx", "MNN"),
    "openvino": ("torch", "onnx", "openvino"),
}
VARIANT_STEP = {"ptl": "ptl", "onnx": "onnx", "fp32": "tflite", "dynamic": "quant", "int8": "quant", "fp16": "quant",
                "pte": "pte", "ncnn": "ncnn", "ncnn-fp16": "ncnn", "mnn": "mnn", "openvino": "openvino",
                "openvino-bf16": "openvino"}
ALL_TOOLS = ("torch", "torchvision", "onnx", "onnxruntime", "litert-torch", "litert-converter", "ai-edge-litert",
             "ai-edge-quantizer", "executorch", "pnnx", "ncnn", "MNN", "openvino", "numpy", "pillow")


class BuildError(Exception):
    """A build that cannot start as asked (exit 2). One line."""


@dataclass
class BuildOptions:
    out: Path = Path("models/zoo")
    models: list[str] | None = None
    weights: str = "pretrained"  # pretrained | random | path of a state_dict (ignored with torchscript)
    arch: str | None = None  # torchvision builder for a state_dict (ARCHS)
    color: str | None = None
    offline: bool = False  # also AIOTBENCH_OFFLINE=1
    weights_mirror: str | None = None  # also AIOTBENCH_WEIGHTS_MIRROR
    variants: tuple[str, ...] = BUILD_VARIANTS
    calibration: Path | None = None
    calibration_count: int = 200
    calibration_margin: float = 1.25
    exclude: list[Path] = field(default_factory=list)
    seed: int = 0
    bn_images: int = 32
    input_size: int | None = None  # override for the torchvision models (small, fast CI builds)
    force: bool = False
    timeout: float = 1800.0
    # --from-torchscript
    torchscript: Path | None = None
    name: str | None = None
    ts_input_size: int | None = None
    resize: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    num_classes: int | None = None  # None: the model's own (1000 for torchvision's, 1000 assumed for TorchScript)
    background: bool = False
    reference_top1: float | None = None
    reference_top5: float | None = None


def weights_kind(o: "BuildOptions") -> str:
    """torchscript | pretrained | random | state_dict (``--weights FILE.pth``)."""
    if o.torchscript:
        return "torchscript"
    return o.weights if o.weights in ("pretrained", "random") else "state_dict"


@dataclass
class StepResult:
    ok: bool
    info: dict
    error: str | None
    seconds: float
    peak_mb: float
    code: int
    log: Path


def tool_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ALL_TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def hub_checkpoint_dir() -> Path:
    """torch.hub.get_dir()/checkpoints, computed the way torch does, without importing torch."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def _say(msg: str) -> None:
    print(f"[zoo] {msg}", file=sys.stderr, flush=True)


def _model_dict(m: ZooModel, input_size: int | None) -> dict:
    size, resize = m.input_size, m.resize
    if input_size:
        size, resize = input_size, round(input_size * m.resize / m.input_size)
    return {"name": m.name, "builder": m.builder, "weights_enum": m.weights_enum, "input_size": size,
            "resize": resize, "mean": list(m.mean), "std": list(m.std), "num_classes": m.num_classes,
            "background": m.background, "builder_kwargs": dict(m.builder_kwargs), "color": "RGB",
            "reference_top1": m.reference_top1, "reference_top5": m.reference_top5,
            "params": m.params, "gflops": m.gflops, "canonical": input_size in (None, m.input_size)}


def _state_dict_model_dict(o: BuildOptions) -> dict:
    """A known architecture with the user's own weights: torchvision's builder (``--arch``), the user's
    preprocessing; no reference accuracy unless given (torchvision's figures are for its weights, not these)."""
    if not Path(o.weights).is_file():
        raise BuildError(f"--weights: no such file {o.weights} (pretrained, random, or a state_dict .pth)")
    if not o.models or len(o.models) != 1:
        raise BuildError(f"--weights FILE.pth is one model's weights: name it with --models (one of "
                         f"{', '.join(MODELS)})")
    name = o.models[0]
    if name not in MODELS:
        raise BuildError(f"unknown model {name}; choose from {', '.join(MODELS)}")
    m = MODELS[name]
    arch = o.arch or ARCHS[name][0]
    if arch not in ARCHS[name]:
        raise BuildError(f"--arch {arch} is not an architecture of {name}; choose from {', '.join(ARCHS[name])}")
    d = _model_dict(m, o.input_size)
    if o.resize is not None:
        d["resize"] = int(o.resize)
    for key, value in (("mean", o.mean), ("std", o.std)):
        if value is not None:
            d[key] = list(value)
    d["color"] = o.color or "RGB"
    if o.num_classes is not None:  # the state_dict's classifier head decides; loading checks it fits
        d["num_classes"] = int(o.num_classes)
    default = _model_dict(m, None)
    d["canonical"] = arch == m.builder and all(d[k] == default[k] for k in ("input_size", "resize", "mean", "std",
                                                                             "color", "num_classes"))
    d.update(builder=arch, weights_enum=None, reference_top1=o.reference_top1, reference_top5=o.reference_top5,
             params=None, gflops=None)
    return d


def _ts_model_dict(o: BuildOptions) -> dict:
    missing = [flag for flag, v in (("--name", o.name), ("--input-size", o.ts_input_size), ("--mean", o.mean),
                                    ("--std", o.std)) if v is None]
    if missing:
        raise BuildError(f"--from-torchscript needs {', '.join(missing)}")
    if not Path(o.torchscript).is_file():
        raise BuildError(f"TorchScript file not found: {o.torchscript}")
    size = int(o.ts_input_size)
    resize = round(size / 0.875) if o.resize is None else int(o.resize)
    return {"name": o.name, "builder": None, "weights_enum": None, "input_size": size, "resize": resize,
            "mean": list(o.mean), "std": list(o.std), "num_classes": int(o.num_classes or 1000),
            "background": bool(o.background), "builder_kwargs": {}, "color": o.color or "RGB",
            "reference_top1": o.reference_top1, "reference_top5": o.reference_top5,
            "params": None, "gflops": None, "canonical": False}


def _file_name(model: str, variant: str) -> str:
    return f"{model}/" + VARIANTS[variant][3].format(name=model)


def _importable(module: str) -> bool:
    """Whether ``module`` can be found, without importing it (a dotted name imports only its parent packages)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _companions_intact(path: Path, entry: dict) -> bool:
    """The files an artifact needs beside it (``companions`` in its manifest entry) exist with their sha256."""
    return all((path.parent / n).is_file() and mf.file_sha256(path.parent / n) == c.get("sha256")
               for n, c in (entry.get("companions") or {}).items())


def _fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def default_calibration_dir() -> Path | None:
    """``$AIOTBENCH_CALIBRATION``. The package knows no data folder of its own: scripts/main-job.sh passes the
    shared samples (and the evaluation set to exclude) explicitly."""
    env = os.environ.get("AIOTBENCH_CALIBRATION")
    return Path(env) if env else None


def run_step(job: dict, log: Path, timeout: float) -> StepResult:
    """Run one export step in a fresh interpreter; its output goes to ``log``; peak RSS via wait4."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aiotbench-zoo-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps(job))
        env = dict(os.environ)
        pkg_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("PYTHONWARNINGS", "ignore")
        t0 = time.perf_counter()
        with open(log, "w") as fh:
            # Its own process group: on Ctrl-C/SIGTERM/timeout the whole exporter (and whatever it started) is
            # killed before the temp folder goes, so nothing keeps writing into the zoo.
            proc = subprocess.Popen([sys.executable, "-m", "pytest_aiotbench.zoo.exporters", str(job_path),
                                     str(result_path)], stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)
            timed_out = threading.Event()

            def _kill() -> None:
                timed_out.set()
                _kill_group(proc)

            timer = threading.Timer(timeout, _kill)
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            except BaseException:  # KeyboardInterrupt (SIGINT, or SIGTERM via _terminate_as_interrupt)
                _kill_group(proc)
                os.waitpid(proc.pid, 0)
                proc.returncode = -signal.SIGKILL
                raise
            finally:
                timer.cancel()
            proc.returncode = code = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        peak_mb = usage.ru_maxrss / 1024.0  # Linux: kilobytes
        try:
            result = json.loads(result_path.read_text())
        except (OSError, ValueError):
            result = None
    if result is None:
        why = f"timed out after {timeout:.0f} s" if timed_out.is_set() else (
            f"killed by signal {-code}" if code < 0 else f"exited {code} without a result")
        return StepResult(False, {}, f"export process {why} (log: {log})", seconds, peak_mb, code, log)
    return StepResult(bool(result.get("ok")), result.get("info") or {}, result.get("error"), seconds, peak_mb,
                      code, log)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the exporter's process group (it leads it: start_new_session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _remove_partials(out: Path) -> list[Path]:
    """Artifacts left half-written (``<model>/.<file>.partial``) by a build that was killed: only a build holding
    the folder's lock runs this, so none of them is being written."""
    found = [p for p in out.glob("*/.*.partial") if p.is_file()]
    for p in found:
        p.unlink(missing_ok=True)
    return found


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM ends the build as Ctrl-C does (children killed, temp files removed, exit 130) instead of leaving
    the exporter running, orphaned, with its temp folder."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _locked(out: Path):
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".zoo.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BuildError(f"another `aiotbench zoo build` is writing to {out}") from None
        yield


class Builder:
    def __init__(self, options: BuildOptions):
        self.o = options
        self.out = Path(options.out)
        self.manifest_path = self.out / mf.MANIFEST_NAME
        self.tools = tool_versions()
        self.failures: list[str] = []
        self.built: list[str] = []
        self.skipped: list[str] = []
        self.not_installed: list[str] = []  # optional variants whose toolchain this interpreter lacks

    # -- planning ------------------------------------------------------------------------------------------------
    def _models(self) -> list[dict]:
        o = self.o
        if o.torchscript:
            return [_ts_model_dict(o)]
        if weights_kind(o) == "state_dict":
            return [_state_dict_model_dict(o)]
        if o.arch:
            raise BuildError("--arch picks the builder for your own weights: use it with --weights FILE.pth")
        names = o.models or list(MODELS)
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            raise BuildError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
        if o.input_size is not None and o.input_size < 32:
            raise BuildError("--input-size must be at least 32")
        models = [_model_dict(MODELS[n], o.input_size) for n in names]
        for m in models:
            if m["builder"] == "inception_v3" and m["input_size"] < 75:
                raise BuildError("inception_v3 needs an input size of at least 75")
        if o.weights == "pretrained":
            self._fetch_missing_checkpoints(names)
        return models

    def _fetch_missing_checkpoints(self, names: list[str]) -> None:
        """Download (hash-checked, into the torch hub cache) the pretrained checkpoints not there yet, unless
        offline: then, as on any failure, a clear exit 2 and nothing built (never a silent random fallback)."""
        missing = [n for n in names if not (hub_checkpoint_dir() / MODELS[n].checkpoint).is_file()]
        if not missing:
            return
        paths = ", ".join(str(hub_checkpoint_dir() / MODELS[n].checkpoint) for n in missing)
        fix = (f"copy the checkpoints into {hub_checkpoint_dir()}, point --weights-mirror at a server that has "
               f"them, or build with --weights random (artifacts are then marked weights: random)")
        if wt.offline_requested(self.o.offline):
            raise BuildError(f"pretrained torchvision weights not available offline (missing {paths}; "
                             f"--offline or {wt.OFFLINE_ENV} forbids downloading): {fix}")
        mirror = wt.mirror_from(self.o.weights_mirror)
        for n in missing:
            m = MODELS[n]
            try:
                wt.fetch(wt.checkpoint_url(m.weights_enum, m.checkpoint, mirror), hub_checkpoint_dir() / m.checkpoint)
            except (wt.FetchError, ImportError) as exc:  # ImportError: no torchvision to ask for the URL
                raise BuildError(f"pretrained weights for {n} could not be downloaded: {exc}; {fix}") from None

    def _calibration_plan(self) -> tuple[dict | None, str | None]:
        from .calibration import CalibrationError, plan

        o = self.o
        folder = o.calibration or default_calibration_dir()
        if folder is None:
            return None, ("no calibration images: pass --calibration DIR (images that are not in your evaluation "
                          "set) or set AIOTBENCH_CALIBRATION")
        excludes = list(o.exclude)
        try:
            return plan(folder, o.calibration_count, o.seed, excludes), None
        except CalibrationError as exc:
            return None, str(exc)

    # -- helpers -------------------------------------------------------------------------------------------------
    def _tools_for(self, step: str) -> dict:
        return {k: self.tools.get(k) for k in STEP_TOOLS[step]}

    def _record(self, data: dict) -> None:
        data["schema"] = mf.SCHEMA_ID
        data["updated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        data["tools"] = self.tools
        mf.write(self.manifest_path, data)

    # -- the build -----------------------------------------------------------------------------------------------
    def run(self) -> int:
        o = self.o
        for v in o.variants:
            if v not in VARIANTS:
                raise BuildError(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
        mf.read(self.manifest_path)  # a foreign or corrupt manifest stops the build before any work (exit 2)
        models = self._models()
        cal_plan, cal_error = self._calibration_plan()
        with _locked(self.out):
            data = mf.read(self.manifest_path)
            data.setdefault("models", {})
            for stale in _remove_partials(self.out):
                _say(f"removed {stale}, left half-written by an interrupted build")
            t_all = time.perf_counter()
            for model in models:
                self._build_model(model, data, cal_plan, cal_error)
            write_catalog(self.out, data)
            not_installed = (f", {len(self.not_installed)} skipped (toolchain not installed)"
                             if self.not_installed else "")
            _say(f"done in {time.perf_counter() - t_all:.0f} s: {len(self.built)} built, {len(self.skipped)} up to "
                 f"date{not_installed}, {len(self.failures)} failed"
                 + (f"; manifest {self.manifest_path}" if self.manifest_path.is_file() else "; nothing recorded"))
        if self.failures:
            _say("failures:")
            for f in self.failures:
                _say(f"  {f}")
            return EXIT_FAILED
        return EXIT_OK

    def _build_model(self, model: dict, data: dict, cal_plan: dict | None, cal_error: str | None) -> None:
        o, name = self.o, model["name"]
        weights = weights_kind(o)
        src_dir = self.out / SOURCES_DIR
        src_dir.mkdir(parents=True, exist_ok=True)
        logs = self.out / LOGS_DIR
        # 1. the source weights: every artifact of this model is exported from this one file
        if weights == "torchscript":
            source_path = Path(o.torchscript).resolve()
        else:
            source_path = src_dir / f"{name}-{weights}-{model['input_size']}.pt"
        source_key = {"weights": weights, "model": {k: model[k] for k in ("builder", "input_size", "num_classes")},
                      "tools": self._tools_for("source")}
        if weights == "random":
            source_key.update(seed=o.seed, bn_images=o.bn_images,
                              calibration=_fingerprint(cal_plan["files"]) if cal_plan else None)
        if weights == "torchscript":
            source_key["file_sha256"] = mf.file_sha256(source_path)
        if weights == "state_dict":
            source_key["file_sha256"] = mf.file_sha256(Path(o.weights))
        old = data["models"].get(name) or {}
        src = old.get("source") or {}
        fresh = (not o.force and src.get("key") == _fingerprint(source_key) and source_path.is_file()
                 and (weights == "torchscript" or src.get("file_sha256") == mf.file_sha256(source_path)))
        if fresh:
            _say(f"{name}: source weights up to date ({src['info'].get('weights')})")
        else:
            _say(f"{name}: preparing {weights} weights ...")
            job = {"step": "source", "model": model, "weights": weights, "seed": o.seed, "bn_images": o.bn_images,
                   "out": str(source_path), "torchscript": str(source_path) if weights == "torchscript" else None,
                   "state_dict": str(Path(o.weights).resolve()) if weights == "state_dict" else None,
                   "calibration": cal_plan}  # random: BatchNorm statistics; all: an output sanity probe
            res = run_step(job, logs / f"{name}-source.log", o.timeout)
            if not res.ok:
                if weights != "torchscript":  # weights that failed their health check are not kept as a source
                    source_path.unlink(missing_ok=True)
                error = f"{source_path}: {res.error}" if weights == "torchscript" else res.error  # name the file
                self.failures.append(f"{name} source: {error}")
                _say(f"{name}: source FAILED: {error}")
                if res.code == 3:  # pretrained missing (the parent's own check normally catches this first)
                    raise BuildError(res.error or "pretrained weights not available")
                return
            src = {"key": _fingerprint(source_key), "info": res.info, "seconds": round(res.seconds, 2),
                   "peak_memory_mb": round(res.peak_mb, 1), "path": str(source_path) if weights == "torchscript" else os.path.relpath(source_path, self.out),
                   "file_sha256": mf.file_sha256(source_path)}
            _say(f"{name}: source ready in {res.seconds:.1f} s, peak {res.peak_mb:.0f} MB")
        info = src["info"]
        flops = info.get("flops")
        entry = {k: model[k] for k in ("input_size", "resize", "color", "mean", "std", "num_classes", "background",
                                       "reference_top1", "reference_top5", "canonical")}
        entry.update(source=src, weights=info["weights"], params=info.get("params") or model.get("params"),
                     flops=flops, gflops=model.get("gflops") if model.get("gflops") else (
                         round(flops / 2e9, 3) if flops else None),
                     arch=model.get("builder"))
        if weights == "random":
            entry["reference_top1"] = entry["reference_top5"] = None  # random weights have no reference accuracy
        data["models"][name] = entry
        self._record(data)
        # 2. the artifacts
        ok_files: dict[str, Path] = {}
        for variant in self.o.variants:
            key = _file_name(name, variant)
            path = self.out / key
            step = VARIANT_STEP[variant]
            framework, quant, layout, _, _ = VARIANTS[variant]
            recipe = {"variant": variant, "input_size": model["input_size"], "tools": self._tools_for(step),
                      "input": {k: model[k] for k in ("resize", "mean", "std", "color")}}
            if variant == "onnx":
                recipe["opset"] = 17
            if variant in ("pte", "fp32"):
                recipe["xnnpack_rewrites"] = 1  # zoo/rewrites.py revision: files exported before it are rebuilt
            if variant == "int8":
                recipe.update(calibration=_fingerprint(cal_plan) if cal_plan else None,
                              margin=o.calibration_margin, resize=model["resize"])
            if step == "quant":
                fp32_key = _file_name(name, "fp32")
                recipe["fp32_sha256"] = (data["files"].get(fp32_key) or {}).get("sha256")
            prev = data["files"].get(key) or {}
            label = f"{name} {variant:<7} {Path(key).name}"
            if variant in OPTIONAL_VARIANTS and not _importable(OPTIONAL_VARIANTS[variant][0]):
                module, fix = OPTIONAL_VARIANTS[variant]
                # Not a failure. An artifact built earlier (by an interpreter that had the toolchain) stays listed
                # while it comes from the current source weights; from other weights it must not be benchmarked.
                _say(f"{label}: skipped: {module.split('.')[0]} is not installed in {sys.executable}: {fix}")
                self.not_installed.append(key)
                if prev and prev.get("source_sha256") != info["source_sha256"]:
                    data["files"].pop(key, None)
                    self._record(data)
                    _say(f"{label}: the earlier {Path(key).name} came from other weights: dropped from the manifest")
                continue
            if (not o.force and path.is_file() and prev.get("source_sha256") == info["source_sha256"]
                    and prev.get("recipe") == _fingerprint(recipe) and prev.get("sha256") == mf.file_sha256(path)
                    and _companions_intact(path, prev)):
                _say(f"{label}: up to date")
                self.skipped.append(key)
                ok_files[variant] = path
                continue
            if step == "quant" and "fp32" not in ok_files:
                fp32_path = self.out / _file_name(name, "fp32")
                fp32_entry = data["files"].get(_file_name(name, "fp32")) or {}
                if not (fp32_path.is_file() and fp32_entry.get("source_sha256") == info["source_sha256"]
                        and fp32_entry.get("sha256") == mf.file_sha256(fp32_path)):
                    self._fail(label, key, data, "needs the fp32 TFLite of the same weights, which is not built")
                    continue
                ok_files["fp32"] = fp32_path
            if variant == "int8" and cal_plan is None:
                self._fail(label, key, data, cal_error or "no calibration images")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp_out = path.with_name(f".{path.name}.partial")
            job = {"step": step, "model": model, "weights": weights, "source_path": str(source_path),
                   "out": str(tmp_out), "quant": quant, "opset": 17,
                   "fp32_path": str(ok_files.get("fp32", self.out / _file_name(name, "fp32"))),
                   "calibration": cal_plan if variant == "int8" else None,
                   "calibration_margin": o.calibration_margin}
            _say(f"{label}: exporting ...")
            try:
                res = run_step(job, self.out / LOGS_DIR / f"{name}-{variant}.log", o.timeout)
            except BaseException:  # interrupted: the half-written file must not survive
                tmp_out.unlink(missing_ok=True)
                raise
            if not res.ok or not tmp_out.is_file():
                tmp_out.unlink(missing_ok=True)
                self._fail(label, key, data, res.error or "no file written", res)
                continue
            os.replace(tmp_out, path)
            ok_files[variant] = path
            file_entry = {
                "model": name, "variant": variant, "framework": framework, "quant": quant, "layout": layout,
                "sha256": mf.file_sha256(path), "size": path.stat().st_size, "weights": info["weights"],
                "source": info.get("source"), "source_sha256": info["source_sha256"],
                "tools": self._tools_for(step), "recipe": _fingerprint(recipe),
                "input": {"size": model["input_size"], "resize": model["resize"], "layout": layout,
                          "color": model["color"], "mean": model["mean"], "std": model["std"],
                          "dtype": "int8" if variant == "int8" else "float32",
                          "num_classes": model["num_classes"], "background": model["background"]},
                "params": entry["params"], "flops": flops, "gflops": entry["gflops"],
                "reference_top1": entry["reference_top1"], "reference_top5": entry["reference_top5"],
                "export_seconds": round(res.seconds, 2), "peak_memory_mb": round(res.peak_mb, 1),
                "built": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "details": res.info,
                # ops inside/outside the accelerated delegate and the exact rewrites that kept them in (issue 13)
                "coverage": res.info.get("coverage"), "rewrites": res.info.get("rewrites"),
            }
            if res.info.get("companions"):  # weights beside the main file (.ncnn.bin, OpenVINO .bin): hashed too
                file_entry["companions"] = {n: {"sha256": mf.file_sha256(path.parent / n),
                                                "size": (path.parent / n).stat().st_size}
                                            for n in res.info["companions"]}
            if variant == "int8":
                file_entry["calibration"] = cal_plan
            data["files"][key] = file_entry
            self._record(data)
            self.built.append(key)
            size = path.stat().st_size + sum(c["size"] for c in (file_entry.get("companions") or {}).values())
            _say(f"{label}: ok in {res.seconds:.1f} s, peak {res.peak_mb:.0f} MB, {size / 1e6:.1f} MB")

    def _fail(self, label: str, key: str, data: dict, why: str, res: StepResult | None = None) -> None:
        where = f" (log: {res.log})" if res is not None else ""
        self.failures.append(f"{key}: {why}{where}")
        _say(f"{label}: FAILED: {why}{where}")
        data["files"].pop(key, None)  # a stale entry must not vouch for a file this build could not make
        self._record(data)


# -- catalog ---------------------------------------------------------------------------------------------------


def catalog_text(models: list[dict], files: dict[str, dict[str, str]], header: str) -> str:
    """``models``: model tables (name, input_size, ...); ``files``: model name -> {variant: relative file}."""
    lines = [header.rstrip(), ""]
    for m in models:
        lines.append("[[model]]")
        for k in ("name", "arch", "input_size", "resize", "color", "mean", "std", "num_classes", "background",
                  "reference_top1", "reference_top5", "params", "gflops", "weights", "canonical"):
            if m.get(k) is not None:
                lines.append(f"{k} = {toml_value(m[k])}")
        ref = m.get("reference_top1")
        for variant, rel in files.get(m["name"], {}).items():
            framework, quant, layout, _, slack = VARIANTS[variant]
            lines += ["  [[model.variant]]", f"  framework = {toml_value(framework)}",
                      f"  quant = {toml_value(quant)}", f"  layout = {toml_value(layout)}",
                      f"  file = {toml_value(rel)}"]
            if variant in VARIANT_OPTIONS:
                lines.append(f"  options = {toml_value(VARIANT_OPTIONS[variant])}")
            if ref is not None and variant in RELATIVE_THRESHOLDS and RELATIVE_REFERENCE in files[m["name"]]:
                lines.append(f"  min_top1 = {toml_value(RELATIVE_THRESHOLDS[variant])}")
            elif ref is not None:
                lines.append(f"  min_top1 = {round(ref - slack, 3)!r}")
            if m.get("canonical") and variant in OPTIONAL_VARIANTS:
                lines.append("  canonical = false  # optional toolchain: the device score does not need it")
        lines.append("")
    return "\n".join(lines)


def canonical_catalog_text() -> str:
    """The committed ``models/aiotbench.toml`` (paths relative to ``models/``, artifacts under ``models/zoo/``)."""
    models = []
    for m in MODELS.values():
        d = _model_dict(m, None)
        d["arch"] = f"torchvision.models.{m.builder}"
        models.append(d)
    files = {m.name: {v: "zoo/" + _file_name(m.name, v) for v in BUILD_VARIANTS} for m in MODELS.values()}
    header = ('# The canonical AIoTBench models. Build the files with `aiotbench zoo build` (writes models/zoo/\n'
              '# and models/zoo/manifest.json, whose weights tag -- pretrained, random or state_dict:<sha256> --\n'
              '# the plugin reports per case). Reference accuracy: torchvision\'s documented ImageNet-1k numbers for\n'
              '# IMAGENET1K_V1 weights; gflops as torchvision counts them (multiply-adds). min_top1: float cases\n'
              '# reference minus 0.06 (3 standard errors on 500 images); fp16/dynamic/int8 99/98/97 % of the same\n'
              '# run\'s tflite-fp32 top-1 (relative, see pytest_aiotbench/thresholds.py). The executorch (.pte), ncnn,\n'
              '# mnn and openvino cases need optional extras to build and are not canonical. Generated by\n'
              '# pytest_aiotbench.zoo.build.canonical_catalog_text().')
    return catalog_text(models, files, header)


def write_catalog(out: Path, data: dict) -> Path | None:
    """``<out>/catalog.toml``: every model of this folder's manifest whose files exist, paths relative to ``out``."""
    models, files = [], {}
    for name, m in sorted(data.get("models", {}).items()):
        rels = {}
        for variant in VARIANTS:
            rel = _file_name(name, variant)
            if rel in data["files"] and (out / rel).is_file():
                rels[variant] = rel
        if not rels:
            continue
        models.append({"name": name, **{k: v for k, v in m.items() if k not in ("source", "flops", "canonical")},
                       "canonical": False})
        files[name] = rels
    if not models:
        return None
    path = out / "catalog.toml"
    text = catalog_text(models, files, "# Written by `aiotbench zoo build` for the artifacts in this folder "
                                       "(see manifest.json). Paths are relative to this file.")
    path.write_text(text)
    return path


def build(options: BuildOptions) -> int:
    try:
        with _terminate_as_interrupt():
            return Builder(options).run()
    except (BuildError, mf.ManifestMismatch) as exc:
        print(f"aiotbench zoo build: {exc}", file=sys.stderr)
        return EXIT_USAGE
