"""The aiotbench options as pytest options and ini keys, from their one declaration (``inputs/options.py``: flag, ini
key, parser with its range check, default, help, and whether it is a path: command-line paths are relative to the
invocation folder, ini paths to the ini file's folder). ``read_settings`` turns them into the typed :class:`Settings` the core plugin uses; the gate plugin reads its own
three options through :func:`value`. A bad value is a usage error (exit 4) naming the option and the valid range.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

if TYPE_CHECKING:
    from ..run.job import RunSettings

# The declarations live below every stage (the ``aiotbench`` command builds its twin flags from them too).
from ..inputs.options import BY_INI, Option, ValueNamed

GROUP = ("aiotbench", "AIoTBench inference benchmarks")
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
            shown = "" if isinstance(exc, ValueNamed) else f" {item if str(item).strip() else repr(item)}"
            raise pytest.UsageError(f"{source}{shown}: {exc}") from None
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
    scenario: str = "single-stream"  # --aiotbench-scenario
    offline_sessions: int | None = None  # None: as many as the target's cores hold
    offline_batch: int = 1
    cooldown: dict | None = None  # --aiotbench-cooldown (inputs.options.parse_cooldown)
    sustain_s: float | None = None  # --aiotbench-sustain
    memory: str = "fresh"  # --aiotbench-memory: how host cases' memory is measured (run/memory.py)

    @property
    def run(self) -> "RunSettings":
        """How the run executes its cases (``pipeline.run_case``). Imported here: a pytest run without
        ``--aiotbench`` imports no numpy (tests/plugin/test_frontdoor_plugin_switch.py)."""
        from ..run.job import RunSettings

        return RunSettings(threads=self.threads, warmup=self.warmup, scenario=self.scenario,
                           sessions=self.offline_sessions, batch=self.offline_batch, sustain_s=self.sustain_s,
                           memory=self.memory != "off")

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
        cooldown=get("cooldown"),
        sustain_s=get("sustain"),
        memory=get("memory"),
        **_scenario(config, get),
    )


def _scenario(config: pytest.Config, get: Callable[[str], Any]) -> dict[str, Any]:
    """The scenario and its knobs; an offline knob without the offline scenario, or the offline scenario with
    sustained mode, is a usage error rather than silently ignored (with an A/B baseline: ``startup.check_ab``)."""
    scenario = get("scenario")
    sessions, batch = get("offline_sessions"), get("offline_batch")
    if scenario != "offline":
        scenario_flag = BY_INI["aiotbench_scenario"].flag
        chosen_here = _raw(config, BY_INI["aiotbench_scenario"])[2] == scenario_flag
        for name in ("offline_sessions", "offline_batch"):
            raw, _, source = _raw(config, BY_INI[f"aiotbench_{name}"])
            # a project's ini knobs go with its ini scenario: a command line choosing another scenario overrides both
            if raw not in (None, "", []) and not (chosen_here and source != BY_INI[f"aiotbench_{name}"].flag):
                raise pytest.UsageError(f"{source} applies to --aiotbench-scenario offline only")
    elif get("sustain"):  # offline issues each image once, as fast as it can: no time windows to sustain
        raise pytest.UsageError("--aiotbench-sustain runs single-stream only, not with --aiotbench-scenario offline")
    return {"scenario": scenario, "offline_sessions": sessions, "offline_batch": batch}
