"""pytest side of compare and report: ``--aiotbench-compare BASE.json`` gates the session on regressions,
``--aiotbench-html FILE`` writes the HTML report at the end of the run.

A gate verdict is reported where CI systems look, not only in the exit status: once every case has run (on the
xdist controller too), the verdict becomes a test report of its own (``aiotbench::compare-gate``), passed or
failed, so the summary line counts it, JUnit XML holds it as a testcase (with a failure), ``--lf`` reruns the
cases; with ``$GITHUB_STEP_SUMMARY`` set, a Markdown table of the cases and their verdicts is appended to it.

Everything that can be checked before the (long) benchmark runs is checked in ``pytest_configure``: the limits,
the base file and matplotlib. A bad value is a usage error (exit 4) right away, not after an hour of inference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from . import options
from ..inputs.limits import Limit, LimitError, parse_limits
from ..inputs.options import GATE_OPTIONS
from ..report.compare import NOT_JUDGED, Comparison, compare_reports, format_comparison
from ..report.read import ReportError, load_report, normalize_report
from .state import current_report, fail_session, get_state
from .workers import is_worker
from ..report.storage import ReportPathError, check_writable


@dataclass
class GateState:
    base: dict | None
    limits: list[Limit]
    html: Path | None
    require_all: bool = False
    summary: list[str] = field(default_factory=list)  # lines for the terminal summary
    failed: bool = False
    allow_not_judged: bool = False
    evaluated: bool = False
    comparison: Comparison | None = None


GATE_KEY = pytest.StashKey[GateState]()
LIMITS_KEY = pytest.StashKey[list]()
COMPARE_GATE_ID = "aiotbench::compare-gate"


def fail_on_limits(config: pytest.Config) -> list[Limit]:
    """``--aiotbench-fail-on`` (and ini ``aiotbench_fail_on``) parsed once for the session, for the compare gate
    and the A/B alike. A bad limit is a usage error (exit 4)."""
    if LIMITS_KEY not in config.stash:
        try:
            config.stash[LIMITS_KEY] = parse_limits(options.value(config, "aiotbench_fail_on") or [])
        except LimitError as exc:
            raise pytest.UsageError(f"--aiotbench-fail-on: {exc}") from None
        core = get_state(config)
        for limit in config.stash[LIMITS_KEY] if core is not None else ():
            if (why := _never_judged(limit.metric.name, core)) is not None:
                # every case would come out NOT JUDGED (exit 1) after the whole run: said before measuring
                raise pytest.UsageError(f"--aiotbench-fail-on {limit}: {why}, so the limit could never be judged")
    return config.stash[LIMITS_KEY]


def _never_judged(metric: str, core: Any) -> str | None:
    """Why no case of this run can have ``metric`` (the run's settings and catalog alone decide it), or None."""
    settings = core.settings
    if metric == "memory" and settings.memory == "off" and settings.devices == ["host"]:
        return "--aiotbench-memory off measures no memory on the host (devices always measure it)"
    if metric in ("median", "mean", "p90") and settings.scenario == "offline":
        return "the offline scenario times no single image (limit images_per_s instead)"
    if metric in ("top1", "top5", "vips", "vops") and not core.dataset.labeled:
        return "no dataset is configured: synthetic images measure no accuracy (--aiotbench-dataset)"
    if metric == "vops" and not any(case.gflops for case in core.cases):
        return "no case of this run has `gflops` in its catalog entry"
    return None


def allow_not_judged(config: pytest.Config) -> bool:
    """``--aiotbench-allow-not-judged``; contradicting ``--aiotbench-fail-invalid`` is a usage error."""
    allowed = _flag(config, "aiotbench_allow_not_judged")
    if allowed and _flag(config, "aiotbench_fail_invalid"):
        raise pytest.UsageError("--aiotbench-allow-not-judged and --aiotbench-fail-invalid contradict each other: "
                                "give one")
    return allowed


def _flag(config: pytest.Config, ini: str) -> bool:
    """A core flag's value; False when the core plugin (which declares it) is switched off."""
    try:
        config.getini(ini)
    except ValueError:
        return False
    return bool(options.value(config, ini))


class _GateRepr:
    """The failure text of a gate report: the first line is the one-line message (JUnit ``message``, the
    short test summary), the rest the details."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines or ["gate failed"]
        self.reprcrash = SimpleNamespace(message=self.lines[0], path="aiotbench", lineno=0)

    def toterminal(self, tw) -> None:
        from ..report.table import wrap

        for line in self.lines:  # wrapped to the terminal (COLUMNS), keeping each line's indent
            indent = line[:len(line) - len(line.lstrip())]
            for piece in wrap(line.strip(), indent, indent + "    "):
                tw.line(piece)

    def __str__(self) -> str:
        return "\n".join(self.lines)


def emit_gate_report(session: pytest.Session, nodeid: str, failed: bool, lines: list[str]) -> None:
    """Report a gate verdict as a test of its own, through the hooks every reporter listens to (terminal, JUnit,
    the last-failed cache, the session's fail count)."""
    from _pytest.reports import TestReport

    location = (nodeid.split("::")[0], None, nodeid.split("::")[-1])
    hook = session.config.hook
    session.testscollected += 1  # counted like a collected test, so the progress column ends at 100 %
    hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
    for when, outcome, longrepr in (("setup", "passed", None),
                                    ("call", "failed" if failed else "passed", _GateRepr(lines) if failed else None),
                                    ("teardown", "passed", None)):
        report = TestReport(nodeid=nodeid, location=location, keywords={nodeid.split("::")[-1]: 1}, outcome=outcome,
                            longrepr=longrepr, when=when, sections=[], duration=0.0, start=0.0, stop=0.0,
                            user_properties=[("aiotbench_gate", "\n".join(lines))])  # JUnit: from teardown
        hook.pytest_runtest_logreport(report=report)
    hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)


def append_step_summary(markdown: str) -> str | None:
    """Append to ``$GITHUB_STEP_SUMMARY`` when set; the problem as one line when it cannot be written."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(markdown.rstrip("\n") + "\n\n")
    except OSError as exc:
        return f"GITHUB_STEP_SUMMARY {path}: cannot append the job summary ({exc.strerror or exc})"
    return None


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def comparison_markdown(comparison: Comparison, failed: bool, not_judged: bool) -> str:
    """The job summary of a compare gate: the verdict, then one row per case."""
    word = "REGRESSION" if comparison.failed else NOT_JUDGED if not_judged else "FAIL" if failed else "OK"
    limits = comparison.limits_text() or "none"
    rows = []
    for case in comparison.cases:
        regressed = [f"{d.metric.name} {d.change:+.2f}{d.metric.unit} (limit {d.limit})" for d in case.regressions]
        regressed += [case.lost] if case.lost else []
        unjudged = [f"{d.metric.name}: {d.why_not_judged}" for d in case.unjudged]
        unjudged += [case.unmeasured_new] if case.unmeasured_new and case.limits else []
        verdict = "REGRESSION" if regressed else NOT_JUDGED if unjudged else "ok" if case.deltas else "not measured"
        rows.append(f"| `{_md(case.case_id)}` | {verdict} | {_md('; '.join(regressed + unjudged)) or '-'} |")
    rows += [f"| `{_md(i)}` | only in {side} | - |" for side, ids in (("BASE", comparison.only_base),
                                                                      ("NEW", comparison.only_new)) for i in ids]
    return "\n".join([f"### aiotbench compare gate: {word}", "",
                      f"BASE `{_md(comparison.base.get('origin'))}`, limits `{_md(limits)}`", "",
                      "| case | verdict | what regressed / why not judged |", "|---|---|---|", *rows])


def pytest_addoption(parser: pytest.Parser) -> None:
    options.register(parser, GATE_OPTIONS)


def pytest_configure(config: pytest.Config) -> None:
    if is_worker(config):  # the controller owns the whole run's report
        return
    base_path = options.value(config, "aiotbench_compare")
    limit_specs = options.value(config, "aiotbench_fail_on")
    html_path = options.value(config, "aiotbench_html")
    _check_judging_flags(config, bool(base_path))
    if not (base_path or limit_specs or html_path):
        return
    limits = fail_on_limits(config)
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
        from ..report.html import require_matplotlib

        try:
            check_writable(html_path)
            require_matplotlib()
        except (ReportError, ReportPathError) as exc:
            raise pytest.UsageError(f"--aiotbench-html: {exc}") from None
    config.stash[GATE_KEY] = GateState(base, limits, html_path,
                                       require_all=bool(options.value(config, "aiotbench_require_all")),
                                       allow_not_judged=allow_not_judged(config))


def _check_judging_flags(config: pytest.Config, has_base: bool) -> None:
    """``--aiotbench-fail-invalid`` / ``--aiotbench-allow-not-judged`` on the command line of a benchmark run
    with nothing to judge (no base, no A/B baseline), or ``--aiotbench-require-all`` without a base, would be
    silently accepted: a usage error instead. (An ini
    key may be set project-wide for every run, so only the command line is held to this.)"""
    core = get_state(config)
    if core is not None and not has_base and config.getoption("aiotbench_require_all", default=None):
        # the same case set is required of a saved base: without one the flag would gate nothing
        raise pytest.UsageError("--aiotbench-require-all: no --aiotbench-compare BASE.json in this run: it requires "
                                "the base's case set of this run")
    if core is None or has_base or core.baselines:
        return
    for flag, dest in (("--aiotbench-fail-invalid", "aiotbench_fail_invalid"),
                       ("--aiotbench-allow-not-judged", "aiotbench_allow_not_judged")):
        if config.getoption(dest, default=None):
            raise pytest.UsageError(f"{flag}: nothing to judge in this run: it applies to a gate, "
                                    "--aiotbench-compare BASE.json or --aiotbench-baseline BASE_CATALOG.toml")


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session):
    """Once every case has run (and, under xdist, every worker's result reached this controller): the gate's
    verdict as a test report of its own, so the summary line, JUnit XML and ``--lf`` see it."""
    result = yield
    state = session.config.stash.get(GATE_KEY, None)
    if state is not None and state.base is not None and not session.config.option.collectonly:
        _evaluate(session, state)
        if state.evaluated and (state.comparison is not None or state.failed):
            emit_gate_report(session, COMPARE_GATE_ID, state.failed, _failure_lines(state))
    return result


def _failure_lines(state: GateState) -> list[str]:
    """The verdict first (FAIL/NOT JUDGED/cannot compare), then its detail lines."""
    for start, line in enumerate(state.summary):
        if line.startswith(("FAIL:", NOT_JUDGED, "cannot compare")):
            return state.summary[start:]
    return state.summary[-1:]


@pytest.hookimpl(trylast=True)  # after the core plugin has recorded every case
def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(GATE_KEY, None)
    if state is None:
        return
    _evaluate(session, state)
    if state.failed:
        fail_session(session, "aiotbench compare: the gate failed")


def _evaluate(session: pytest.Session, state: GateState) -> None:
    """Compare (and write the HTML) once per session; fills ``state.summary`` and ``state.failed``."""
    if state.evaluated:
        return
    state.evaluated = True
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
            state.comparison = comparison
            state.summary += format_comparison(comparison, state.allow_not_judged).splitlines()
            not_judged = comparison.cannot_judge and not state.allow_not_judged
            state.failed = comparison.failed or not_judged
            if comparison.gated:
                problem = append_step_summary(comparison_markdown(comparison, state.failed, comparison.cannot_judge))
                if problem:
                    state.summary.append(problem)
        core = get_state(session.config)
        refusal = core.write_refusal(state.html) if core is not None and state.html is not None else None
        if refusal:  # the one rule for every report file: a run that measured nothing replaces no report
            state.summary.append(f"HTML report {state.html}: {refusal}")
        elif state.html is not None:
            from ..report.html import write_html

            write_html(state.html, run, state.base, state.limits)
            state.summary.append(f"HTML report written to {state.html}")
    except (ReportError, OSError) as exc:  # e.g. other dataset than the base: the gate cannot pass
        state.summary.append(f"cannot compare or report: {exc}")
        state.failed = True
        if state.base is not None:
            append_step_summary(f"### aiotbench compare gate: FAIL\n\ncannot compare or report: {_md(exc)}")


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    state = config.stash.get(GATE_KEY, None)
    if state is None or not state.summary:
        return
    title = "aiotbench compare" if state.base is not None else "aiotbench report"
    terminalreporter.write_sep("=", title, red=state.failed, green=not state.failed and state.base is not None)
    from ..report.table import terminal_width, wrap

    for line in state.summary:  # long lines (notes, reasons) wrap to the terminal; the rest stays as it is
        for piece in [line] if len(line) <= terminal_width() else wrap(line.rstrip(), more="    "):
            terminalreporter.write_line(piece)
