"""Every aiotbench option, declared once: flag, ini key, value parser (with its range check), default, help, whether
it is a path, and, for an option the ``aiotbench`` command shares, the name of its twin flag there. The pytest
options (``plugin/options.py``) and the ``aiotbench`` subcommands (``report/compare.py``, ``report/html.py``) are
both built from these declarations, so a twin has one parser, one help text and one metavar. Pure: no pytest."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Any, Callable

from .limits import LimitError, parse_limits

MAX_THREADS = 256  # a typo like 10000 must be a usage error, not 10000 runtime threads
SUITES = ("aiotbench", "none")  # --aiotbench-suite: the built-in canonical suite, or none (own catalogs only)
MAX_IMAGES = 100_000  # ImageNet val has 50 000; 10**8 synthetic images would hang the run before its first case
# Every count and duration has an upper bound: a typo (an extra 0, 10**20) is a usage error, not an OverflowError
# traceback, minutes of collecting a million repeat items, or a warmup that never ends.
MAX_WARMUP = 10_000  # AIoTBench warms up 10 times; 10 000 inferences of a large model already take hours
MAX_REPEAT = 1_000  # items = cases x repeats, collected up front
MAX_DEADLINE_S = 7 * 24 * 3600.0  # one remote job
MAX_IO_TIMEOUT_S = 24 * 3600.0  # larger values overflow socket timeouts
SCENARIOS = ("single-stream", "offline")  # --aiotbench-scenario (run/offline.py)
MAX_SESSIONS = 64  # offline sessions each hold the model: a typo must not load 10 000 copies
MAX_BATCH = 1024


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


class ValueNamed(ValueError):
    """A parser's refusal that already quotes the value it refuses: shown after the option's name alone."""


def limit_spec(raw: Any) -> str:
    """A ``--fail-on`` value (one or more limits): checked where it is given, parsed into limits where applied."""
    value = str(raw)
    try:
        parse_limits([value])
    except LimitError as exc:
        raise ValueNamed(str(exc)) from None
    return value


COOLDOWN_MAX_S = 600.0  # --aiotbench-cooldown until=TEMP waits at most this long unless max= says otherwise


def parse_cooldown(raw: str) -> dict:
    """``SECONDS`` or ``until=TEMP[,max=SECONDS]`` (ValueError saying what is valid)."""
    text = str(raw).strip()
    valid = "expected SECONDS (0..86400) or until=TEMP[,max=SECONDS] (TEMP in degrees C, 0..150)"
    try:
        if not text.startswith("until="):
            seconds = float(text)
            if not 0 <= seconds <= 86400:
                raise ValueError
            return {"seconds": seconds}
        pairs = [p.split("=", 1) for p in text.split(",")]
        parts = dict(pairs)
        if set(parts) - {"until", "max"} or len(parts) != len(pairs):  # until=50,max=5,max=600: which one?
            raise ValueError
        target = float(parts["until"])
        bound = float(parts.get("max", COOLDOWN_MAX_S))
        if not (0 <= target <= 150 and 0 < bound <= 86400):
            raise ValueError
        return {"until_c": target, "max_s": bound}
    except ValueError:
        raise ValueError(valid) from None


_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(raw: str) -> float:
    """``90``, ``90s``, ``10m``, ``1.5h`` -> seconds in (0, 86400]."""
    found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|m|min|h)?\s*", str(raw))
    if not found:
        raise ValueError("expected a duration such as 90s, 10m or 1h (up to 24h)")
    seconds = float(found.group(1)) * _UNITS[found.group(2) or ""]
    if not 0 < seconds <= 86400:
        raise ValueError("expected a duration such as 90s, 10m or 1h (up to 24h)")
    return seconds


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
    cli: str | None = None  # the same option's flag on the ``aiotbench`` subcommands that take it


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
         f"seconds one remote job may take in all, in (0, {MAX_DEADLINE_S:g}] (default 900 per 64 MB file of "
         "crops the job pushes)",
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
    Option("--aiotbench-repeat", "aiotbench_repeat",
         f"time every case N times (1..{MAX_REPEAT}), interleaved across cases; report the median of the repeats "
         "and their spread", parse=integer(1, MAX_REPEAT), default=1, metavar="N"),
    Option("--aiotbench-fail-invalid", "aiotbench_fail_invalid",
         "kept for old command lines: a limit that cannot be judged (NOT JUDGED) fails by default now",
         kind="flag", default=False, cli="--fail-invalid"),
    Option("--aiotbench-allow-not-judged", "aiotbench_allow_not_judged",
         "a limit that could not be judged (a side's latency INVALID, no accuracy, no baseline partner) is "
         "reported as NOT JUDGED but does not fail (default: it fails; `aiotbench compare` exits 3)", kind="flag",
         cli="--allow-not-judged"),
    Option("--aiotbench-scenario", "aiotbench_scenario",
         "how images are issued: 'single-stream' (default: one at a time, per-image latency, the AIoTBench score) "
         "or 'offline' (all at once, as fast as the target can: images/s and offline VIPS)",
         parse=choice(*SCENARIOS), default="single-stream", metavar="NAME"),
    Option("--aiotbench-offline-sessions", "aiotbench_offline_sessions",
         f"offline scenario: concurrent framework sessions, 1..{MAX_SESSIONS}, each with --aiotbench-threads "
         "threads (default: as many as the target's cores hold)", parse=integer(1, MAX_SESSIONS), metavar="N"),
    Option("--aiotbench-offline-batch", "aiotbench_offline_batch",
         f"offline scenario: images per request, 1..{MAX_BATCH} (default 1); a model whose batch dimension is "
         "fixed runs batch 1, saying so", parse=integer(1, MAX_BATCH), default=1, metavar="N"),
    Option("--aiotbench-cooldown", "aiotbench_cooldown",
         "wait between two cases on a device: SECONDS, or until=TEMP[,max=SECONDS] until its hottest thermal zone "
         "is at or below TEMP degrees C, at most max (default 600) seconds; reported in each case's conditions",
         parse=parse_cooldown, metavar="SECONDS|until=TEMP"),
    Option("--aiotbench-sustain", "aiotbench_sustain",
         "sustained mode: run each case continuously for DURATION (e.g. 60s, 10m), cycling the dataset; reports "
         "latency, temperature and clock per time window and the last/first window ratio",
         parse=parse_duration, metavar="DURATION"),
    Option("--aiotbench-memory", "aiotbench_memory",
         "host cases' memory: fresh (default: each case's prepare and 5 inferences in a fresh process, ~1.4 s a "
         "case) or off (not measured: memory limits are NOT JUDGED); devices always measure in their runner",
         parse=choice("fresh", "off"), default="fresh", metavar="MODE"),
    Option("--aiotbench-allow-empty", "aiotbench_allow_empty",
         "a run that measured no case (all skipped or deselected) may exit 0; by default it exits 5",
         kind="flag", default=False),
]

GATE_OPTIONS: list[Option] = [
    Option("--aiotbench-compare", "aiotbench_compare",
         "compare this run with a previous aiotbench or pytest-benchmark JSON; print the deltas", path=True,
         metavar="BASE.json"),
    Option("--aiotbench-fail-on", "aiotbench_fail_on",
         "fail when a case regresses beyond this limit against the base run, e.g. top1:-0.5pt, top5:-1pt, "
         "vips:-5%, median:+10%, p90:+10% (repeatable; latency limits are noise-aware)", parse=limit_spec,
         kind="list", metavar="METRIC:LIMIT", cli="--fail-on"),
    Option("--aiotbench-require-all", "aiotbench_require_all",
         "fail unless both runs hold the same cases (default: compare the cases both hold and name the others)",
         kind="flag", cli="--require-all"),
    Option("--aiotbench-html", "aiotbench_html",
         "write a self-contained HTML report (charts, table, comparison) at the end of the run; needs "
         "pytest-aiotbench[plot]", path=True, metavar="FILE"),
]

BY_INI = {o.ini: o for o in CORE_OPTIONS + GATE_OPTIONS}
BY_CLI = {o.cli: o for o in CORE_OPTIONS + GATE_OPTIONS if o.cli}


# ------------------------------------------------------------------------------------ the aiotbench command

class CliValueError(Exception):
    """A bad value on an ``aiotbench`` subcommand, as its one stderr line (exit 2). Not an argparse error: that
    would print the usage and argparse's own wording instead of the parser's."""


class _Checked(argparse.Action):
    """Stores the declared parser's value (appends for a repeatable option), refusing a bad one as pytest does."""

    def __init__(self, option_strings, dest, option: Option, command: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.option, self.command = option, command

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            typed = self.option.parse(values)
        except ValueError as exc:
            named = "" if isinstance(exc, ValueNamed) else \
                f"{option_string} {values if str(values).strip() else repr(values)}: "
            raise CliValueError(f"aiotbench {self.command}: error: {named}{exc}") from None
        if self.option.kind == "list":
            typed = [*(getattr(namespace, self.dest) or []), typed]
        setattr(namespace, self.dest, typed)


def add_cli_flag(parser: argparse.ArgumentParser, command: str, cli: str, note: str | None = None) -> None:
    """The ``aiotbench COMMAND`` flag ``cli`` from its one declaration: kind, parser, metavar, help (``note``: what
    the option means for this subcommand in particular, appended in parentheses)."""
    opt = BY_CLI[cli]
    help_text = (opt.help + (f" ({note})" if note else "")).replace("%", "%%")  # argparse formats help with %
    if opt.kind == "flag":
        parser.add_argument(cli, action="store_true", help=help_text)
    else:
        parser.add_argument(cli, action=_Checked, option=opt, command=command, metavar=opt.metavar, help=help_text,
                            default=[] if opt.kind == "list" else opt.default)
