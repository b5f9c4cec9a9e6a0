"""The pytest adapter (the pytest11 entry point): options and ini keys, case parametrization, the ``aiotbench``
fixture, reporting hooks. The modules beside it (options, fixture, state, gate, ab_gate, progress, startup) are the
rest of the adapter; nothing in the stages below imports them. Imports nothing heavy at module level: a pytest run
without ``--aiotbench`` pays for this module and ``options`` only."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..inputs.options import CORE_OPTIONS, GATE_OPTIONS
from . import options

# Nothing heavy at import time: a pytest run without --aiotbench must not pay for numpy, Pillow or a runtime (the
# modules below all import numpy). Each function imports what it uses; tests/plugin/test_frontdoor_plugin_switch.py checks.
if TYPE_CHECKING:
    from .options import Settings
    from .state import AiotbenchState

GATE_PLUGIN = "aiotbench-gate"  # gate.py's hooks, registered by this plugin (see _register_gate)


def pytest_addhooks(pluginmanager):
    from . import hookspec

    pluginmanager.add_hookspecs(hookspec)
    # The gate used to be a second pytest11 entry point (so -p no:aiotbench left its options). An install made
    # before it became part of this plugin still lists it: never load it twice.
    pluginmanager.set_blocked("aiotbench_gate")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(*options.GROUP)
    group.addoption("--aiotbench", action="store_true", default=False,
                    help="run the AIoTBench benchmark cases (model x framework x quantization)")
    options.register(parser, CORE_OPTIONS)
    if not _option_declared(parser, GATE_OPTIONS[0].flag):  # declared already if the stale gate loaded first
        options.register(parser, GATE_OPTIONS)  # what gate.pytest_addoption does (gate.py is imported lazily)


def _gate_wanted(config: pytest.Config) -> bool:
    if config.getoption("aiotbench"):
        return True
    for opt in GATE_OPTIONS:  # the gate also checks (and reports on) its options in runs without --aiotbench
        if config.getoption(opt.ini, default=None) or config.getini(opt.ini):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Options are parsed, nothing is configured yet: the gate joins here, so its pytest_configure runs where it
    always did (after this plugin's tryfirst one, in the usual order among the others)."""
    if _gate_wanted(config):
        _register_gate(config)


def _register_gate(config: pytest.Config) -> None:
    """gate.py's hooks (every ``pytest_*`` function but ``pytest_addoption``, whose options are registered above),
    registered as part of this plugin so ``-p no:aiotbench`` switches everything off, and imported only when used."""
    import types

    if config.pluginmanager.has_plugin(GATE_PLUGIN):
        return
    from . import gate

    if config.pluginmanager.is_registered(gate):  # given with -p pytest_aiotbench.plugin.gate: there already
        return
    hooks = {name: getattr(gate, name) for name in dir(gate)
             if name.startswith("pytest_") and name != "pytest_addoption" and callable(getattr(gate, name))}
    config.pluginmanager.register(types.SimpleNamespace(**hooks), GATE_PLUGIN)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args):
    """``--device`` is a short alias of ``--aiotbench-device``, offered only once the initial conftests and every
    plugin have declared their options, and only when none of them owns ``--device``: many ML projects declare
    their own, and pytest refuses to start when two declare the same flag. Also the start-up checks of
    ``startup``: a space-separated option value taken for a test path, a conftest declaring the plugin's names."""
    from . import startup

    startup.check_rootdir(early_config, parser, args)
    try:
        result = yield
    except Exception as exc:  # a conftest declaring one of our flags: argparse's conflict, as one line
        error = startup.conflict_error(exc)
        if error is None:
            raise
        raise error from None
    startup.check_declarations(parser)
    if not _option_declared(parser, options.DEVICE_ALIAS):
        parser.getgroup(*options.GROUP).addoption(
            options.DEVICE_ALIAS, action="append", default=None, dest="aiotbench_device", metavar="SPEC",
            help="short for --aiotbench-device (offered because no other plugin or conftest declares --device)")
    return result


def _option_declared(parser: pytest.Parser, flag: str) -> bool:
    groups = [parser._anonymous, *parser._groups]  # pytest has no public lookup of declared flags
    return any(flag in opt.names() for group in groups for opt in group.options)


