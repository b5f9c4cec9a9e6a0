"""``aiotbench report RUN.json [BASE.json] -o report.html``: one self-contained HTML page.

Charts are PNGs rendered with matplotlib (the optional ``plot`` extra) and embedded as base64 data URIs, so the
page can be mailed or archived as CI artifact without companion files.
"""

from __future__ import annotations

import argparse
import base64
import io
from html import escape
from pathlib import Path
from typing import Sequence

from ..inputs.limits import Limit, parse_limits
from .compare import Comparison, compare_reports, verdict
from ..frameworks.coverage import describe_gap
from .read import ReportError, cli_command, describe_dataset, load_report
from .storage import ReportPathError, check_writable
from ..files import write_text_atomic

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]  # matplotlib tab10, minus the greys used for the base run
PLOT_HINT = "matplotlib is needed for HTML reports: pip install 'pytest-aiotbench[plot]'"


def require_matplotlib() -> None:
    """Fail early, with the install line, when the ``plot`` extra is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ReportError(PLOT_HINT) from None


# --------------------------------------------------------------------------------------------------- figures

def _measured(cases: list[dict]) -> list[dict]:
    """Cases placeable on the accuracy/latency plane."""
    return [c for c in cases if c.get("top1") is not None and c.get("latency_ms")]


def pareto_front(cases: list[dict]) -> list[dict]:
    """Cases no other case beats on both axes (lower mean latency, higher top-1), fastest first."""
    front, best_top1 = [], float("-inf")
    for case in sorted(_measured(cases), key=lambda c: (c["latency_ms"]["mean"], -c["top1"])):
        if case["top1"] > best_top1:
            front.append(case)
            best_top1 = case["top1"]
    return front


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig, fig.add_subplot()


def _png_data_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _framework_colors(cases: list[dict]) -> dict[str, str]:
    frameworks = list(dict.fromkeys(c["framework"] for c in cases))
    return {fw: PALETTE[i % len(PALETTE)] for i, fw in enumerate(frameworks)}


def accuracy_latency_chart(run: dict, base: dict | None = None) -> str:
    """Top-1 vs mean latency, one point per case, with the Pareto front; base run's points hollow, arrowed."""
    cases = _measured(run["cases"])
    colors = _framework_colors(cases)
    fig, ax = _new_figure(8.5, 5.2)
    for framework, color in colors.items():
        points = [c for c in cases if c["framework"] == framework]
        ax.scatter([c["latency_ms"]["mean"] for c in points], [c["top1"] * 100 for c in points], s=46,
                   color=color, label=framework, zorder=3)
    for case in cases:
        ax.annotate(case["id"], (case["latency_ms"]["mean"], case["top1"] * 100), textcoords="offset points",
                    xytext=(5, 4), fontsize=7, color="#333")
    front = pareto_front(cases)
    if len(front) > 1:
        ax.step([c["latency_ms"]["mean"] for c in front], [c["top1"] * 100 for c in front], where="post",
                color="#555", linestyle="--", linewidth=1, label="Pareto front", zorder=2)
    if base is not None:
        old = {c["id"]: c for c in _measured(base["cases"])}
        ax.scatter([c["latency_ms"]["mean"] for c in old.values()], [c["top1"] * 100 for c in old.values()],
                   s=46, facecolors="none", edgecolors="#888", label="base run", zorder=2)
        for case in cases:
            if case["id"] in old:
                ax.annotate("", xy=(case["latency_ms"]["mean"], case["top1"] * 100),
                            xytext=(old[case["id"]]["latency_ms"]["mean"], old[case["id"]]["top1"] * 100),
                            arrowprops={"arrowstyle": "->", "color": "#999", "linewidth": 0.8})
    ax.margins(x=0.15, y=0.08)  # room for the case labels at the edges
    ax.set_xlabel("mean latency per image (ms)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Accuracy vs latency (up and left is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _png_data_uri(fig)


def vips_chart(run: dict) -> str:
    """VIPS per model, one bar per framework/quantization variant."""
    cases = [c for c in run["cases"] if c.get("vips") is not None]
    models = list(dict.fromkeys(c["model"] for c in cases))
    variants = list(dict.fromkeys(f"{c['framework']} {c['quant']}".strip() for c in cases))
    fig, ax = _new_figure(8.5, 4.2)
    labelled = set()
    for position, model in enumerate(models):
        # Only the variants this model has, centred on its tick: no gaps for variants it lacks.
        present = [c for v in variants for c in cases
                   if c["model"] == model and f"{c['framework']} {c['quant']}".strip() == v]
        width = min(0.8 / len(present), 0.3)  # a lone bar stays a bar, not a wall
        for index, case in enumerate(present):
            variant = f"{case['framework']} {case['quant']}".strip()
            bars = ax.bar(position + width * (index + 0.5 - len(present) / 2), case["vips"], width=width * 0.95,
                          color=PALETTE[variants.index(variant) % len(PALETTE)],
                          label=None if variant in labelled else variant)
            labelled.add(variant)
            ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=2)
    ax.set_xticks(range(len(models)), models, rotation=20 if len(models) > 4 else 0, ha="right" if len(models) > 4 else "center")
    ax.set_ylabel("VIPS (top-1 / mean s)")
    ax.set_title("VIPS by model and framework (higher is better)")
    ax.grid(axis="y", alpha=0.3)
    handles, names = ax.get_legend_handles_labels()  # legend in variant order, not first-drawn order
    order = sorted(range(len(names)), key=lambda i: variants.index(names[i]))
    ax.legend([handles[i] for i in order], [names[i] for i in order], fontsize=8)
    return _png_data_uri(fig)


