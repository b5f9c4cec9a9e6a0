"""One job on a remote device, whatever carries it (adb, ssh): the transports are thin adapters behind
``Transport``; everything about a job lives here.

A job: check the device (python, free space) and create a private work directory; push the runner bundle, the model
and the packed crops (ONE ``pixels.npy``, or for a large set ``pixels-K.npy`` files of ``PUSH_BYTES``, each pushed
when the runner asks for it between two chunks, never while it times, so the device holds one at a time; again
for another pass in sustained mode); run the runner once under the job's deadline (it times every infer() on the
device);
pull the result into a temporary file, validate it against the job, then rename it; remove the work directory,
whatever happened. Any failure is a ``TargetError`` with one line naming the device and the step.
Every string that reaches a device shell goes through ``shlex.quote``.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from ..run.emulation import FACTS_PROBE, mark_facts
from ..frameworks.base import FrameworkUnavailable, ModelLoadError
from ..errors import one_line
from .device.protocol import ExitCode, ProtocolError, job_spec, read_result
from ..run.job import Job, Measurement, Timing
from .base import TargetError, register_open, unregister_open
from .bundle import build_runner_bundle
from ..inputs.pixels import CHUNK_ENV, ArrivingPixels, PixelStore, as_pixels, chunk_images, write_store
from ..files import file_sha256

DEFAULT_DEADLINE_S = 900.0  # one whole job (preflight, pushes, run, pull) with one file of crops; per file with more
DEFAULT_IO_TIMEOUT_S = 30.0  # any single transport call that hears nothing for this long: frozen
CLEANUP_TIMEOUT_S = 15.0
SPACE_MARGIN_BYTES = 4 * 1024 * 1024
PUSH_BYTES = 64 * 1024 * 1024  # crops per pushed file: a larger set goes in several, one on the device at a time
PACK_PIECE_BYTES = 4 * 1024 * 1024  # crops read at once while the host writes a file to push
REMOTE_OPTIONS = frozenset({"python", "workdir_base", "deadline_s", "io_timeout_s", "keep_results"})  # RemoteTarget's
WANT_WAIT_S = 5  # one shell call waits this long on the device for the runner to ask for the next file


class TransportError(TargetError):
    """The link to the device failed: disconnected, timed out, refused. One line."""


class Transport(Protocol):
    name: str  # "adb:SERIAL", "ssh://user@host:port": prefixes every error line

    def push(self, local: Path, remote: str) -> None: ...

    def pull(self, remote: str, local: Path) -> None:
        """Write the remote file to ``local`` (which may be left truncated on failure: the caller validates)."""

    def shell(self, command: str, timeout: float) -> tuple[int, str, str]:
        """Run ``command`` with the device's /bin/sh; (exit code, stdout, stderr). TransportError past timeout."""

    def reconnect(self, timeout: float) -> bool:
        """Best effort to get the link back (adb connect, new ssh session) so a failed job can still clean up."""

    def close(self) -> None: ...


# Facts in one round trip; every probe tolerates absence (getprop only on Android, device-tree only on boards).
FACTS_SCRIPT = r"""
p() { command -v getprop >/dev/null 2>&1 && getprop "$1"; }
echo "model=$(p ro.product.model)"
echo "manufacturer=$(p ro.product.manufacturer)"
echo "abi=$(p ro.product.cpu.abi)"
echo "android_release=$(p ro.build.version.release)"
echo "sdk=$(p ro.build.version.sdk)"
echo "soc=$(p ro.soc.model)"
echo "hardware=$(p ro.hardware)"
echo "machine=$(uname -m 2>/dev/null)"
echo "kernel=$(uname -sr 2>/dev/null)"
[ -r /etc/os-release ] && echo "os=$(. /etc/os-release; echo "$PRETTY_NAME")"
[ -r /proc/device-tree/model ] && echo "board=$(tr -d '\000' < /proc/device-tree/model)"
echo "cores=$(grep -c '^processor' /proc/cpuinfo 2>/dev/null)"
echo "cpu=$(grep -m1 -E '^(model name|Hardware|cpu model)' /proc/cpuinfo 2>/dev/null | cut -d: -f2-)"
echo "governor=$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null)"
echo "max_freq_khz=$(cat /sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq 2>/dev/null)"
""" + FACTS_PROBE