def _builtin_catalog(config: pytest.Config, settings: Settings) -> tuple[Path | None, Path]:
    """The six-model catalog and the folder its files are relative to (the zoo's output)."""
    from ..inputs import catalog as catalog_mod

    models_dir = settings.models_dir or _project_path(config, "models") or config.invocation_params.dir / "models"
    for candidate in (models_dir / catalog_mod.BUILTIN_CATALOG,  # installed elsewhere: the packaged copy
                      Path(str(resources.files("pytest_aiotbench").joinpath("catalog", catalog_mod.BUILTIN_CATALOG)))):
        if candidate.is_file():
            return candidate, models_dir
    return None, models_dir


def _load_cases(config: pytest.Config, settings: Settings) -> tuple[list, list[str] | None]:
    """All cases to parametrize, and the ids of the canonical set (whether or not they run): [] when the run is
    not the AIoTBench suite (own catalogs only), None when the suite was asked for but its catalog is missing."""
    from ..inputs import catalog as catalog_mod

    if settings.suite == "aiotbench" and settings.no_builtin:
        raise catalog_mod.CatalogError("--aiotbench-suite aiotbench and --aiotbench-no-builtin contradict each other")
    if settings.models_dir is not None and not settings.models_dir.is_dir():  # asked for: never a silent fallback
        raise catalog_mod.CatalogError(f"--aiotbench-models {settings.models_dir}: "
                                       f"{'not a folder' if settings.models_dir.exists() else 'folder not found'}")
    cases, canonical_ids = [], []
    if settings.builtin_suite:
        builtin, models_dir = _builtin_catalog(config, settings)
        cases = catalog_mod.load(builtin, base_dir=models_dir, builtin=True) if builtin else []
        canonical_ids = [c.id for c in cases if c.canonical] if builtin else None
    for path in settings.catalogs:
        cases += catalog_mod.load(path)
    ids = [c.id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise catalog_mod.CatalogError(f"case ids defined in more than one catalog: {', '.join(duplicates)}")
    config.hook.pytest_aiotbench_cases(config=config, cases=cases)
    if not cases:
        raise catalog_mod.CatalogError(
            "no benchmark cases: the built-in suite is left out (--aiotbench-suite none) or missing and no "
            "--aiotbench-catalog was given")
    _check_frameworks(cases)
    return cases, canonical_ids


def _check_frameworks(cases: list) -> None:
    """Unknown frameworks are found at collection (entry-point names only: no runtime is imported)."""
    from ..inputs import catalog as catalog_mod
    from ..frameworks import UnknownFramework, available_frameworks

    known = set(available_frameworks())
    for case in cases:
        if case.framework not in known:
            where = f"{case.catalog}: model {case.model!r}: " if case.catalog else f"case {case.id}: "
            raise catalog_mod.CatalogError(where + str(UnknownFramework.for_name(case.framework)))
        _check_option_keys(case)


def _check_option_keys(case) -> None:
    """A catalog ``options`` key the framework does not read is a typo that would silently measure the default
    (``delegat = "none"`` runs XNNPACK). Frameworks that declare ``option_keys`` are checked; loading the
    framework class imports no runtime."""
    if not case.options:
        return
    from ..inputs import catalog as catalog_mod
    from ..frameworks import get_framework

    accepted = getattr(get_framework(case.framework), "option_keys", None)
    unknown = sorted(set(case.options) - set(accepted)) if accepted is not None else []
    if unknown:
        where = f"{case.catalog}: model {case.model!r}: " if case.catalog else f"case {case.id}: "
        raise catalog_mod.CatalogError(
            f"{where}options = {catalog_mod.toml_value(case.options)}: unknown key(s) {', '.join(unknown)} for "
            f"{case.framework} (it reads: {', '.join(accepted) or 'none'})")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "aiotbench: an AIoTBench benchmark case")
    from . import startup

    if not config.getoption("aiotbench"):
        return
    from ..inputs import catalog as catalog_mod
    from ..inputs.dataset import DatasetError, open_dataset
    from .state import STATE_KEY, AiotbenchState
    from ..report.storage import ReportLock, ReportPathError, check_writable
    from ..targets import TargetError, parse_device_spec
    from .workers import is_worker

    settings = options.read_settings(config)  # bad option values: UsageError naming the valid range
    lock = None
    try:
        for device in settings.devices:  # a malformed --device is a usage error first (parsed, never connected)
            parse_device_spec(device)
        cases, canonical_ids = _load_cases(config, settings)
        dataset = open_dataset(settings.dataset, settings.images)
        startup.check_accuracy_gate(settings, dataset)
        controller = not is_worker(config)
        if controller:  # the controller checked them; workers see the same files
            dataset.check_files()
            _check_output_paths(config, settings, cases, dataset)
        # --collect-only checks the report path but writes nothing and creates no folder (the lock would).
        collect_only = config.getoption("collectonly", False)
        if settings.json_path is not None and controller:
            check_writable(settings.json_path)
            if not collect_only or settings.json_path.parent.is_dir():
                lock = ReportLock(settings.json_path)
                lock.acquire()
        state = AiotbenchState(config, settings, dataset, cases, canonical_ids)
        state.report_lock = lock
        if not collect_only:
            state.cache.probe()
        for device in settings.devices:  # target options checked too (building a target never connects)
            state.target(device)
    except (catalog_mod.CatalogError, DatasetError, TargetError, ReportPathError, ValueError) as exc:
        if lock is not None:
            lock.release()
        raise pytest.UsageError(str(exc)) from None
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(SessionHooks(state), "aiotbench-session")
    from . import ab_gate as abrun

    try:
        state.baselines = catalog_mod.load_baselines(settings.baseline, cases)
    except catalog_mod.CatalogError as exc:
        raise pytest.UsageError(str(exc)) from None
    startup.check_ab(settings, state.baselines)
    startup.check_conditions(settings)
    if state.baselines:
        state.ab_limits = abrun.ab_limits(config)
        config.pluginmanager.register(abrun.ABHooks(state, settings.fail_invalid), "aiotbench-ab")
    for name in sorted({c.framework for c in cases} | {c.quant for c in cases}):
        config.addinivalue_line("markers", f"{name}: AIoTBench cases with framework or quantization '{name}'")
    _point_collection_at_cases(config)