def _timed(cases: list[dict]) -> list[dict]:
    """Cases with a latency, scored or not (random-weight zoo cases have no accuracy but a comparable latency)."""
    return [c for c in cases if (c.get("latency_ms") or {}).get("median") or (c.get("latency_ms") or {}).get("mean")]


def framework_latency_chart(run: dict) -> str:
    """Median latency per model, one bar per framework/precision variant, log scale (models differ 20x)."""
    cases = _timed(run["cases"])
    models = list(dict.fromkeys(c["model"] for c in cases))
    variants = sorted(dict.fromkeys(f"{c['framework']} {c['quant']}".strip() for c in cases))
    fig, ax = _new_figure(max(8.5, 1.2 * len(models) + 3), 4.6)
    labelled = set()
    for position, model in enumerate(models):
        present = sorted((c for c in cases if c["model"] == model), key=lambda c: f"{c['framework']} {c['quant']}")
        width = min(0.84 / len(present), 0.3)
        for index, case in enumerate(present):
            variant = f"{case['framework']} {case['quant']}".strip()
            ms = case["latency_ms"].get("median") or case["latency_ms"]["mean"]
            ax.bar(position + width * (index + 0.5 - len(present) / 2), ms, width=width * 0.95,
                   color=PALETTE[variants.index(variant) % len(PALETTE)],
                   hatch=None if variants.index(variant) < len(PALETTE) else "//",
                   label=None if variant in labelled else variant)
            labelled.add(variant)
    ax.set_yscale("log")
    ax.set_xticks(range(len(models)), models, rotation=20 if len(models) > 4 else 0,
                  ha="right" if len(models) > 4 else "center")
    ax.set_ylabel("median latency per image (ms, log scale)")
    ax.set_title("Latency by model and framework (lower is better; every timed case, scored or not)")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(variants) > 8 else 1, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png_data_uri(fig)


