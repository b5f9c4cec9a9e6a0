"""Start-up checks that run while pytest reads its command line, before any conftest, test or runtime is loaded.

Why the rootdir check exists: pytest picks its rootdir and ini file from the command line's *free* arguments
before it loads entry-point plugins, so at that moment it does not know ``--aiotbench-dataset`` takes a value and
reads ``--aiotbench-dataset /data/val`` as a flag plus a test path ``/data/val``. The rootdir and ini file are then
looked up from the dataset folder and the project's own ini file (``aiotbench_min_top1``, ``addopts``…) is silently
ignored. No plugin can declare options earlier (entry points load after that decision), so the plugin re-runs
pytest's own lookup with its options known: the same answer is fine; an answer that differs only in the rootdir (no
ini settings involved) is corrected; one that would lose or swap ini settings is a usage error telling the user to
write ``--opt=value``.

Why the declaration check exists: a conftest that declares an option or ini key of the plugin's own name either
crashes argparse (a long traceback) or silently replaces the plugin's declaration (its default then wins).
"""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Any

import pytest

from ..inputs.options import BY_INI, CORE_OPTIONS, GATE_OPTIONS
from .options import DEVICE_ALIAS


def value_flags() -> set[str]:
    """The plugin's options that take a value (a space-separated value can be taken for a test path)."""
    return {o.flag for o in CORE_OPTIONS + GATE_OPTIONS if o.kind != "flag"}


def _takes_value(opt: Any) -> bool:
    attrs = opt.attrs()
    action = attrs.get("action")
    if isinstance(action, str) and action in ("store_true", "store_false", "store_const", "append_const", "count",
                                              "help", "version"):
        return False
    return attrs.get("nargs") != 0


def _all_value_flags(parser: pytest.Parser) -> set[str]:
    """Every long option that takes a value, the plugin's and any other plugin's (pytest-benchmark's
    ``--benchmark-json PATH`` is read the same wrong way); pytest's own were known when it chose: no difference."""
    groups = [parser._anonymous, *parser._groups]  # pytest has no public lookup of declared options
    return {name for group in groups for opt in group.options if _takes_value(opt)
            for name in opt.names() if name.startswith("--")}


def _leaked_values(args: list[str], flags: set[str]) -> list[tuple[str, str]]:
    """(flag, value) pairs written as two words whose value names an existing path: what pytest's first look at
    the command line takes for test paths, the plugin's own options first. ``--`` ends the options."""
    pairs = []
    for i, token in enumerate(args[:-1]):
        if token == "--":
            break
        value = args[i + 1]
        if token in flags and not value.startswith("-") and _exists(value.split("::", 1)[0]):
            pairs.append((token, value))
    ours = value_flags()
    return sorted(pairs, key=lambda pair: pair[0] not in ours)


def _exists(path: str) -> bool:
    try:
        return Path(path).exists()
    except OSError:
        return False


def _determine_setup(config: pytest.Config, ns: argparse.Namespace) -> tuple[Path, Path | None, dict]:
    from _pytest.config.findpaths import determine_setup

    kwargs = dict(inifile=ns.inifilename, override_ini=getattr(ns, "override_ini", None), args=ns.file_or_dir,
                  rootdir_cmd_arg=ns.rootdir or None, invocation_dir=config.invocation_params.dir)
    accepted = inspect.signature(determine_setup).parameters  # pytest 8.x has no override_ini parameter
    rootpath, inipath, inicfg = determine_setup(**{k: v for k, v in kwargs.items() if k in accepted})[:3]
    return rootpath, inipath, inicfg


def _plain(cfg: Any) -> dict:
    return {k: getattr(v, "value", v) for k, v in dict(cfg or {}).items()}