def parse_facts(text: str) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        value = value.strip()
        if sep and value:
            facts[key.strip()] = int(value) if key in ("cores", "sdk", "max_freq_khz") and value.isdigit() else value
    if "model" not in facts and "board" in facts:
        facts["model"] = facts["board"]
    facts["abi"] = facts.get("abi") or facts.get("machine")
    if "android_release" in facts:  # Android has no os-release; its release and SDK are what matter
        facts["os"] = f"Android {facts['android_release']}" + (f" (SDK {facts['sdk']})" if "sdk" in facts else "")
    facts["os"] = facts.get("os") or facts.get("kernel")
    mark_facts(facts)
    return {k: v for k, v in facts.items() if v is not None}


RESERVED_NAMES = ("runner.pyz", "job.json", "job.json.part", "result.json", "runner.pid", "pixels.npy")


def job_model_files(job: Job) -> list[Path]:
    """The model file first, then the files its framework loads beside it (``companions``: ncnn's .bin, OpenVINO's
    IR weights), which travel with it to the device. A missing one, or a name the job's own files use, is a
    ModelLoadError (the case fails in one line, before anything is pushed)."""
    from ..frameworks import UnknownFramework, get_framework

    model = Path(job.model_file)
    try:
        companions = getattr(get_framework(job.framework), "companions", None)
    except UnknownFramework:
        companions = None
    files = [model, *(Path(p) for p in (companions(str(model)) if companions else []))]
    for path in files:
        if path.name in RESERVED_NAMES or path.name.startswith(("pixels-", "want-")):
            raise ModelLoadError(f"{path.name}: a device job cannot push a model file of that name (the runner's own "
                                 "files use it): rename it")
        if path != model and not path.is_file():
            raise ModelLoadError(f"{model.name}: {path.name}, which {job.framework} loads beside it, is missing "
                                 f"(expected at {path})")
    if len({p.name for p in files}) != len(files):
        raise ModelLoadError(f"{model.name}: its companion files {[p.name for p in files[1:]]} repeat a name")
    return files


