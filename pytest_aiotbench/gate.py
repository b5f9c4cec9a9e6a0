"""pytest side of compare and report: ``--aiotbench-compare BASE.json`` gates the session on regressions,
``--aiotbench-html FILE`` writes the HTML report at the end of the run.

Everything that can be checked before the (long) benchmark runs is checked in ``pytest_configure``: the limits,
the base file and matplotlib. A bad value is a usage error (exit 4) right away, not after an hour of inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from . import options
from .compare import Limit, compare_reports, format_comparison, parse_limits
from .reports import ReportError, load_report, normalize_report
from .session import current_report, get_state
from .storage import ReportPathError, check_writable


@dataclass
class GateState:
    base: dict | None
    limits: list[Limit]
    html: Path | None
    require_all: bool = False
    summary: list[str] = field(default_factory=list)  # lines for the terminal summary
    failed: bool = False


GATE_KEY = pytest.StashKey[GateState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.register(parser, options.GATE_OPTIONS)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # xdist worker: the controller owns the whole run's report
        return
    base_path = options.value(config, "aiotbench_compare")
    limit_specs = options.value(config, "aiotbench_fail_on")
    html_path = options.value(config, "aiotbench_html")
    if not (base_path or limit_specs or html_path):
        return
    try:
        limits = parse_limits(limit_specs or [])
    except ReportError as exc:
        raise pytest.UsageError(f"--aiotbench-fail-on: {exc}") from None
    core = get_state(config)  # configured first (tryfirst); its A/B pairs take the limits too (abrun)
    if limits and not base_path and not (core and core.baselines):
        raise pytest.UsageError("--aiotbench-fail-on needs a base: --aiotbench-compare BASE.json or "
                                "--aiotbench-baseline BASE_CATALOG.toml (or a catalog `baseline` key)")
    if not (base_path or html_path):
        return
    try:
        base = load_report(base_path) if base_path else None
    except ReportError as exc:
        raise pytest.UsageError(f"--aiotbench-compare: {exc}") from None
    if html_path:
        from .html_report import require_matplotlib

        try:
            check_writable(html_path)
            require_matplotlib()
        except (ReportError, ReportPathError) as exc:
            raise pytest.UsageError(f"--aiotbench-html: {exc}") from None
    config.stash[GATE_KEY] = GateState(base, limits, html_path,
                                       require_all=bool(options.value(config, "aiotbench_require_all")))


@pytest.hookimpl(trylast=True)  # after the core plugin has recorded every case
def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(GATE_KEY, None)
    if state is None:
        return
    report = current_report(session.config)
    if report is None:
        state.summary.append("no aiotbench case ran: nothing to compare or report")
        return
    try:
        run = normalize_report(report, origin="this run")
        if state.base is not None:
            comparison = compare_reports(state.base, run, state.limits)
            problem = comparison.case_set_problem(state.require_all)
            if problem:  # a gate that compared nothing must not pass
                raise ReportError(f"{state.base.get('origin')} vs this run: {problem}")
            state.summary += format_comparison(comparison).splitlines()
            core = get_state(session.config)
            state.failed = comparison.failed or bool(core and core.settings.fail_invalid and comparison.cannot_judge)
        if state.html is not None:
            from .html_report import write_html

            write_html(state.html, run, state.base, state.limits)
            state.summary.append(f"HTML report written to {state.html}")
    except (ReportError, OSError) as exc:  # e.g. other dataset than the base: the gate cannot pass
        state.summary.append(f"cannot compare or report: {exc}")
        state.failed = True
    if state.failed and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    state = config.stash.get(GATE_KEY, None)
    if state is None or not state.summary:
        return
    title = "aiotbench compare" if state.base is not None else "aiotbench report"
    terminalreporter.write_sep("=", title, red=state.failed, green=not state.failed and state.base is not None)
    from .table import terminal_width, wrap

    for line in state.summary:  # long lines (notes, reasons) wrap to the terminal; the rest stays as it is
        for piece in [line] if len(line) <= terminal_width() else wrap(line.rstrip(), more="    "):
            terminalreporter.write_line(piece)
