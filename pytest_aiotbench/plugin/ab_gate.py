"""Interleaved A/B in the pytest run: ``--aiotbench-baseline BASE_CATALOG.toml`` (cases matched by id) or a
catalog's ``baseline = "old_model.tflite"`` key pairs a case with its baseline. The pairs are timed by
``targets/pairs.py`` (through ``pipeline.run_case``) and judged by ``verdicts/ab.py``; this module prints the
verdicts, issues the ``aiotbench::ab-gate`` test report and fails the session (exit 1) on a regression.
"""

from __future__ import annotations

import pytest

from ..inputs.limits import case_limits
from ..verdicts import ab
from . import options


def ab_limits(config: pytest.Config) -> list:
    from .gate import fail_on_limits  # one parse of --aiotbench-fail-on for the compare gate and the A/B

    return fail_on_limits(config)


# The words compare and the pytest gate use (README "CI gating"); the JSON keeps ab.py's values.
DISPLAY = {ab.CANNOT_JUDGE: "NOT JUDGED", ab.REGRESSION: "REGRESSION", ab.NO_REGRESSION: "OK"}


def ab_lines(results: list[dict]) -> list[str]:
    """Terminal lines, one block per pair."""
    from ..report.table import wrap

    lines = []
    for entry in results:
        pair = entry.get("ab")
        if not pair:
            continue
        r, base = pair["ratio"], pair["baseline"]
        acc = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
        num = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731 (no clean pair of one order: no ratio)
        timed = pair["pair_validity"]["checks"].get("pairs", r["pairs"])
        sessions = r.get("sessions") or {}
        spread = (f", {sessions['per_side']} sessions a side: ±{sessions['widening']:.1%}"
                  if sessions.get("widening") is not None and sessions.get("per_side", 1) > 1 else "")
        lines += wrap(f"{entry['id']}: latency NEW/BASE x{num(r['median'])} (95% {num(r['low'])}-{num(r['high'])}, "
                      f"{r['pairs']} clean pairs of {timed}{spread}), top-1 {acc(base['top1'])} -> "
                      f"{acc(entry['top1'])}: {DISPLAY.get(pair['verdict'], pair['verdict'].upper())}")
        for j in pair["judgements"]:  # wrapped to the terminal (COLUMNS), like the summary table's reasons
            if j["verdict"] != ab.NO_REGRESSION:
                lines += wrap(f"{j['metric']}: {j['verdict']}: {j['detail']}", "    ")
        if not pair["pair_validity"]["valid"]:
            lines += wrap(f"pairing INVALID: {'; '.join(pair['pair_validity']['reasons'])}", "    ")
    return lines


AB_GATE_ID = "aiotbench::ab-gate"


class ABHooks:
    """Summary and exit status of the A/B pairs (registered only when a case has a baseline). With limits, the
    verdict is also a test report of its own (``aiotbench::ab-gate``: summary line, JUnit XML, ``--lf``)."""

    def __init__(self, state, fail_invalid: bool = False) -> None:
        from .gate import allow_not_judged

        self.state = state
        self.allow_not_judged = allow_not_judged(state.config)  # default: NOT JUDGED fails (fail_invalid: legacy)
        self._summary_written = False
        self._summary_problem: str | None = None  # $GITHUB_STEP_SUMMARY could not be written

    def _pairs(self) -> list[dict]:
        return [e for e in self.state.results.values() if e.get("ab")]

    def _unpaired(self) -> list[str]:
        """Measured cases that the limits were meant for but that had no baseline partner, when no
        ``--aiotbench-compare`` base gates them either: not judged, never silently left out."""
        if options.value(self.state.config, "aiotbench_compare"):
            return []
        return [e["result_id"] for e in self.state.results.values()
                if not e.get("ab") and e.get("latency_ms") is not None and (self.state.ab_limits or e.get("fail_on"))]

    def _not_judged(self) -> list[str]:
        lines = [f"  {e['id']}: {j['detail']}" for e in self._pairs() for j in e["ab"]["judgements"]
                 if j["verdict"] == ab.CANNOT_JUDGE]
        for case_id in self._unpaired():
            limits = ", ".join(map(str, case_limits(self.state.ab_limits, self.state.results[case_id].get("fail_on"))))
            lines.append(f"  {case_id}: {limits} not judged: no baseline partner (not in --aiotbench-baseline, no "
                         "catalog `baseline` key)")
        return lines

    def _regressions(self) -> list[str]:
        return [f"  {e['id']}: {j['detail']}" for e in self._pairs() for j in e["ab"]["judgements"]
                if j["verdict"] == ab.REGRESSION]

    def _failed(self) -> bool:
        return bool(self._regressions() or (self._not_judged() and not self.allow_not_judged))

    def verdict_lines(self) -> list[str]:
        regressions, unjudged = self._regressions(), self._not_judged()
        allowed = " (allowed by --aiotbench-allow-not-judged)" if self.allow_not_judged else ""
        lines = [f"FAIL: {len(regressions)} A/B regression(s):", *regressions] if regressions else []
        if unjudged:
            lines += [f"NOT JUDGED{allowed}: {len(unjudged)} A/B limit check(s) could not be judged, so they did "
                      "not pass:", *unjudged]
        if not lines and any(e["ab"]["judgements"] for e in self._pairs()):
            lines = [f"OK: no A/B regression beyond limits ({', '.join(map(str, self.state.ab_limits)) or 'per model'})"]
        return lines

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session):
        result = yield
        gated = self.state.ab_limits or any(e.get("fail_on") for e in self.state.results.values())
        if not self.state.is_worker and gated and not session.config.option.collectonly and self.state.results:
            from .gate import emit_gate_report

            emit_gate_report(session, AB_GATE_ID, self._failed(), self.verdict_lines())
            self._step_summary()
        return result

    def _step_summary(self) -> None:
        from .gate import _md, append_step_summary

        if self._summary_written:
            return
        self._summary_written = True
        word = "REGRESSION" if self._regressions() else "NOT JUDGED" if self._not_judged() else "OK"
        rows = []
        for entry in self._pairs():
            pair = entry["ab"]
            bad = [f"{j['detail']}" for j in pair["judgements"] if j["verdict"] != ab.NO_REGRESSION]
            ratio = pair["ratio"]["median"]
            rows.append(f"| `{_md(entry['id'])}` | {'n/a' if ratio is None else f'x{ratio:.3f}'} | "
                        f"{pair['verdict'].upper()} | {_md('; '.join(bad)) or '-'} |")
        rows += [f"| `{_md(i)}` | - | NOT JUDGED | no baseline partner |" for i in self._unpaired()]
        problem = append_step_summary("\n".join([
            f"### aiotbench A/B gate: {word}", "", f"limits `{_md(', '.join(map(str, self.state.ab_limits)))}`", "",
            "| case | latency NEW/BASE | verdict | what regressed / why not judged |", "|---|---|---|---|", *rows]))
        self._summary_problem = problem

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._failed():
            from .state import fail_session

            fail_session(session, "aiotbench A/B: a pair regressed or could not be judged")

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.state.is_worker or not (self._pairs() or self._unpaired()):
            return
        failed = self._failed()
        terminalreporter.write_sep("=", "aiotbench A/B (interleaved, same machine)", red=failed, green=not failed)
        from ..report.table import wrap

        verdicts = [piece for line in self.verdict_lines() + ([self._summary_problem] if self._summary_problem else [])
                    for piece in wrap(line.strip(), line[:len(line) - len(line.lstrip())], "      ")]
        for line in ab_lines(self._pairs()) + verdicts:
            terminalreporter.write_line(line)