def framework_ref(name: str) -> str | None:
    """``module:attr`` of the framework's entry point, so the runner imports it directly (no metadata there)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="aiotbench.frameworks"):
        if ep.name == name:
            return ep.value
    return None


# -- the job ---------------------------------------------------------------------------------------------------------
class RemoteTarget:
    """A device reached through a Transport, running the pushed Python runner."""

    def __init__(self, name: str, connect: Callable[[], Transport], *, workdir_base: str,
                 python: str | None = "python3", deadline_s: float | None = None,
                 io_timeout_s: float = DEFAULT_IO_TIMEOUT_S, keep_results: Path | None = None):
        self.name = name
        self._connect = connect  # opens the link; called on first use, never by the constructor
        self._transport: Transport | None = None
        self.workdir_base = workdir_base.rstrip("/") or "/tmp"
        self.python = python
        # No deadline given: DEFAULT_DEADLINE_S per file of crops the job pushes (a job's work grows with its
        # dataset: 50,000 images are 37 files at 128 px); a given one is the whole job's, whatever its size.
        self.deadline_s = DEFAULT_DEADLINE_S if deadline_s is None else deadline_s
        self.deadline_per_file = deadline_s is None
        self.job_deadline_s = self.deadline_s  # the job in progress's (what the error lines name)
        self.io_timeout_s = io_timeout_s
        self.keep_results = Path(keep_results) if keep_results else None
        self.push_bytes = PUSH_BYTES
        self._facts: dict[str, Any] | None = None
        self._stale: list[str] = []  # work dirs a failed job could not remove: removed at the next contact

    @property
    def transport(self) -> Transport:
        """The link, connected on first use. A failure is a TransportError naming the device."""
        if self._transport is None:
            try:
                self._transport = self._connect()
            except TargetError as exc:
                raise TransportError(f"{self.name}: {exc}") from None
            register_open(self)
        return self._transport

    # -- facts -------------------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        if self._facts is None:
            code, out, err = self._shell("read device facts", FACTS_SCRIPT, self.io_timeout_s)
            self._facts = {"target": self.name, **parse_facts(out)}
        return dict(self._facts)

    # -- one job -----------------------------------------------------------------------------------------------
    def run(self, job: Job, timing: Timing) -> Measurement:
        measurement = self.execute(job)
        if measurement.offline is not None:  # offline: the time per image at the device's full throughput
            off = measurement.offline
            timing.record([off["wall_s"] / off["images"]] if off.get("images") else [])
        else:
            timing.record(measurement.latencies_s)  # device-side timings feed the same stats as host ones
        return measurement

    def execute(self, job: Job) -> Measurement:
        # A sustained run and a cooldown take their own (bounded) time on top of what the deadline is for.
        cool = job.cooldown or {}
        extra = (job.sustain_s or 0.0) + float(cool.get("seconds", cool.get("max_s", 0.0)))
        files_of_crops = -(-len(as_pixels(job.pixels)) // self.push_images(job))
        self.job_deadline_s = self.deadline_s * (max(1, files_of_crops) if self.deadline_per_file else 1)
        deadline = time.monotonic() + self.job_deadline_s + extra
        job_id = secrets.token_hex(8)
        workdir = f"{self.workdir_base}/aiotbench-{job_id}"
        self._remove_stale()
        with tempfile.TemporaryDirectory(prefix="aiotbench-job-") as tmp:
            local = Path(tmp)
            files, feed = self._pack(job, job_id, local)
            try:
                # The device holds the runner, the model and one file of crops at a time (the largest, the first).
                self._preflight(workdir, sum(f.stat().st_size for f in files.values()), deadline)
                for remote_name, path in files.items():
                    self._step(f"push {remote_name}", deadline, self.transport.push, path, f"{workdir}/{remote_name}")
                self._run_runner(workdir, files, deadline, feed, model_name=Path(job.model_file).name)
                return self._fetch_result(job, job_id, workdir, local, deadline)
            finally:  # also after a failed preflight: its mkdir may have run before the link broke
                self._cleanup(workdir)

    def push_images(self, job: Job) -> int:
        """Images per pushed file of crops: ``push_bytes`` of them, or ``$AIOTBENCH_CHUNK_IMAGES``."""
        size = job.preprocess.input_size
        if os.environ.get(CHUNK_ENV, "").strip():
            return chunk_images(size)
        return max(1, self.push_bytes // (size * size * 3))

    def _pack(self, job: Job, job_id: str, local: Path):
        """Remote name -> local file (the model and its companions keep their own names, quoted everywhere they
        go), and the files of crops still to push while the runner works (None when the crops go in one file)."""
        model_files = job_model_files(job)
        sums = {path.name: file_sha256(path) for path in model_files}
        pixels = as_pixels(job.pixels)
        per_file = self.push_images(job)
        feed = None
        if len(pixels) <= per_file:
            if isinstance(pixels, PixelStore):  # the session's packed crops are one .npy already: pushed as they are
                first, name = pixels.path, "pixels.npy"
            else:
                first, name = local / "pixels.npy", "pixels.npy"
                np.save(first, np.ascontiguousarray(pixels.read(0, len(pixels))), allow_pickle=False)
            spec = job_spec(job, job_id, framework_ref(job.framework), files=sums)
        else:  # several files, pushed one at a time when the runner asks for the next (between two chunks)
            bounds = [(s, min(len(pixels), s + per_file)) for s in range(0, len(pixels), per_file)]
            name = ArrivingPixels.name(0)
            first = _pack_part(pixels, *bounds[0], local / name)
            feed = (pixels, bounds, bool(job.sustain_s))  # sustained mode: more passes ask for the files again
            spec = job_spec(job, job_id, framework_ref(job.framework), [b - a for a, b in bounds], files=sums)
        spec_file = local / "job.json"
        spec_file.write_text(json.dumps(spec))
        return {"runner.pyz": build_runner_bundle(), **{path.name: path for path in model_files},
                name: first, "job.json": spec_file}, feed

    def _feed(self, workdir: str, feed, local: Path, deadline: float, running) -> None:
        """Push file K of the crops whenever the runner has written ``want-K`` (it waits, untimed, between two
        chunks): in order for one pass (until each is pushed), and in sustained mode, which cycles the dataset,
        again from the first until the runner has ended (the device still holds one file at a time). The request
        is removed before the file appears under its name, which happens through a temporary name (a file the
        runner sees is whole). One shell call waits on the device for up to WANT_WAIT_S."""
        pixels, bounds, again = feed
        q = shlex.quote
        pushed: set[int] = set()
        while True:
            if not running():
                return  # the runner ended (done, or failed: its exit code says why)
            if not again and len(pushed) == len(bounds) - 1:
                return  # one pass: every file it asks for is there (no more polling while it times)
            left = self._remaining(deadline, "push pixels")
            wait = max(1, min(WANT_WAIT_S, int(left)))
            code, out, _ = self._shell("push pixels", f"cd {q(workdir)} && i=0; while [ $i -lt {wait * 10} ]; do "
                                       "for f in want-*; do [ -e \"$f\" ] && echo \"$f\" && exit 0; done; "
                                       "sleep 0.1; i=$((i+1)); done; exit 1", min(left, wait + self.io_timeout_s))
            if code != 0:
                continue  # nothing asked for yet
            asked = out.split()[0] if out.split() else ""
            k = int(asked[5:]) if asked[5:].isdigit() else -1
            if not 0 <= k < len(bounds):
                raise TargetError(f"{self.name}: push pixels: the runner asked for {asked!r}, the job has "
                                  f"{len(bounds)} files")
            name = ArrivingPixels.name(k)
            part = _pack_part(pixels, *bounds[k], local / name)
            try:
                self._step(f"push {name}", deadline, self.transport.push, part, f"{workdir}/{name}.part")
            finally:
                part.unlink(missing_ok=True)
            code, out, err = self._shell(f"push {name}", f"cd {q(workdir)} && rm -f {q(asked)} && "
                                         f"mv {q(name + '.part')} {q(name)}", self._remaining(deadline, f"push {name}"))
            if code != 0:
                raise TargetError(f"{self.name}: push {name}: exit {code}: {one_line(err or out, last=True)}")
            pushed.add(k)

    def _preflight(self, workdir: str, payload_bytes: int, deadline: float) -> None:
        """One round trip: python present, free space, private work dir created."""
        q = shlex.quote
        check_python = (f"command -v {q(self.python)} >/dev/null 2>&1 || exit {int(ExitCode.NO_PYTHON)}; "
                        if self.python else "")
        script = (f"{check_python}"
                  f"df -k {q(self.workdir_base)} | tail -n 1; mkdir -m 700 {q(workdir)}")
        code, out, err = self._shell("check device", script, self._remaining(deadline, "check device"))
        if code == ExitCode.NO_PYTHON:
            raise TargetError(f"{self.name}: check device: {self.python!r} not found on the device (install Python "
                              "with numpy and the runtime, or use the benchmark_model runner)")
        if code != 0:
            raise TargetError(f"{self.name}: check device: exit {code}: {one_line(err or out, last=True)}")
        free = _df_available_bytes(out)
        need = payload_bytes + SPACE_MARGIN_BYTES
        if free is not None and free < need:
            raise TargetError(f"{self.name}: check device: only {free / 1e6:.1f} MB free in {self.workdir_base}, "
                              f"the job needs {need / 1e6:.1f} MB")

    def _run_fed(self, command: str, remaining: float, workdir: str, feed, files, deadline: float):
        """The runner's shell call in a thread; this thread pushes the files it asks for meanwhile."""
        import threading

        done: dict = {}

        def run():
            try:
                done["result"] = self.transport.shell(command, remaining + 2)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                done["error"] = exc

        thread = threading.Thread(target=run, name="aiotbench-runner", daemon=True)
        thread.start()
        try:
            self._feed(workdir, feed, Path(files["job.json"]).parent, deadline, thread.is_alive)
        except BaseException:
            self._cleanup(workdir)  # kills the runner, so its shell call returns
            thread.join(CLEANUP_TIMEOUT_S)
            raise
        thread.join(max(0.0, deadline - time.monotonic()) + 2)
        if thread.is_alive():
            raise TargetError("no answer from the runner")
        if "error" in done:
            raise done["error"]
        return done["result"]

    def runner_command(self, workdir: str, model_name: str, timeout_s: int, pixels: str = "pixels.npy") -> str:
        q = shlex.quote
        run = (f"{q(self.python)} runner.pyz --job job.json --model {q(model_name)} --pixels {q(pixels)} "
               f"--out result.json --pid-file runner.pid")
        # The device enforces the deadline too (toybox and coreutils have timeout): nothing outlives the job.
        # HOME/TMPDIR/caches inside the work dir: whatever a runtime writes there goes away with it.
        env = f"HOME={q(workdir)} TMPDIR={q(workdir)} XDG_CACHE_HOME={q(workdir + '/.cache')}"
        return (f"cd {q(workdir)} && export {env} && if command -v timeout >/dev/null 2>&1; then exec timeout -s KILL {timeout_s} "
                f"{run}; else exec {run}; fi")

    def _run_runner(self, workdir: str, files: dict[str, Path], deadline: float, feed=None,
                    model_name: str | None = None) -> None:
        model_name = model_name or [n for n in files if n not in ("runner.pyz", "job.json")
                                    and not n.startswith("pixels")][0]
        remaining = self._remaining(deadline, "run")
        pixels_name = "pixels.npy" if "pixels.npy" in files else ArrivingPixels.name(0)
        command = self.runner_command(workdir, model_name, max(1, int(remaining)), pixels_name)
        try:
            if feed is None:
                code, out, err = self.transport.shell(command, remaining + 2)
            else:  # the runner runs while the next files are pushed, each when it asks for it
                code, out, err = self._run_fed(command, remaining, workdir, feed, files, deadline)
        except TargetError as exc:
            if time.monotonic() >= deadline:
                raise TargetError(f"{self.name}: run: job deadline of {self.job_deadline_s:.0f}s exceeded "
                                  "(device frozen or runner hung)") from None
            raise TargetError(f"{self.name}: run: {exc}") from None
        if code == ExitCode.RUNTIME:  # missing there: a skip, as on the host (--aiotbench-strict makes it fail)
            raise FrameworkUnavailable("device", f"missing on {self.name}: {one_line(err or out, last=True)}")
        if code != 0:
            meaning = ExitCode.meaning(code)
            raise TargetError(f"{self.name}: run: exit {code} ({meaning}): {one_line(err or out, last=True)}")

    def _fetch_result(self, job: Job, job_id: str, workdir: str, local: Path, deadline: float) -> Measurement:
        part = local / "result.json.part"
        self._step("pull result", deadline, self.transport.pull, f"{workdir}/result.json", part)
        try:
            m = read_result(part, job_id, len(as_pixels(job.pixels)), job.top_k, job.num_classes)
        except ProtocolError as exc:
            raise TargetError(f"{self.name}: pull result: {exc}") from None
        final = local / "result.json"
        part.replace(final)  # only a validated file ever carries the result's name
        if self.keep_results:
            self.keep_results.mkdir(parents=True, exist_ok=True)
            final.replace(self.keep_results / f"{_safe(job.case_id)}-{job_id}.json")
        # "device" names the device unless the framework recorded its execution device there (OpenVINO's CPU/GPU/
        # NPU, ncnn's Vulkan GPU: the same field as on the host); "target" always names it.
        m.session = {"device": self.name, **m.session, "target": self.name}
        return m

    # -- cleanup -----------------------------------------------------------------------------------------------
    def _cleanup(self, workdir: str) -> None:
        """Kill the runner if it still runs, remove the work dir. After a disconnect, reconnect first; if the
        device is still gone the dir is remembered and removed at the next contact."""
        if self._transport is None:  # never connected: nothing was created on the device
            return
        q = shlex.quote(workdir)
        script = f"if [ -f {q}/runner.pid ]; then kill -9 $(cat {q}/runner.pid) 2>/dev/null; fi; rm -rf {q}"
        for attempt in range(2):
            try:
                code, _, _ = self.transport.shell(script, min(CLEANUP_TIMEOUT_S, self.io_timeout_s))
                if code == 0:
                    return
            except TargetError:
                pass
            if attempt == 0 and not self.transport.reconnect(CLEANUP_TIMEOUT_S):
                break
        self._stale.append(workdir)

    def _remove_stale(self) -> None:
        for workdir in list(self._stale):
            self._stale.remove(workdir)
            self._cleanup(workdir)

    def close(self) -> None:
        """Remove what failed jobs left behind and drop the link (a later use reconnects). Never raises."""
        if self._transport is None:
            return
        try:
            self._remove_stale()
        finally:
            self._transport.close()
            self._transport = None
            unregister_open(self)

    # -- helpers -----------------------------------------------------------------------------------------------
    def _remaining(self, deadline: float, step: str) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TargetError(f"{self.name}: {step}: job deadline of {self.job_deadline_s:.0f}s exceeded")
        return left

    def _step(self, step: str, deadline: float, fn, *args):
        self._remaining(deadline, step)
        try:
            return fn(*args)
        except TargetError as exc:
            raise TargetError(f"{self.name}: {step}: {exc}") from None

    def _shell(self, step: str, command: str, timeout: float) -> tuple[int, str, str]:
        transport = self.transport  # a failed connect already names the device
        try:
            return transport.shell(command, timeout)
        except TargetError as exc:
            raise TargetError(f"{self.name}: {step}: {exc}") from None


def _pack_part(pixels, start: int, stop: int, path: Path) -> Path:
    """Crops [start, stop) as a packed file, read from the session's store ``PACK_PIECE_BYTES`` at a time: the
    host never holds a whole pushed file (64 MB more at the peak of every large device run otherwise)."""
    step = max(1, PACK_PIECE_BYTES // int(np.prod(pixels.shape[1:])))
    write_store(path, stop - start, pixels.shape[1],
                (pixels.read(a, min(stop, a + step)) for a in range(start, stop, step)))
    return path


def _df_available_bytes(df_output: str) -> int | None:
    """Available 1K blocks from the last line of ``df -k DIR`` (third field from the end in toybox, busybox and
    coreutils alike, even when a long filesystem name wraps the line)."""
    lines = [line for line in df_output.splitlines() if line.strip()]
    if not lines:
        return None
    fields = lines[-1].split()
    try:
        return int(fields[-3]) * 1024
    except (IndexError, ValueError):
        return None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]
