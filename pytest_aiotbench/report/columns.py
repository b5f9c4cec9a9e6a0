"""The report columns, each declared once: its key, headers, how it reads a case entry, how it prints in the
terminal table and the HTML case table, and which views show it. The terminal table (``table.py``), the HTML case
table and the comparison tables (``compare.py``, ``html.py``) all read :data:`COLUMNS`, so a new column is one
entry here (and the schema, when it shows a new field).

The comparison views show a column's change between two runs: such a column carries the :class:`Metric` that reads
it and says which direction is worse. The gateable metrics are those of ``inputs/limits.py`` (``--fail-on``);
a limit on a metric not shown by default adds that metric's column to the comparison of that run."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any, Callable

from ..frameworks.coverage import describe_gap
from ..inputs.limits import METRICS, Metric
from ..run.emulation import is_emulated
from ..verdicts.validity import NOT_ASSESSED, case_label, label

TABLE, HTML, COMPARE = "table", "html", "compare"  # the views: terminal summary, HTML case table, comparisons
OFFLINE = "offline"  # the terminal summary of an offline run (run/offline.py): throughput instead of latency
NOT_MEASURED = "-"  # terminal: the case has no latency (skipped, error): no number was taken
NA = "n/a"  # terminal: measured, but this value does not exist (no labels: no accuracy)
HTML_NONE = "&ndash;"


@dataclass(frozen=True)
class Context:
    """What a cell may need beyond its own case: facts over the whole run."""
    pareto: frozenset[str] = frozenset()  # ids of the cases on the accuracy/latency Pareto front


@dataclass(frozen=True)
class Column:
    key: str  # for a comparable column: its metric's name (the --fail-on name)
    header: str  # terminal table header
    value: Callable[[dict], Any]  # read from a case entry
    text: Callable[[Any, dict], str]  # (value, case) -> terminal cell
    html: Callable[[Any, dict, Context], str]  # (value, case, context) -> HTML cell, the whole <td>
    html_header: str | None = None  # default: ``header``
    views: frozenset[str] = frozenset({TABLE, HTML})
    metric: Metric | None = None  # the comparison views: how a change is measured and which way is worse
    html_text: bool = False  # a text (left-aligned) column in the HTML table

    def __post_init__(self):
        if COMPARE in self.views and (self.metric is None or self.metric.name != self.key):
            raise ValueError(f"column {self.key!r}: a compared column needs the metric named {self.key!r}")

    def text_cell(self, case: dict) -> str:
        return self.text(self.value(case), case)

    def html_cell(self, case: dict, context: Context = Context()) -> str:
        return self.html(self.value(case), case, context)

    def html_head(self) -> str:
        css = ' class="text"' if self.html_text else ' class=""'
        return f"<th{css}>{escape(self.html_header or self.header)}</th>"


# ---------------------------------------------------------------------------------------------- formatting

def html_number(value, spec: str = ".1f", scale: float = 1.0) -> str:
    return HTML_NONE if value is None else format(value * scale, spec)


def validity_word(case: dict) -> str:
    """VALID / INVALID for a timed case with a validity verdict, else empty (``verdicts/validity.py`` reads it)."""
    word = case_label(case)
    return "" if word == NOT_ASSESSED else word


def _measured_text(fmt: Callable[[Any], str]) -> Callable[[Any, dict], str]:
    """Terminal: ``-`` for a case never measured, ``n/a`` for a value that does not exist, else ``fmt``."""
    return lambda value, case: NOT_MEASURED if not case.get("latency_ms") else NA if value is None else fmt(value)


def _optional_text(fmt: Callable[[Any], str]) -> Callable[[Any, dict], str]:
    return lambda value, case: NOT_MEASURED if value is None else fmt(value)


def _html_numeric(spec: str, scale: float = 1.0) -> Callable[[Any, dict, Context], str]:
    return lambda value, case, context: f"<td>{html_number(value, spec, scale)}</td>"


def _fraction(key: str, header: str, views=frozenset({TABLE, HTML, COMPARE})) -> Column:
    """An accuracy: a fraction in the entry, a percentage on screen."""
    return Column(key, header, METRICS[key].value, _measured_text(lambda v: f"{100 * v:.1f}%"),
                  _html_numeric(".1f", 100), html_header=f"{header} %", views=views, metric=METRICS[key])


def _latency(key: str, views) -> Column:
    return Column(key, f"{key} ms", METRICS[key].value, _optional_text(lambda v: f"{v:.2f}"), _html_numeric(".2f"),
                  views=views, metric=METRICS[key])


def _score(key: str, views) -> Column:
    return Column(key, key.upper(), METRICS[key].value, _optional_text(lambda v: f"{v:.1f}"), _html_numeric(".1f"),
                  views=views, metric=METRICS[key])


def _case_html(value, case, context) -> str:
    return f'<td class="id">{escape(case["id"])}</td>'


def _status_text(value, case) -> str:
    return value + (" *" if is_emulated(case) else "")


def _status_html(value, case, context) -> str:
    reason = f' title="{escape(case["reason"])}"' if case.get("reason") else ""
    return f'<td class="text {escape(value)}"{reason}>{escape(value)}</td>'


def _validity_html(value, case, context) -> str:
    why = f' title="{escape("; ".join(case["validity"]["reasons"]))}"' if value == "INVALID" else ""
    return f'<td class="text {value.lower()}"{why}>{value}</td>'


def _memory_text(peak, case) -> str:
    """Peak resident MB of a measured case; "n/a" when the machine does not expose it (never 0), "-" otherwise."""
    return NOT_MEASURED if not case.get("latency_ms") or case.get("memory") is None else NA if peak is None \
        else f"{peak:.1f}"


def _memory_html(peak, case, context) -> str:
    """Peak resident MB (prepare's share in the tooltip); n/a with the reason where not exposed, never 0."""
    memory = case.get("memory") or {}
    if peak is None:
        why = memory.get("reason") or ("not measured" if case.get("latency_ms") else "")
        return f'<td class="memory" title="{escape(why)}">{"n/a" if memory else ""}</td>'
    prepare = memory.get("prepare_mb")
    tip = (f"prepare {prepare:.1f} MB; " if prepare is not None else "") + f"measured in a {memory.get('isolation')}"
    return f'<td class="memory" title="{escape(tip)}">{peak:.1f}</td>'


def _coverage_html(coverage, case, context) -> str:
    """Full delegation shows the accelerator; a gap is flagged ("9 ops outside XNNPACK ...")."""
    gap = describe_gap(coverage)
    if gap:
        return f'<td class="text wrap coverage-gap">&#9888; {escape(gap)}</td>'
    done = f"all {coverage.get('total_ops')} ops in {coverage['accelerator']}" if coverage else ""
    return f'<td class="text wrap">{escape(done)}</td>'


# ---------------------------------------------------------------------------------------------- the registry
# One order for every view. The terminal table groups rows by model, so its case cell is framework-quant.

BOTH, ALL = frozenset({TABLE, HTML}), frozenset({TABLE, HTML, COMPARE})
COLUMNS: list[Column] = [
    Column("case", "case", lambda c: c["id"], lambda v, c: f"  {c['framework']}-{c['quant']}", _case_html,
           html_text=True, views=frozenset({TABLE, HTML, OFFLINE})),
    Column("images", "images", lambda c: c.get("images"), lambda v, c: str(v),
           lambda v, c, ctx: f"<td>{'' if v is None else v}</td>", views=frozenset({HTML})),
    _fraction("top1", "top-1"),
    _fraction("top5", "top-5"),
    Column("offline_top1", "top-1", METRICS["top1"].value, _optional_text(lambda v: f"{100 * v:.1f}%"),
           _html_numeric(".1f", 100), views=frozenset({OFFLINE})),
    Column("offline_top5", "top-5", METRICS["top5"].value, _optional_text(lambda v: f"{100 * v:.1f}%"),
           _html_numeric(".1f", 100), views=frozenset({OFFLINE})),
    Column("offline_images_per_s", "images/s", lambda c: (c.get("offline") or {}).get("images_per_s"),
           _optional_text(lambda v: f"{v:.1f}"), _html_numeric(".1f"), views=frozenset({OFFLINE})),
    Column("issued", "sessions x batch", lambda c: c.get("offline"),
           lambda v, c: f"{v['sessions']} x {v['batch']}" if v else NOT_MEASURED, _html_numeric(".0f"),
           views=frozenset({OFFLINE})),
    Column("offline_vips", "offline VIPS", lambda c: (c.get("offline") or {}).get("vips"),
           _optional_text(lambda v: f"{v:.1f}"), _html_numeric(".1f"), views=frozenset({OFFLINE})),
    Column("load", "load", lambda c: c.get("validity") if c.get("offline") else None,
           lambda v, c: label(v, with_kinds=False), _html_numeric(".0f"),
           views=frozenset({OFFLINE})),
    _latency("median", frozenset({HTML, COMPARE})),
    _latency("mean", BOTH),
    _latency("p90", ALL),
    Column("memory", "MB", METRICS["memory"].value, _memory_text, _memory_html, html_header="peak MB", views=BOTH,
           metric=METRICS["memory"]),
    _score("vips", ALL),
    _score("vops", frozenset({HTML})),
    Column("latency", "latency", validity_word, lambda v, c: v or NOT_MEASURED, _validity_html, html_text=True),
    Column("status", "status", lambda c: c["status"], _status_text, _status_html, html_text=True,
           views=frozenset({TABLE, HTML, OFFLINE})),
    Column("pareto", "Pareto", lambda c: c["id"], lambda v, c: "",
           lambda v, c, ctx: f'<td>{"&#9733;" if v in ctx.pareto else ""}</td>', views=frozenset({HTML})),
    Column("coverage", "coverage", lambda c: (c.get("runtime") or {}).get("coverage"), lambda v, c: "",
           _coverage_html, views=frozenset({HTML}), html_text=True),
]


def for_view(view: str) -> list[Column]:
    """The columns a view shows, in order (read at call time: the registry may grow)."""
    return [column for column in COLUMNS if view in column.views]


def compared_metrics() -> list[Metric]:
    """The metrics every comparison shows (before the ones its limits add)."""
    return [column.metric for column in for_view(COMPARE)]


def metric(name: str) -> Metric:
    """A comparable metric by name: a registered column's, else a gateable one (``--fail-on``)."""
    return next((c.metric for c in COLUMNS if c.metric is not None and c.key == name), None) or METRICS[name]
