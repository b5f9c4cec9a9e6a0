"""pytest plugin: options and ini keys, case parametrization, the ``aiotbench`` fixture, reporting hooks."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

from . import catalog as catalog_mod
from .dataset import DatasetError, open_dataset
from .session import STATE_KEY, AiotbenchState, Settings, get_state
from .targets import TargetError

# (option, ini key, type, default, help). Every option is also an ini key under [tool.pytest.ini_options].
OPTIONS = [
    ("--aiotbench-dataset", "aiotbench_dataset", str, None,
     "dataset folder: labels.csv at its root, or an ILSVRC2012 val tree (one folder per synset). "
     "Default: synthetic images (latency only, accuracy n/a)"),
    ("--aiotbench-catalog", "aiotbench_catalog", "append", None,
     "extra catalog TOML with your models (repeatable); file paths are relative to the catalog"),
    ("--aiotbench-models", "aiotbench_models", str, None,
     "folder of the built-in catalog and zoo artifacts (default: <rootdir>/models)"),
    ("--aiotbench-no-builtin", "aiotbench_no_builtin", bool, False,
     "leave out the built-in catalog of the six AIoTBench models"),
    ("--aiotbench-images", "aiotbench_images", int, None, "use only the first N images of the dataset"),
    ("--aiotbench-threads", "aiotbench_threads", int, 1, "inference threads (default 1, as the AIoTBench app)"),
    ("--aiotbench-warmup", "aiotbench_warmup", int, 10, "untimed warmup inferences per case (default 10)"),
    ("--aiotbench-min-top1", "aiotbench_min_top1", float, None,
     "required top-1 for every case, overriding the catalog's min_top1 (fraction, e.g. 0.7)"),
    ("--aiotbench-strict", "aiotbench_strict", bool, False,
     "fail (instead of skip) cases whose model file or framework runtime is missing"),
    ("--aiotbench-json", "aiotbench_json", str, None, "write the aiotbench/1 JSON report here (atomically)"),
    ("--aiotbench-cache", "aiotbench_cache", str, None,
     "preprocessed-pixel cache folder (default: $XDG_CACHE_HOME/aiotbench; 'none' disables)"),
    ("--device", "aiotbench_device", "append", None,
     "where cases run: host (default), adb:SERIAL or ssh://user@host[:port]; repeat for a device farm "
     "(with -n <devices> --dist loadgroup: one xdist worker per device)"),
    ("--aiotbench-benchmark-model", "aiotbench_benchmark_model", str, None,
     "stock Android: TFLite benchmark_model binary for the device ABI (latency on device, accuracy from host)"),
    ("--aiotbench-device-python", "aiotbench_device_python", str, None, "Python on the device (default python3)"),
    ("--aiotbench-device-workdir", "aiotbench_device_workdir", str, None,
     "device folder for job work dirs (default /data/local/tmp for adb, /tmp for ssh)"),
    ("--aiotbench-device-deadline", "aiotbench_device_deadline", float, None,
     "seconds one remote job may take in all (default 900)"),
    ("--aiotbench-device-io-timeout", "aiotbench_device_io_timeout", float, None,
     "seconds of silence that mean a device is frozen (default 30)"),
    ("--aiotbench-ssh-key", "aiotbench_ssh_key", str, None, "private key for ssh:// devices"),
    ("--aiotbench-ssh-known-hosts", "aiotbench_ssh_known_hosts", str, None, "known_hosts file for ssh:// devices"),
]


def pytest_addhooks(pluginmanager):
    from . import hookspec

    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aiotbench", "AIoTBench inference benchmarks")
    group.addoption("--aiotbench", action="store_true", default=False,
                    help="run the AIoTBench benchmark cases (model x framework x quantization)")
    for flag, ini, kind, default, help_text in OPTIONS:
        if kind is bool:
            group.addoption(flag, action="store_true", default=None, dest=ini, help=help_text)
            parser.addini(ini, help_text, type="bool", default=default)
        elif kind == "append":
            group.addoption(flag, action="append", default=None, dest=ini, help=help_text)
            parser.addini(ini, help_text, type="linelist", default=[])
        else:
            group.addoption(flag, type=kind, default=None, dest=ini, help=help_text)
            parser.addini(ini, help_text, default=default)


def _setting(config: pytest.Config, ini: str, kind):
    value = config.getoption(ini)
    if value is None or value == []:
        value = config.getini(ini)
    if value in (None, "", []):
        return None if kind is not bool else False
    if kind in (int, float) and not isinstance(value, kind):
        try:
            value = kind(value)
        except ValueError:
            raise pytest.UsageError(f"{ini} = {value!r}: expected a {kind.__name__}") from None
    return value


def _cache_dir(value: str | None) -> Path | None:
    if value and value.lower() == "none":
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "aiotbench"


def _builtin_catalog(config: pytest.Config) -> tuple[Path | None, Path]:
    """The six-model catalog and the folder its files are relative to (the zoo's output)."""
    models_dir = _setting(config, "aiotbench_models", str)
    models_dir = Path(models_dir).expanduser() if models_dir else _project_path(config, "models")
    models_dir = models_dir or config.invocation_params.dir / "models"
    for candidate in (models_dir / catalog_mod.BUILTIN_CATALOG,  # installed elsewhere: the packaged copy
                      Path(str(resources.files("pytest_aiotbench").joinpath("catalog", catalog_mod.BUILTIN_CATALOG)))):
        if candidate.is_file():
            return candidate, models_dir
    return None, models_dir


def _load_cases(config: pytest.Config) -> tuple[list, list[str] | None]:
    """All cases to parametrize, and the ids of the canonical set (whether or not they run)."""
    builtin, models_dir = _builtin_catalog(config)
    builtin_cases = catalog_mod.load(builtin, base_dir=models_dir, builtin=True) if builtin else []
    canonical_ids = [c.id for c in builtin_cases if c.canonical] if builtin else None
    cases = [] if _setting(config, "aiotbench_no_builtin", bool) else list(builtin_cases)
    for path in _setting(config, "aiotbench_catalog", "append") or []:
        cases += catalog_mod.load(Path(path).expanduser())
    ids = [c.id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise catalog_mod.CatalogError(f"case ids defined in more than one catalog: {', '.join(duplicates)}")
    config.hook.pytest_aiotbench_cases(config=config, cases=cases)
    return cases, canonical_ids


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "aiotbench: an AIoTBench benchmark case")
    if not config.getoption("aiotbench"):
        return
    try:
        cases, canonical_ids = _load_cases(config)
        settings = Settings(
            dataset=_setting(config, "aiotbench_dataset", str),
            images=_setting(config, "aiotbench_images", int),
            threads=_setting(config, "aiotbench_threads", int) or 1,
            warmup=_setting(config, "aiotbench_warmup", int) or 0,
            min_top1=_setting(config, "aiotbench_min_top1", float),
            strict=_setting(config, "aiotbench_strict", bool),
            json_path=Path(p).expanduser() if (p := _setting(config, "aiotbench_json", str)) else None,
            cache_dir=_cache_dir(_setting(config, "aiotbench_cache", str)),
            devices=list(dict.fromkeys(_setting(config, "aiotbench_device", "append") or ["host"])),
            target_options=dict(
                benchmark_model=_setting(config, "aiotbench_benchmark_model", str),
                python=_setting(config, "aiotbench_device_python", str),
                workdir_base=_setting(config, "aiotbench_device_workdir", str),
                deadline_s=_setting(config, "aiotbench_device_deadline", float),
                io_timeout_s=_setting(config, "aiotbench_device_io_timeout", float),
                key_filename=_setting(config, "aiotbench_ssh_key", str),
                known_hosts=_setting(config, "aiotbench_ssh_known_hosts", str),
            ),
        )
        if settings.images is not None and settings.images < 1:
            raise pytest.UsageError("--aiotbench-images must be >= 1")
        dataset = open_dataset(settings.dataset, settings.images)
        state = AiotbenchState(config, settings, dataset, cases, canonical_ids)
        for device in settings.devices:  # a malformed --device is a usage error before anything runs
            state.target(device)
    except (catalog_mod.CatalogError, DatasetError, TargetError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(SessionHooks(state), "aiotbench-session")
    for name in sorted({c.framework for c in cases} | {c.quant for c in cases}):
        config.addinivalue_line("markers", f"{name}: AIoTBench cases with framework or quantization '{name}'")
    _point_collection_at_cases(config)


def _point_collection_at_cases(config: pytest.Config) -> None:
    """``pytest --aiotbench`` with no paths runs the benchmark cases: ./bench_cases in a checkout that has it,
    else the cases shipped in this package, so the plugin works from any directory once installed."""
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        return
    local = _project_path(config, "bench_cases")
    config.args[:] = [str(local or Path(__file__).with_name("cases.py"))]


def _project_path(config: pytest.Config, name: str) -> Path | None:
    """``name`` in the rootdir or, failing that, the invocation folder (pytest may take a rootdir from an
    option's value that looks like a path, e.g. ``--aiotbench-catalog /elsewhere/cat.toml``)."""
    for base in (config.rootpath, config.invocation_params.dir):
        if (base / name).exists():
            return base / name
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "aiotbench" not in metafunc.fixturenames:
        return
    state = get_state(metafunc.config)
    if state is None:
        params = [pytest.param(None, id="aiotbench", marks=pytest.mark.skip(reason="benchmark cases run with --aiotbench"))]
    else:
        params = []
        for device in state.settings.devices:
            # A farm keeps each device's cases on one xdist worker (--dist loadgroup): devices run in parallel,
            # one case at a time each.
            device_marks = [pytest.mark.xdist_group(name=device)] if state.settings.farm else []
            # Otherwise a model's cases share a group, so a relative threshold's reference runs on the same worker.
            group_by_model = not state.settings.farm and metafunc.config.pluginmanager.hasplugin("xdist")
            params += [pytest.param((case, device), id=state.result_id(case, device),
                                    marks=[pytest.mark.aiotbench, getattr(pytest.mark, case.framework),
                                           getattr(pytest.mark, case.quant), *device_marks,
                                           *([pytest.mark.xdist_group(name=case.model)] if group_by_model else [])])
                       for case in state.cases]
    metafunc.parametrize("aiotbench", params, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """A case with a relative threshold ("99% of fp32") runs after its reference."""
    if get_state(config) is not None:
        from .thresholds import order_items

        items[:] = order_items(items, _case_of)


def _case_of(item):
    callspec = getattr(item, "callspec", None)
    param = callspec.params.get("aiotbench") if callspec is not None else None
    return param if isinstance(param, tuple) else None


@pytest.fixture
def aiotbench(request, benchmark):
    """One AIoTBench case: ``result = aiotbench.run(); aiotbench.check(result)``."""
    from .fixture import AiotbenchFixture

    case, device = request.param
    return AiotbenchFixture(case, device, get_state(request.config), benchmark, request.node)


class SessionHooks:
    """Hooks that need the session state; registered only for ``--aiotbench`` runs."""

    def __init__(self, state: AiotbenchState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record each case's outcome (and why it did not pass), measured or not. The measured entry comes with
        the report's user properties, so this also works on an xdist controller for its workers' cases."""
        props = dict(report.user_properties)
        result_id = props.get("aiotbench_id")
        if result_id is None or not (report.when == "call" or report.outcome != "passed"):
            return
        status = report.outcome
        if report.when != "call" and report.outcome == "failed":
            status = "error"
        reason = _one_line(report) if report.outcome != "passed" else None
        if "aiotbench_device" in props:
            device, facts = props["aiotbench_device"]
            self.state.device_facts.setdefault(device, facts)
        entry = props.get("aiotbench_entry") or self.state.results.get(result_id)
        if entry is None:
            entry = self._unmeasured_entry(result_id, status, reason)
            if entry is None:
                return
        self.state.record({**entry, "status": status, "reason": reason})

    def _unmeasured_entry(self, result_id: str, status: str, reason: str | None) -> dict | None:
        for device in self.state.settings.devices:
            for case in self.state.cases:
                if self.state.result_id(case, device) == result_id:
                    return {"id": case.id, "result_id": result_id, "device": device, "model": case.model,
                            "framework": case.framework, "quant": case.quant, "file": str(case.file),
                            "file_sha256": None, "images": 0, "top1": None, "top5": None,
                            "min_top1": case.min_top1, "latency_ms": None, "prepare_ms": None, "first_ms": None,
                            "vips": None, "vops": None, "gflops": case.gflops, "status": status,
                            "reason": reason, "per_image": None}
        return None

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.state.is_worker:
            return
        from .table import render_farm, render_summary

        state = self.state
        reports = [state.device_report(d) for d in state.settings.devices]
        for report in reports:
            for line in render_summary(report):
                terminalreporter.write_line(line)
        if state.settings.farm:
            for line in render_farm(state.build_report()):
                terminalreporter.write_line(line)
        if state.settings.json_path is not None:
            state.write_json()
            terminalreporter.write_line(f"aiotbench: JSON report written to {state.settings.json_path}")

    def pytest_sessionfinish(self) -> None:
        self.state.write_json()  # also after Ctrl-C: whatever was measured is on disk


def _one_line(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    message = (crash.message if crash is not None else str(report.longrepr)).strip()
    return message.splitlines()[0].removeprefix("Failed: ") if message else report.outcome
