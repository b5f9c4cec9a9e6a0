"""Every aiotbench option, declared once: flag, ini key, parser (with its range check), default, help, and whether
it is a path (command-line paths are relative to the invocation folder, ini paths to the ini file's folder).
``read_settings`` turns them into the typed :class:`Settings` the core plugin uses; the gate plugin reads its own
three options through :func:`value`. A bad value is a usage error (exit 4) naming the option and the valid range.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

GROUP = ("aiotbench", "AIoTBench inference benchmarks")
MAX_THREADS = 256  # a typo like 10000 must be a usage error, not 10000 runtime threads
SUITES = ("aiotbench", "none")  # --aiotbench-suite: the built-in canonical suite, or none (own catalogs only)
MAX_IMAGES = 100_000  # ImageNet val has 50 000; 10**8 synthetic images would hang the run before its first case
# Every count and duration has an upper bound: a typo (an extra 0, 10**20) is a usage error, not an OverflowError
# traceback, minutes of collecting a million repeat items, or a warmup that never ends.
MAX_WARMUP = 10_000  # AIoTBench warms up 10 times; 10 000 inferences of a large model already take hours
MAX_REPEAT = 1_000  # items = cases x repeats, collected up front
MAX_DEADLINE_S = 7 * 24 * 3600.0  # one remote job
MAX_IO_TIMEOUT_S = 24 * 3600.0  # larger values overflow socket timeouts


# ------------------------------------------------------------------------------------------------- parsers
# Each takes the raw text (command line or ini) or an already typed value and returns the typed value, or raises
# ValueError saying what is valid.

def integer(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    valid = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"

    def parse(raw: Any) -> int:
        try:
            value = int(str(raw).strip(), 10) if not isinstance(raw, int) else raw
        except ValueError:
            raise ValueError(f"expected {valid}") from None
        if isinstance(value, bool) or value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"expected {valid}")
        return value

    return parse


def number(low: float, high: float | None = None, *, low_open: bool = False) -> Callable[[Any], float]:
    """A finite number in [low, high] (or (low, high] with ``low_open``)."""
    valid = f"a number {'>' if low_open else '>='} {low:g}" if high is None else \
        f"a number in {'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(raw: Any) -> float:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"expected {valid}") from None
        if value != value or value in (float("inf"), float("-inf")) or value < low or (low_open and value == low) \
                or (high is not None and value > high):
            raise ValueError(f"expected {valid}")
        return value

    return parse


def choice(*choices: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = str(raw).strip()
        if value not in choices:
            raise ValueError(f"expected one of: {', '.join(choices)}")
        return value

    return parse


def text(raw: Any) -> str:
    value = str(raw).strip()
    if not value:
        raise ValueError("expected a non-empty value")
    return value


@dataclass(frozen=True)
class Option:
    flag: str
    ini: str
    help: str
    parse: Callable[[Any], Any] = text
    default: Any = None
    kind: str = "value"  # "value" | "flag" (boolean switch) | "list" (repeatable)
    path: bool = False  # resolved against the invocation folder (command line) or the ini file's folder
    metavar: str | None = None


CORE_OPTIONS: list[Option] = [
    Option("--aiotbench-dataset", "aiotbench_dataset",
         "dataset folder: labels.csv at its root, or an ILSVRC2012 val tree (one folder per synset). "
         "Default: synthetic images (latency only, accuracy n/a)", path=True, metavar="DIR"),
    Option("--aiotbench-catalog", "aiotbench_catalog",
         "extra catalog TOML with your models (repeatable); file paths are relative to the catalog",
         kind="list", path=True, metavar="FILE"),
    Option("--aiotbench-models", "aiotbench_models",
         "folder of the built-in catalog and zoo artifacts (default: <rootdir>/models)", path=True, metavar="DIR"),
    Option("--aiotbench-suite", "aiotbench_suite",
         "the built-in AIoTBench suite (six models, canonical device score): 'aiotbench' runs it, 'none' leaves it "
         "out. Default: 'aiotbench' when no --aiotbench-catalog is given, else 'none' (your catalog replaces it)",
         parse=choice(*SUITES), metavar="NAME"),
    Option("--aiotbench-no-builtin", "aiotbench_no_builtin",
         "leave out the built-in catalog of the six AIoTBench models (same as --aiotbench-suite none)", kind="flag",
         default=False),
    Option("--aiotbench-images", "aiotbench_images", f"use only the first N images of the dataset (1..{MAX_IMAGES})",
         parse=integer(1, MAX_IMAGES), metavar="N"),
    Option("--aiotbench-threads", "aiotbench_threads",
         f"inference threads, 1..{MAX_THREADS} (default 1, as the AIoTBench app)",
         parse=integer(1, MAX_THREADS), default=1, metavar="N"),
    Option("--aiotbench-warmup", "aiotbench_warmup",
         f"untimed warmup inferences per case, 0..{MAX_WARMUP} (default 10)",
         parse=integer(0, MAX_WARMUP), default=10, metavar="N"),
    Option("--aiotbench-min-top1", "aiotbench_min_top1",
         "required top-1 for every case, overriding the catalog's min_top1 (fraction in [0, 1], e.g. 0.7)",
         parse=number(0.0, 1.0), metavar="X"),
    Option("--aiotbench-strict", "aiotbench_strict",
         "fail (instead of skip) cases whose model file or framework runtime is missing", kind="flag",
         default=False),
    Option("--aiotbench-json", "aiotbench_json", "write the aiotbench/1 JSON report here (atomically)", path=True,
         metavar="FILE"),
    Option("--aiotbench-cache", "aiotbench_cache",
         "preprocessed-pixel cache folder (default: $XDG_CACHE_HOME/aiotbench; 'none' disables)", metavar="DIR"),
    Option("--aiotbench-device", "aiotbench_device",
         "where cases run: host (default), adb:SERIAL or ssh://user@host[:port]; repeat for a device farm "
         "(with -n <devices> --dist loadgroup: one xdist worker per device). Also --device, unless another "
         "plugin or conftest owns that name", kind="list", metavar="SPEC"),
    Option("--aiotbench-benchmark-model", "aiotbench_benchmark_model",
         "stock Android: TFLite benchmark_model binary for the device ABI (latency on device, accuracy from host)",
         path=True, metavar="PATH"),
    Option("--aiotbench-device-python", "aiotbench_device_python", "Python on the device (default python3)",
         metavar="PATH"),
    Option("--aiotbench-device-workdir", "aiotbench_device_workdir",
         "device folder for job work dirs (default /data/local/tmp for adb, /tmp for ssh)", metavar="DIR"),
    Option("--aiotbench-device-deadline", "aiotbench_device_deadline",
         f"seconds one remote job may take in all, in (0, {MAX_DEADLINE_S:g}] (default 900)",
         parse=number(0.0, MAX_DEADLINE_S, low_open=True), metavar="SECONDS"),
    Option("--aiotbench-device-io-timeout", "aiotbench_device_io_timeout",
         f"seconds of silence that mean a device is frozen, in (0, {MAX_IO_TIMEOUT_S:g}] (default 30)",
         parse=number(0.0, MAX_IO_TIMEOUT_S, low_open=True), metavar="SECONDS"),
    Option("--aiotbench-ssh-key", "aiotbench_ssh_key", "private key for ssh:// devices", path=True,
         metavar="FILE"),
    Option("--aiotbench-ssh-known-hosts", "aiotbench_ssh_known_hosts", "known_hosts file for ssh:// devices",
         path=True, metavar="FILE"),
    Option("--aiotbench-baseline", "aiotbench_baseline",
         "A/B: catalog of baseline cases (matched by id), each timed interleaved with its candidate in this run; "
         "gated by the latency and accuracy limits of --aiotbench-fail-on", path=True, metavar="CATALOG"),
    Option("--aiotbench-memory", "aiotbench_memory",
         "host cases' memory: fresh (default: each case's prepare and 5 inferences in a fresh process, ~1.4 s a "
         "case) or off (not measured: memory limits are NOT JUDGED); devices always measure in their runner",
         parse=choice("fresh", "off"), default="fresh", metavar="MODE"),
    Option("--aiotbench-repeat", "aiotbench_repeat",
         f"time every case N times (1..{MAX_REPEAT}), interleaved across cases; report the median of the repeats "
         "and their spread", parse=integer(1, MAX_REPEAT), default=1, metavar="N"),
    Option("--aiotbench-fail-invalid", "aiotbench_fail_invalid",
         "kept for old command lines: a limit that cannot be judged (NOT JUDGED) fails the session by default "
         "now (see --aiotbench-allow-not-judged)", kind="flag", default=False),
    Option("--aiotbench-allow-not-judged", "aiotbench_allow_not_judged",
         "a --aiotbench-fail-on limit that could not be judged (INVALID latency, no accuracy, no baseline "
         "partner) is reported as NOT JUDGED but does not fail the session (default: it fails)", kind="flag"),
    Option("--aiotbench-allow-empty", "aiotbench_allow_empty",
         "a run that measured no case (all skipped or deselected) may exit 0; by default it exits 5",
         kind="flag", default=False),
]

GATE_OPTIONS: list[Option] = [
    Option("--aiotbench-compare", "aiotbench_compare",
         "compare this run with a previous aiotbench or pytest-benchmark JSON; print the deltas", path=True,
         metavar="BASE.json"),
    Option("--aiotbench-fail-on", "aiotbench_fail_on",
         "fail the session when a case regresses beyond this limit against --aiotbench-compare, e.g. "
         "top1:-0.5pt, vips:-5%, p90:+10% (repeatable; latency limits are noise-aware)", kind="list",
         metavar="METRIC:LIMIT"),
    Option("--aiotbench-require-all", "aiotbench_require_all",
         "with --aiotbench-compare: fail unless this run and the base hold the same cases (default: compare the "
         "cases both hold and name the others)", kind="flag"),
    Option("--aiotbench-html", "aiotbench_html",
         "write a self-contained HTML report (charts, table, comparison) at the end of the run; needs "
         "pytest-aiotbench[plot]", path=True, metavar="FILE"),
]

BY_INI = {o.ini: o for o in CORE_OPTIONS + GATE_OPTIONS}
DEVICE_ALIAS = "--device"  # offered only where nothing else declared it (see plugin.pytest_load_initial_conftests)


def register(parser: pytest.Parser, options: list[Option]) -> None:
    group = parser.getgroup(*GROUP)
    for opt in options:
        help_text = opt.help.replace("%", "%%")  # argparse formats help with %
        if opt.kind == "flag":
            group.addoption(opt.flag, action="store_true", default=None, dest=opt.ini, help=help_text)
            parser.addini(opt.ini, opt.help, type="bool", default=opt.default)
        elif opt.kind == "list":
            group.addoption(opt.flag, action="append", default=None, dest=opt.ini, metavar=opt.metavar,
                            help=help_text)
            parser.addini(opt.ini, opt.help, type="linelist", default=[])
        else:  # parsed (and range-checked) by value(), so every bad value gets the same one-line message
            group.addoption(opt.flag, default=None, dest=opt.ini, metavar=opt.metavar, help=help_text)
            parser.addini(opt.ini, opt.help, default=None)


def _raw(config: pytest.Config, opt: Option) -> tuple[Any, Path, str]:
    """(raw value, folder relative paths are relative to, how to name it): command line first, then ini."""
    raw = config.getoption(opt.ini, default=None)
    if raw is not None and raw != []:
        return raw, config.invocation_params.dir, opt.flag
    base = config.inipath.parent if config.inipath else config.rootpath
    return config.getini(opt.ini), base, f"{opt.ini} (ini)"


def value(config: pytest.Config, ini: str) -> Any:
    """The option's typed value: command line first, then the ini key, then the default."""
    opt = BY_INI[ini]
    try:
        raw, base, source = _raw(config, opt)
    except (ValueError, pytest.UsageError) as exc:  # pytest parsing an ini flag: 'maybe'
        raise pytest.UsageError(f"{opt.ini} (ini): {exc}: expected true or false") from None
    if opt.kind == "flag":
        return bool(raw) if raw not in (None, "") else bool(opt.default)
    # An empty ini value means "unset"; an empty command-line value (--aiotbench-json=) is a mistake: parsed below.
    if raw in (None, []) or (raw == "" and source != opt.flag):
        return [] if opt.kind == "list" else opt.default
    items = raw if opt.kind == "list" else [raw]
    parsed = []
    for item in items:
        try:
            typed = opt.parse(item)
        except ValueError as exc:
            raise pytest.UsageError(f"{source} {item if str(item).strip() else repr(item)}: {exc}") from None
        if opt.path:
            typed = Path(os.path.expanduser(typed))
            typed = typed if typed.is_absolute() else base / typed
        parsed.append(typed)
    return parsed if opt.kind == "list" else parsed[0]