def check_rootdir(config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Called from ``pytest_load_initial_conftests`` (before any conftest loads), with the plugin's options known."""
    addopts = list(config.getini("addopts") or [])
    own = args[len(addopts):] if addopts and args[:len(addopts)] == addopts else list(args)  # what pytest saw
    try:
        flags = value_flags() | _all_value_flags(parser)
    except AttributeError:  # another pytest's internals: the plugin's own options still
        flags = value_flags()
    leaked = _leaked_values(own, flags)
    if not leaked:
        return
    try:
        ns = parser.parse_known_args(own)
        rootpath, inipath, inicfg = _determine_setup(config, ns)
    except pytest.UsageError:  # a bad value of some option: pytest's own parse reports it in a moment
        return
    if (rootpath, inipath) == (config.rootpath, config.inipath):
        return
    flag, value = leaked[0]
    old_cfg = getattr(config, "_inicfg", None)
    if old_cfg is not None and _plain(old_cfg) == _plain(inicfg) and hasattr(config, "_rootpath"):
        # Same ini settings (typically none at all): only the rootdir is wrong (e.g. the dataset folder, where
        # .pytest_cache would be written). Correct it; nothing the user wrote is lost.
        config._rootpath, config._inipath = rootpath, inipath
        parser.extra_info["rootdir"], parser.extra_info["inifile"] = str(rootpath), str(inipath)
        if ns.confcutdir is None:  # pytest derived it from the wrong rootdir
            config.known_args_namespace.confcutdir = str(inipath.parent if inipath else rootpath)
        return
    if inipath is not None:
        lost = f"would ignore {inipath}" + (f" and read {config.inipath} instead" if config.inipath else "")
    else:
        lost = f"would read {config.inipath}, which is not this project's"
    raise pytest.UsageError(
        f"{flag} {value}: pytest chooses its ini file before it knows plugins' options, took {value} for a test "
        f"path and {lost}; write {flag}={value}")


def conflict_error(exc: BaseException) -> pytest.UsageError | None:
    """A conftest/plugin declaring one of the plugin's own flags: argparse's conflict (or pytest's 'already added')
    as one line, or None when the error is about something else."""
    text = str(exc)
    ours = value_flags() | {o.flag for o in CORE_OPTIONS + GATE_OPTIONS} | {"--aiotbench"}
    named = sorted(f for f in ours if f in text.replace("'", " ").replace(",", " ").replace("{", " ").split())
    if not named or not (isinstance(exc, argparse.ArgumentError) or "already added" in text):
        return None
    return pytest.UsageError(f"{', '.join(named)} is declared twice: a conftest or another plugin declares an option "
                             "of pytest-aiotbench's own name; rename it (or disable the plugin with -p no:aiotbench)")


def check_declarations(parser: pytest.Parser) -> None:
    """After the initial conftests loaded: an ini key or option destination of the plugin's own name declared by
    someone else silently replaces the plugin's (its default would win): one line, exit 4."""
    inidict = getattr(parser, "_inidict", {})  # pytest has no public view of declared ini keys
    for name, opt in BY_INI.items():
        declared = inidict.get(name)
        if declared is not None and declared[0] != opt.help:  # the plugin's own declaration carries its help text
            raise pytest.UsageError(
                f"ini key {name} is declared twice: a conftest or another plugin declares an ini key of "
                "pytest-aiotbench's own name (its default would silently replace the plugin's); rename it")
    ours = {o.flag for o in CORE_OPTIONS + GATE_OPTIONS} | {"--aiotbench", DEVICE_ALIAS}
    dests = set(BY_INI) | {"aiotbench"}
    for group in [parser._anonymous, *parser._groups]:
        for opt in group.options:
            if opt.dest in dests and not set(opt.names()) & ours:
                raise pytest.UsageError(
                    f"option {'/'.join(opt.names())} stores into {opt.dest!r}, the destination of pytest-aiotbench's "
                    "own option (it would silently set the plugin's value); a conftest or another plugin must "
                    "rename its dest")


def check_conditions(settings: Any) -> None:
    """Cooldown and sustained mode run inside the Python runner where the case runs; the stock-Android
    benchmark_model runner has none: said at start, not silently ignored."""
    asked = [flag for flag, value in (("--aiotbench-cooldown", settings.cooldown),
                                      ("--aiotbench-sustain", settings.sustain_s)) if value]
    adb = [d for d in settings.devices if d != "host" and not d.startswith("ssh://")]
    if asked and adb and (settings.target_options or {}).get("benchmark_model"):
        raise pytest.UsageError(f"{' and '.join(asked)} need the Python runner on the device, not "
                                "--aiotbench-benchmark-model")


def check_accuracy_gate(settings: Any, dataset: Any) -> None:
    """--aiotbench-min-top1 asks for an accuracy gate on every case; unlabelled (synthetic) images measure no
    accuracy, so every case would pass it unchecked: said at start."""
    if settings.min_top1 and not dataset.labeled:  # 0 holds any top-1: nothing is claimed
        raise pytest.UsageError(f"--aiotbench-min-top1 {settings.min_top1:g}: no dataset is configured, so no "
                                "accuracy is measured (synthetic images) and every case would pass it unchecked; "
                                "set --aiotbench-dataset (ini aiotbench_dataset)")


def check_ab(settings: Any, baselines: dict) -> None:
    """A/B pairs are timed in this process: a remote device, or a baseline that is no model file, fails every
    case at run time; say it once, at start."""
    if not baselines:
        return
    if getattr(settings, "sustain_s", None):  # pairs time the dataset once, interleaved: no sustained curve
        raise pytest.UsageError("--aiotbench-sustain cannot be combined with A/B (--aiotbench-baseline or a "
                                "catalog `baseline`): run the sustained cases without their baseline")
    if getattr(settings, "scenario", None) == "offline":  # pairs compare per-image latencies: single-stream
        raise pytest.UsageError("A/B latency pairs (--aiotbench-baseline or a catalog `baseline`) run single-stream "
                                "only, not with --aiotbench-scenario offline")
    remote = [d for d in settings.devices if d != "host"]
    if remote:
        raise pytest.UsageError(
            f"A/B (--aiotbench-baseline or a catalog `baseline`) runs on the host only, not on --aiotbench-device "
            f"{', '.join(remote)}: "
            "time the A/B on the host, or compare two runs of the device with --aiotbench-compare")
    for case_id, base in sorted(baselines.items()):
        if base.file.is_dir():
            raise pytest.UsageError(f"case {case_id}: baseline {base.file} is a directory, expected a model file")
        if not base.file.exists():
            raise pytest.UsageError(f"case {case_id}: baseline model file not found: {base.file}")