# ------------------------------------------------------------------------------------------------------ page

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;font-size:13px}.facts dt{color:#666}
.facts dd{margin:0;overflow-wrap:anywhere}table{border-collapse:collapse;font-size:13px;width:100%}
table.settings{width:auto}table.settings td{text-align:left;padding:1px 10px 1px 0;border:0}
th,td{padding:4px 6px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th{background:#f6f6f6;position:sticky;top:0}td:first-child,th:first-child{text-align:left}
td.text,th.text{text-align:left}td.wrap{white-space:normal;overflow-wrap:anywhere;min-width:9em}
td.id{white-space:normal;overflow-wrap:anywhere;min-width:10em}
.passed,.valid,.no-regression{color:#1a7f37}.failed,.error,.coverage-gap,.invalid,.regression{color:#c62828;font-weight:600}
.cannot-judge{color:#b26a00;font-weight:600}
.skipped{color:#888}.regressed{background:#fde2e2;color:#b71c1c;font-weight:600}.noise{background:#fff4d6}
.score{font-size:18px;font-weight:600}img{max-width:100%;height:auto;border:1px solid #eee}
pre{background:#f6f6f6;padding:10px;overflow-x:auto;font-size:12px;white-space:pre-wrap}.note{color:#666}
"""


def _fmt(value, spec: str = ".1f", scale: float = 1.0) -> str:
    return "&ndash;" if value is None else format(value * scale, spec)


def _plain(value) -> str:
    """A report value as a reader writes it: lists as comma lists, nested tables as ``key: value``, no Python
    reprs (no quotes, brackets, None or True)."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value) or "\u2013"
    return str(value)


def _settings_table(settings: dict) -> str:
    rows = "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(_plain(v))}</td></tr>" for k, v in settings.items())
    return f'<table class="settings">{rows}</table>'


def _facts(run: dict) -> str:
    device = run["device"]
    machine = run.get("machine") or {}
    score = run["score"]
    rows = {
        "device": ", ".join(f"{k}={_plain(v)}" for k, v in device.items() if v not in (None, "", [])),
        "machine": ", ".join(f"{k}={_plain(v)}" for k, v in machine.items()
                             if isinstance(v, (str, int, float)))[:300],
        "dataset": describe_dataset(run) + ("" if run["dataset"].get("labeled") else " (unlabeled)"),
        "packages": ", ".join(f"{k} {v}" for k, v in run["packages"].items() if v),
        "created": run.get("created", ""),
        "file": run.get("origin", ""),
    }
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in rows.items() if v)
    body += f"<dt>settings</dt><dd>{_settings_table(run['settings'])}</dd>"
    reasons = score.get("partial_reasons") or ["not every canonical case or image"]
    partial = f" &middot; partial: {escape('; '.join(reasons))}" if score.get("partial") else ""
    return (f'<p class="score">AI score: {_fmt(score.get("vips"))} VIPS &middot; {_fmt(score.get("vops"))} VOPS '
            f'over {score.get("cases")} case(s){partial}</p><dl class="facts">{body}</dl>')


def _validity_word(case: dict) -> str:
    validity = case.get("validity")
    if not validity or not case.get("latency_ms"):
        return ""
    return "VALID" if validity["valid"] else "INVALID"


def _verdict_section(run: dict, comparison: Comparison | None) -> str:
    """What a CI reader looks for first: the A/B verdicts, whether the latencies can be judged, the comparison's
    verdict."""
    parts = []
    pairs = [c for c in run["cases"] if c.get("ab")]
    if pairs:
        rows = []
        for case in pairs:
            pair, ratio = case["ab"], case["ab"]["ratio"]
            num = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
            details = [f"{j['metric']}: {j['verdict']}: {j['detail']}" for j in pair.get("judgements", [])]
            if not pair["pair_validity"]["valid"]:
                details.append("pairing INVALID: " + "; ".join(pair["pair_validity"]["reasons"]))
            verdict_text = pair["verdict"]
            rows.append(
                f'<tr data-ab="{escape(case["id"])}"><td class="id">{escape(case["id"])}</td>'
                f'<td class="text wrap">{escape(pair["baseline"].get("file", ""))}</td>'
                f'<td>x{num(ratio.get("median"))} ({num(ratio.get("low"))}&ndash;{num(ratio.get("high"))})</td>'
                f'<td>{_fmt(pair["baseline"].get("top1"), scale=100)} &rarr; {_fmt(case.get("top1"), scale=100)}</td>'
                f'<td class="text {escape(verdict_text.replace(" ", "-"))}">{escape(verdict_text.upper())}</td>'
                f'<td class="text wrap">{escape("; ".join(details))}</td></tr>')
        parts.append('<h3>A/B against the baseline (interleaved, same machine)</h3><table id="ab"><thead><tr>'
                     '<th>case</th><th class="text">baseline</th><th>latency NEW/BASE (95%)</th><th>top-1 %</th>'
                     '<th class="text">verdict</th><th class="text">why</th></tr></thead>'
                     f'<tbody>{"".join(rows)}</tbody></table>')
    timed = [c for c in run["cases"] if _validity_word(c)]
    if timed:
        invalid = [c for c in timed if not c["validity"]["valid"]]
        head = (f"Latency measurements: {len(timed) - len(invalid)} of {len(timed)} VALID" +
                (": an INVALID latency cannot be judged against another run (README, Timing)" if invalid else ""))
        rows = "".join(f'<tr data-validity="{escape(c["id"])}"><td class="id">{escape(c["id"])}</td>'
                       f'<td class="text invalid">INVALID</td>'
                       f'<td class="text wrap">{escape("; ".join(c["validity"]["reasons"]))}</td></tr>'
                       for c in invalid)
        parts.append(f'<p id="validity" class="{"invalid" if invalid else "valid"}">{escape(head)}</p>'
                     + (f'<table id="invalid"><tbody>{rows}</tbody></table>' if invalid else ""))
    if comparison is not None:
        parts.append(f'<pre id="comparison-verdict">{escape(verdict(comparison))}</pre>')
    return "<h2>Verdict</h2>" + "".join(parts) if parts else ""


def _coverage_cell(coverage: dict | None) -> str:
    """Full delegation shows the accelerator; a gap is flagged ("9 ops outside XNNPACK ...")."""
    gap = describe_gap(coverage)
    if gap:
        return f'<td class="text wrap coverage-gap">&#9888; {escape(gap)}</td>'
    done = f"all {coverage.get('total_ops')} ops in {coverage['accelerator']}" if coverage else ""
    return f'<td class="text wrap">{escape(done)}</td>'


def _memory_cell(case: dict) -> str:
    """Peak resident MB (prepare's share in the tooltip); n/a with the reason where not exposed, never 0."""
    memory = case.get("memory") or {}
    if memory.get("peak_mb") is None:
        why = memory.get("reason") or ("not measured" if case.get("latency_ms") else "")
        return f'<td class="memory" title="{escape(why)}">{"n/a" if memory else ""}</td>'
    prepare = memory.get("prepare_mb")
    tip = (f"prepare {prepare:.1f} MB; " if prepare is not None else "") + f"measured in a {memory.get('isolation')}"
    return f'<td class="memory" title="{escape(tip)}">{memory["peak_mb"]:.1f}</td>'


def _cases_table(run: dict) -> str:
    front = {c["id"] for c in pareto_front(run["cases"])}
    # The id says model, framework and quantization; fits 1280 px with the coverage text wrapping.
    headers = ["case", "status", "latency", "images", "top-1 %", "top-5 %", "median ms", "mean ms", "p90 ms", "peak MB",
               "VIPS", "VOPS", "Pareto", "coverage"]
    head = "".join(f'<th class="{"text" if i < 3 or h == "coverage" else ""}">{h}</th>' for i, h in enumerate(headers))
    rows = []
    for case in run["cases"]:
        lat = case.get("latency_ms") or {}
        reason = f' title="{escape(case["reason"])}"' if case.get("reason") else ""
        validity = _validity_word(case)
        why = f' title="{escape("; ".join(case["validity"]["reasons"]))}"' if validity == "INVALID" else ""
        cells = [
            f'<td class="id">{escape(case["id"])}</td>',
            f'<td class="text {escape(case["status"])}"{reason}>{escape(case["status"])}</td>',
            f'<td class="text {validity.lower()}"{why}>{validity}</td>',
            f'<td>{case.get("images", "")}</td>', f'<td>{_fmt(case.get("top1"), scale=100)}</td>',
            f'<td>{_fmt(case.get("top5"), scale=100)}</td>', f'<td>{_fmt(lat.get("median"), ".2f")}</td>',
            f'<td>{_fmt(lat.get("mean"), ".2f")}</td>', f'<td>{_fmt(lat.get("p90"), ".2f")}</td>',
            _memory_cell(case), f'<td>{_fmt(case.get("vips"))}</td>', f'<td>{_fmt(case.get("vops"))}</td>',
            f'<td>{"&#9733;" if case["id"] in front else ""}</td>',
            _coverage_cell((case.get("runtime") or {}).get("coverage")),
        ]
        rows.append(f'<tr data-case="{escape(case["id"])}">{"".join(cells)}</tr>')
    return f'<table id="cases"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _comparison_section(comparison: Comparison) -> str:
    columns = comparison.columns
    head = "".join(f"<th>{escape(m)} ({'pt' if m.startswith('top') else '%'})</th>" for m in columns)
    rows = []
    for case in comparison.cases:
        cells = []
        for metric in columns:
            delta = case.deltas.get(metric)
            css = "regressed" if delta and delta.regressed else "noise" if delta and delta.within_noise else ""
            cells.append(f'<td class="{css}">{escape(delta.cell()) if delta else "&ndash;"}</td>')
        notes = "; ".join(case.notes + ([case.lost] if case.lost else []))
        rows.append(f'<tr data-compare="{escape(case.case_id)}"><td class="id">{escape(case.case_id)}</td>{"".join(cells)}'
                    f'<td class="text wrap">{escape(notes)}</td></tr>')
    lists = "".join(f"<p>{title}: {escape(', '.join(ids))}</p>" for title, ids in (
        ("Only in base", comparison.only_base), ("Only in this run", comparison.only_new),
        ("Not measured", comparison.unmeasured)) if ids)
    warnings = "".join(f'<p class="failed">{escape(w)}</p>' for w in comparison.warnings)
    return (f'<h2>Comparison with {escape(comparison.base.get("origin", "base"))}</h2>{warnings}'
            f'<table id="comparison"><thead><tr><th>case</th>{head}<th class="text">notes</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>{lists}<pre>{escape(verdict(comparison))}</pre>')


def render_html(run: dict, base: dict | None = None, limits: Sequence[Limit] = (),
                allow_mismatch: bool = False) -> str:
    require_matplotlib()
    comparison = compare_reports(base, run, limits, allow_mismatch) if base is not None else None
    title = f"AIoTBench report: {run['device'].get('name') or run['device'].get('target')}"
    charts = []
    if _measured(run["cases"]):
        charts.append(f'<img id="chart-accuracy-latency" alt="Top-1 accuracy vs mean latency with Pareto front" '
                      f'src="{accuracy_latency_chart(run, base)}">')
    else:
        charts.append('<p class="note">No accuracy/latency chart: no case has both top-1 and latency '
                      '(unlabeled dataset or no case ran).</p>')
    if any(c.get("vips") is not None for c in run["cases"]):
        charts.append(f'<img id="chart-vips" alt="VIPS by model and framework" src="{vips_chart(run)}">')
    else:
        charts.append('<p class="note">No VIPS chart: VIPS needs a labeled dataset.</p>')
    if len({c["framework"] for c in _timed(run["cases"])}) > 1:
        charts.append(f'<img id="chart-framework-latency" alt="Median latency by model and framework (log scale)" '
                      f'src="{framework_latency_chart(run)}">')
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>", _facts(run), _verdict_section(run, comparison),
        "<h2>Charts</h2>", *charts,
        "<h2>Cases</h2>", _cases_table(run),
        _comparison_section(comparison) if comparison else "",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_html(path, run: dict, base: dict | None = None, limits: Sequence[Limit] = (),
               allow_mismatch: bool = False) -> None:
    write_text_atomic(path, render_html(run, base, limits, allow_mismatch))


# ------------------------------------------------------------------------------------------------------- CLI

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="self-contained HTML report of a run (needs the 'plot' extra)",
        description="Write one HTML page with charts (embedded PNG), the case table and, given BASE.json, the "
                    "comparison against it. Exit 2 on unusable input or when matplotlib is missing.")
    parser.add_argument("run", metavar="RUN.json")
    parser.add_argument("base", metavar="BASE.json", nargs="?")
    parser.add_argument("-o", "--output", default="report.html", metavar="FILE", help="default: report.html")
    parser.add_argument("--fail-on", action="append", default=[], metavar="METRIC:LIMIT",
                        help="limits to mark regressions in the comparison (as in compare; exit code unaffected)")
    parser.add_argument("--allow-mismatch", action="store_true", help="compare against a base on other images")
    parser.set_defaults(func=_run)


@cli_command("report")
def _run(args: argparse.Namespace) -> int:
    require_matplotlib()  # before reading anything: the fix is an install, whatever the files hold
    output = Path(args.output)
    if output.is_dir():
        raise ReportError(f"-o {args.output}: is a directory; give a file name, e.g. {output / 'report.html'}")
    try:  # before rendering: the same check the plugin makes for --aiotbench-html
        check_writable(output)
    except ReportPathError as exc:
        raise ReportError(f"-o {exc}") from None
    limits = parse_limits(args.fail_on)
    run = load_report(args.run)
    base = load_report(args.base) if args.base else None
    write_html(args.output, run, base, limits, args.allow_mismatch)
    print(f"wrote {args.output}")
    return 0