def _check_output_paths(config: pytest.Config, settings: Settings, cases: list, dataset) -> None:
    """Every file the run writes (JSON, per-device JSON, HTML, pytest-benchmark's JSON, JUnit XML) against every file it
    reads and against each other, and the pixel cache folder against the inputs: ``storage.check_output_paths``."""
    from .state import device_report_path
    from ..report.storage import check_output_paths

    outputs = []
    if settings.json_path is not None:
        outputs.append(("--aiotbench-json", settings.json_path))
        if settings.farm:
            outputs += [(f"--aiotbench-json (report of {d})", device_report_path(settings.json_path, d))
                        for d in settings.devices]
    if (html := _gate_value(config, "aiotbench_html")) is not None:
        outputs.append(("--aiotbench-html", html))
    if (bench_json := config.getoption("benchmark_json", None)) is not None:  # pytest-benchmark: relative to cwd
        outputs.append(("--benchmark-json", config.invocation_params.dir / Path(bench_json)))
    if (junit := getattr(config.option, "xmlpath", None)) is not None:  # pytest's: ~ and $VARS, relative to cwd
        junit_path = Path(os.path.expanduser(os.path.expandvars(junit)))
        outputs.append(("--junitxml", config.invocation_params.dir / junit_path))
    inputs = [("--aiotbench-catalog", c) for c in settings.catalogs]
    inputs += [("the catalog", c) for c in dict.fromkeys(case.catalog for case in cases if case.catalog)]
    inputs += [(f"the model file of {case.id}", case.file) for case in cases]
    inputs += [(f"the baseline model file of {case.id}", case.baseline) for case in cases if case.baseline]
    for flag, path in (("--aiotbench-baseline", settings.baseline),
                       ("--aiotbench-compare", _gate_value(config, "aiotbench_compare")),
                       ("--aiotbench-benchmark-model", settings.target_options.get("benchmark_model")),
                       ("--aiotbench-ssh-key", settings.target_options.get("key_filename")),
                       ("--aiotbench-ssh-known-hosts", settings.target_options.get("known_hosts")),
                       ("the ini file", config.inipath)):
        if path is not None:
            inputs.append((flag, Path(path)))
    input_folders = []
    if dataset.root is not None:
        input_folders.append(("--aiotbench-dataset", dataset.root))
        inputs.append(("the dataset's labels.csv", dataset.root / "labels.csv"))
    cache = [("--aiotbench-cache", settings.cache_dir)] if settings.cache_dir is not None else []
    images = ("a dataset image", [dataset.root / f for f in dataset.files]) if dataset.root is not None else None
    check_output_paths(outputs, inputs, input_folders, cache, images)