def cache_dir(config: pytest.Config) -> Path | None:
    """--aiotbench-cache: a folder (relative like every other path option), ``none``, or the XDG default."""
    raw = value(config, "aiotbench_cache")
    if raw and raw.lower() == "none":
        return None
    if raw:
        path = Path(raw).expanduser()
        return path if path.is_absolute() else _raw(config, BY_INI["aiotbench_cache"])[1] / path
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "aiotbench"


@dataclass
class Settings:
    dataset: Path | None
    images: int | None
    threads: int
    warmup: int
    min_top1: float | None
    strict: bool
    json_path: Path | None
    cache_dir: Path | None
    devices: list[str]
    target_options: dict[str, Any] = field(default_factory=dict)
    catalogs: list[Path] = field(default_factory=list)
    models_dir: Path | None = None
    no_builtin: bool = False
    suite: str | None = None  # --aiotbench-suite as given (None: the built-in suite only when no catalog is given)
    baseline: Path | None = None  # --aiotbench-baseline catalog
    repeat: int = 1
    fail_invalid: bool = False
    allow_empty: bool = False  # a run that measured no case may be green (--aiotbench-allow-empty)
    memory: str = "fresh"  # --aiotbench-memory: how host cases' memory is measured (run/memory.py)

    @property
    def farm(self) -> bool:
        return len(self.devices) > 1

    @property
    def builtin_suite(self) -> bool:
        """Whether the built-in AIoTBench suite runs: asked for by name, or the default when no own catalog is
        given (a user's catalog replaces it: no skipped built-in cases, no score partial for models not theirs)."""
        if self.suite is not None:
            return self.suite == "aiotbench"
        return not self.no_builtin and not self.catalogs


def read_settings(config: pytest.Config) -> Settings:
    def get(name: str) -> Any:
        return value(config, f"aiotbench_{name}")

    return Settings(
        dataset=get("dataset"),
        images=get("images"),
        threads=get("threads"),
        warmup=get("warmup"),
        min_top1=get("min_top1"),
        strict=get("strict"),
        json_path=get("json"),
        cache_dir=cache_dir(config),
        devices=list(dict.fromkeys(get("device") or ["host"])),
        target_options=dict(
            benchmark_model=str(p) if (p := get("benchmark_model")) else None,
            python=get("device_python"),
            workdir_base=get("device_workdir"),
            deadline_s=get("device_deadline"),
            io_timeout_s=get("device_io_timeout"),
            key_filename=str(p) if (p := get("ssh_key")) else None,
            known_hosts=str(p) if (p := get("ssh_known_hosts")) else None,
        ),
        catalogs=get("catalog"),
        models_dir=get("models"),
        no_builtin=get("no_builtin"),
        suite=get("suite"),
        baseline=get("baseline"),
        repeat=get("repeat"),
        fail_invalid=get("fail_invalid"),
        allow_empty=get("allow_empty"),
        memory=get("memory"),
    )