def _gate_value(config: pytest.Config, ini: str):
    """A gate option's value, or None when the gate plugin is not loaded (``-p no:aiotbench_gate``)."""
    try:
        config.getini(ini)
    except ValueError:
        return None
    return options.value(config, ini)


CASES_MODULE = Path(__file__).with_name("cases.py")
CASES_NODE = "aiotbench"  # the node id of the packaged cases: ``aiotbench::test_aiotbench[<case id>]``
ADDED_KEY = pytest.StashKey[bool]()  # the packaged cases were added to the run's paths (not named by the user)


def _point_collection_at_cases(config: pytest.Config) -> None:
    """``pytest --aiotbench`` runs the catalog's cases beside the project's own tests (its paths or testpaths):
    the packaged case module is collected in addition, under the node id ``aiotbench``, which also works as a
    path (``pytest --aiotbench 'aiotbench::test_aiotbench[<case id>]'`` reruns one case). It is not added when an
    argument already names it or selects single tests (``file::test``); a project module of its own that uses
    the ``aiotbench`` fixture replaces it (see ``pytest_collection_modifyitems``)."""
    named = False
    for i, arg in enumerate(config.args):
        path, sep, rest = arg.partition("::")
        if path == CASES_NODE and not (config.invocation_params.dir / path).exists():
            config.args[i] = str(CASES_MODULE) + sep + rest
            named = True
        elif _same_file(config.invocation_params.dir / path, CASES_MODULE):
            named = True
        elif sep:
            named = True  # single tests were asked for: nothing is added to them
    if not named:
        config.args.append(str(CASES_MODULE))
        config.stash[ADDED_KEY] = True


def _same_file(path: Path, other: Path) -> bool:
    try:
        return path.exists() and path.samefile(other)
    except OSError:
        return False


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent):
    """The packaged cases get the short node id ``aiotbench`` wherever the package is installed (pytest would
    give a file outside the rootdir an empty one: ``::test_aiotbench[...]``, which cannot be pasted back)."""
    if parent.config.getoption("aiotbench") and _same_file(module_path, CASES_MODULE):  # imports nothing
        return pytest.Module.from_parent(parent, path=module_path, nodeid=CASES_NODE)
    return None


def _project_path(config: pytest.Config, name: str) -> Path | None:
    """``name`` in the rootdir or, failing that, the invocation folder (pytest may take a rootdir from an
    option's value that looks like a path, e.g. ``--aiotbench-catalog /elsewhere/cat.toml``)."""
    for base in (config.rootpath, config.invocation_params.dir):
        if (base / name).exists():
            return base / name
    return None


# A case that fails or skips before timing says why in one line; pytest-benchmark's "fixture was not used"
# warning would only repeat it as noise.
QUIET_UNTIMED = pytest.mark.filterwarnings("ignore:Benchmark fixture was not used")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "aiotbench" not in metafunc.fixturenames:
        return
    from ..verdicts.repeats import repeat_test_id
    from .state import get_state

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
            model_marks = lambda case: [pytest.mark.xdist_group(name=case.model)] if group_by_model else []  # noqa: E731
            repeats = range(1, state.settings.repeat + 1)
            params += [pytest.param((case, device, r), id=repeat_test_id(state.result_id(case, device), r, repeats),
                                    marks=[pytest.mark.aiotbench, getattr(pytest.mark, case.framework),
                                           getattr(pytest.mark, case.quant), *device_marks, *model_marks(case),
                                           QUIET_UNTIMED])
                       for case in state.cases for r in repeats]
    metafunc.parametrize("aiotbench", params, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """A case with a relative threshold ("99% of fp32") runs after its reference; with --aiotbench-repeat, all
    cases once, then all again."""
    if not config.getoption("aiotbench"):
        return
    from .state import get_state

    state = get_state(config)
    if state is None:
        return
    if config.stash.get(ADDED_KEY, False):  # the project's own case modules replace the packaged one
        packaged = [i for i in items if i.nodeid.startswith(CASES_NODE + "::")]
        if len(packaged) < len([i for i in items if _case_of(i) is not None]):
            items[:] = [i for i in items if not i.nodeid.startswith(CASES_NODE + "::")]
    from ..inputs.thresholds import order_items

    items[:] = order_items(items, _case_of)
    if state.settings.repeat > 1:
        from ..verdicts.repeats import interleave

        interleave(items)


@pytest.hookimpl(trylast=True)  # after pytest-benchmark marked the items
def pytest_collection_finish(session: pytest.Session) -> None:
    """``--benchmark-only`` runs benchmarks: the aiotbench cases are benchmarks, even though they ask for
    pytest-benchmark's fixture only at run time (so that ``--benchmark-skip``, aimed at ordinary benchmarks, does
    not skip them: see the ``aiotbench`` fixture). Its "non-benchmark" skip mark is taken off them here."""
    if not session.config.getoption("aiotbench"):  # nothing to import for runs without the plugin
        return
    from .state import get_state

    if get_state(session.config) is None or not _benchmark_option(session.config, "benchmark_only"):
        return
    for item in session.items:
        if _case_of(item) is not None:
            item.own_markers[:] = [m for m in item.own_markers
                                   if not (m.name == "skip" and "--benchmark-only" in str(m.kwargs.get("reason")))]


def _benchmark_option(config: pytest.Config, name: str) -> bool:
    return bool(config.getoption(name, False))  # False when pytest-benchmark is not loaded


def benchmark_skipped(config: pytest.Config) -> bool:
    """pytest-benchmark's ``--benchmark-skip`` is on (``--benchmark-only`` overrides it, as pytest-benchmark does)."""
    return _benchmark_option(config, "benchmark_skip") and not _benchmark_option(config, "benchmark_only")


def _case_of(item):
    callspec = getattr(item, "callspec", None)
    param = callspec.params.get("aiotbench") if callspec is not None else None
    return param if isinstance(param, tuple) else None


@pytest.fixture
def aiotbench(request):
    """One AIoTBench case: ``result = aiotbench.run(); aiotbench.check(result)``.

    pytest-benchmark's fixture is asked for at run time, not in the signature: ``--benchmark-skip`` (often in
    ``addopts`` to keep benchmarks out of unit runs) skips every test whose signature names it, and would turn
    ``pytest --aiotbench`` into a green run of nothing. Under it a case still runs, timed on perf_counter (as
    with ``--benchmark-disable``), and stays out of pytest-benchmark's table and JSON."""
    from .fixture import AiotbenchFixture
    from .state import get_state

    case, device, repeat = request.param
    without = benchmark_skipped(request.config) or not request.config.pluginmanager.has_plugin("benchmark")
    benchmark = None if without else request.getfixturevalue("benchmark")  # -p no:benchmark: perf_counter too
    return AiotbenchFixture(case, device, get_state(request.config), benchmark, request.node, repeat)


class SessionHooks:
    """Hooks that need the session state; registered only for ``--aiotbench`` runs."""

    def __init__(self, state: AiotbenchState) -> None:
        self.state = state
        self.lines: list[tuple[str, bool]] = []  # (line, red): why the run is (not) green, at the summary's end
        self._position: dict[str, int] = {}  # node id -> its place in the session's items
        self._last_use: dict[str, int] | None = None  # crop geometry -> the place of the last item that reads it

    @pytest.hookimpl(wrapper=True, trylast=True)  # innermost: set before the gates read the report after the loop
    def pytest_runtestloop(self, session: pytest.Session):
        """The run reached its end (every selected case, or pytest's own -x/--maxfail stop): its report says
        ``finished``. Ctrl-C or a crash raises through here and leaves it false."""
        result = yield
        self.state.finished = True
        return result

    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        """After a case: the crops of geometries no later case needs are removed (issue 19: not kept)."""
        if self._last_use is None:  # once: where each item stands, and the last item each geometry serves
            self._position, self._last_use = {}, {}
            for index, later in enumerate(item.session.items):
                self._position[later.nodeid] = index
                case = _case_of(later)
                if case is not None:
                    baseline = self.state.baselines.get(case[0].id)
                    self._last_use.update({c.preprocess.geometry: index for c in (case[0], baseline) if c})
        here = self._position.get(item.nodeid, -1)
        self.state.release_pixels({g for g, last in self._last_use.items() if last > here})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record each case's outcome (and why it did not pass), measured or not. The measured entry comes with
        the report's user properties, so this also works on an xdist controller for its workers' cases."""
        from ..report.entry import property_value

        props = dict(report.user_properties)
        result_id = props.get("aiotbench_id")
        if result_id is None or not (report.when == "call" or report.outcome != "passed"):
            return
        status = report.outcome
        if report.when != "call" and report.outcome == "failed":
            status = "error"
        reason = _reason(report) if report.outcome != "passed" else None
        if "aiotbench_device" in props:
            device = property_value(props["aiotbench_device"])
            self.state.device_facts.setdefault(device["device"], device["facts"])
        entry = property_value(props.get("aiotbench_entry")) or self.state.results.get(result_id)
        if entry is None:
            entry = self._unmeasured_entry(result_id, status, reason)
            if entry is None:
                return
        self.state.record({**entry, "status": status, "reason": reason})

    def _unmeasured_entry(self, result_id: str, status: str, reason: str | None) -> dict | None:
        from ..report.entry import case_entry

        for device in self.state.settings.devices:
            for case in self.state.cases:
                if self.state.result_id(case, device) == result_id:
                    return case_entry(id=case.id, result_id=result_id, device=device, model=case.model,
                                      framework=case.framework, quant=case.quant, file=str(case.file),
                                      **self.state.requirement(case, device).entry_fields(), gflops=case.gflops,
                                      status=status, reason=reason)
        return None

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.state.is_worker:
            return
        from ..report.table import render_farm, render_summary

        state = self.state
        reports = state.finalize()
        if state.cache.note:
            terminalreporter.write_line(f"aiotbench: {state.cache.note}; ran without it")
        for problem in state.report_problems:
            terminalreporter.write_line(f"aiotbench: invalid {problem}", red=True)
        for device in state.settings.devices:
            for line in render_summary(reports[device]):
                terminalreporter.write_line(line)
        if state.settings.farm:
            for line in render_farm(reports["farm"]):
                terminalreporter.write_line(line)
        path = state.settings.json_path
        if path is not None and str(path) in state.kept_reports:
            terminalreporter.write_line(f"aiotbench: JSON report {path}: {state.kept_reports[str(path)]}")
        elif path is not None and not state.write_failures and not state.collect_only:
            from ..report.table import wrap

            for line in wrap(f"aiotbench: JSON report written to {path}", more="    "):
                terminalreporter.write_line(line)
        if benchmark_skipped(state.config) and state.measured():
            terminalreporter.write_line("aiotbench: --benchmark-skip skips pytest-benchmark's own benchmarks; the "
                                        "aiotbench cases ran, timed on perf_counter (not in its table or JSON)")
        for line, red in self.lines:
            terminalreporter.write_line(f"aiotbench: {line}", red=red)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the reports (also after Ctrl-C: whatever was measured is on disk) and decide, on the controller,
        whether the run may be green: a report our own tools reject, a report that could not be written, or no
        case measured at all (every case skipped or deselected: exit 5 unless --aiotbench-allow-empty)."""
        from .state import fail_session

        state = self.state
        state.usage_error = session.exitstatus == pytest.ExitCode.USAGE_ERROR
        state.finalize()
        if state.is_worker or state.collect_only:
            return
        reasons = [f"invalid {p}" for p in state.report_problems] + list(state.write_failures.values())
        for reason in reasons:
            fail_session(session, reason)
        self.lines += [(line, True) for line in state.write_failures.values()]  # report problems: own line above
        if state.measured() or session.exitstatus == pytest.ExitCode.INTERRUPTED:
            return
        if session.exitstatus != pytest.ExitCode.OK:  # failed, or pytest's own "no tests ran": said already
            return
        empty = state.nothing_measured()
        if state.settings.allow_empty:
            self.lines.append((f"{empty}; accepted (--aiotbench-allow-empty)", False))
        else:
            self.lines.append((f"{empty}: a run that measured nothing is not green (exit 5; "
                               "--aiotbench-allow-empty accepts it)", True))
            fail_session(session, empty, pytest.ExitCode.NO_TESTS_COLLECTED)

    def pytest_unconfigure(self) -> None:
        if self.state.report_lock is not None:
            self.state.report_lock.release()
        from ..targets import close_all as close_all_targets

        close_all_targets()  # last: the terminal summary and the gate may still read device facts


def _reason(report: pytest.TestReport) -> str:
    """Why a case did not pass, as one line (the one rule: ``oneline.one_line``), without pytest's prefixes."""
    from ..errors import one_line

    if report.skipped and isinstance(report.longrepr, tuple):
        message, prefix = str(report.longrepr[2]), "Skipped: "
    else:
        crash = getattr(report.longrepr, "reprcrash", None)
        message, prefix = (crash.message if crash is not None else str(report.longrepr or "")), "Failed: "
    if not message.strip():
        return report.outcome
    return one_line(message.strip().removeprefix(prefix), limit=None)
