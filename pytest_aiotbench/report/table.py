"""Terminal summary: one row per case, grouped by model, then the device score."""

from __future__ import annotations

import shutil
import textwrap
from itertools import groupby

from ..run.emulation import EMULATED_NOTE, emulated_ids
from ..frameworks.coverage import describe_gap
from . import columns as registry


def is_offline(report: dict) -> bool:
    """An offline-scenario run (run/offline.py): its table shows throughput instead of latency."""
    return (report.get("settings") or {}).get("scenario") == "offline" or any(
        c.get("scenario") == "offline" for c in report.get("cases") or [])


def terminal_width() -> int:
    """The terminal's width as pytest sees it (``COLUMNS`` first; 80 when not a terminal)."""
    return max(40, shutil.get_terminal_size().columns)


def wrap(text: str, indent: str = "", more: str | None = None, width: int | None = None) -> list[str]:
    """``text`` as lines that fit the terminal; continuation lines indented by ``more`` (default: two more)."""
    return textwrap.wrap(text, width or terminal_width(), initial_indent=indent,
                         subsequent_indent=indent + "  " if more is None else more, break_on_hyphens=False,
                         break_long_words=False) or [indent]  # a path or case id longer than a line stays whole


def render_summary(report: dict) -> list[str]:
    cases = report["cases"]
    if not cases:
        return []
    offline = is_offline(report)
    columns = registry.for_view(registry.OFFLINE if offline else registry.TABLE)
    headers = [column.header for column in columns]
    rows = []
    for model, group in groupby(sorted(cases, key=lambda c: c["model"]), key=lambda c: c["model"]):
        rows.append((model,))
        rows += [tuple(column.text_cell(c) for column in columns) for c in group]
    widths = [max(len(str(r[i])) for r in rows if len(r) > 1) for i in range(len(headers))]
    widths = [max(w, len(h)) for w, h in zip(widths, headers)]
    ds = report["dataset"]
    lines = ["", *wrap(f"AIoTBench results ({ds['images']} images, {ds['kind']}, "
                       f"{report['device'].get('target', '?')}, {report['settings']['threads']} thread(s), "
                       f"warmup {report['settings']['warmup']}{', offline scenario' if offline else ''})")]
    lines.append("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths))))
    for r in rows:
        if len(r) == 1:
            lines.append(r[0])
        else:
            lines.append("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
    invalid = [c for c in cases if (c.get("validity") or {}).get("valid") is False]
    if invalid:
        lines += wrap("INVALID throughput (README, Offline scenario): the machine was busy during these" if offline
                      else "INVALID latency (README, Timing): cannot judge a latency change from these")
        for c in invalid:  # one reason a line, each wrapped to the terminal
            lines.append(f"  {c['id']}:")
            for reason in c["validity"]["reasons"]:
                lines += wrap(reason, "    ")
    spread = [c for c in cases if (c.get("repeats") or {}).get("n", 1) > 1]
    if spread:
        lines.append("Repeats (median of the repeat medians; spread = (max - min) / median):")
        for c in spread:
            lines += wrap(f"{c['id']}: {c['repeats']['measured']}/{c['repeats']['n']} repeats, median "
                          f"{c['repeats']['median_of_medians_ms']:.3g} ms, spread {c['repeats']['spread']:.1%}", "  ")
    if any(c.get("memory") for c in cases):
        lines += wrap("MB: peak resident memory of the case above its process before prepare (README, Memory)")
        lines += [line for c in cases if (c.get("memory") or {}).get("reason") and c.get("latency_ms")
                  for line in wrap(f"{c['id']}: memory {c['memory']['reason']}", "  ")]
    lines += coverage_notes(cases)
    score = report["score"]
    if emulated_ids(cases):
        lines += wrap(f"* {EMULATED_NOTE}")
    if offline:
        lines += [line for c in cases if (c.get("offline") or {}).get("batch_note")
                  for line in wrap(f"! {c['id']}: {c['offline']['batch_note']}", "  ")]
        lines += offline_score_lines(cases)
    elif score["vips"] is None:
        lines.append("Device score: n/a (no case was scored for accuracy)")
    else:
        vops = f", VOPS {score['vops']:.1f}" if score["vops"] is not None else ""
        partial = f" [partial: {'; '.join(score.get('partial_reasons', []))}]" if score["partial"] else ""
        lines += wrap(f"Device score: VIPS {score['vips']:.1f}{vops} over {score['cases']} case(s){partial}")
    if not ds["labeled"]:
        lines += wrap("Accuracy n/a: no dataset configured. Point --aiotbench-dataset at an ImageNet val tree "
                      "(one folder per synset) or a folder with labels.csv to measure accuracy and VIPS.")
    elif ds.get("note"):
        lines += wrap(f"Dataset: {ds['note']}")
    return lines


def offline_score_lines(cases: list[dict]) -> list[str]:
    """An offline run has no AIoTBench (single-stream) device score; its own sum of offline VIPS is shown as such."""
    scored = [c["offline"]["vips"] for c in cases if (c.get("offline") or {}).get("vips") is not None]
    total = f"offline VIPS {sum(scored):.1f} over {len(scored)} case(s)" if scored else "offline VIPS n/a"
    return wrap(f"Device score: n/a (single-stream only; this run is offline: {total})")


def coverage_notes(cases: list[dict]) -> list[str]:
    """A line per case whose ops do not all run in the accelerated delegate: its latency is not the framework's
    best, and the reader must see why next to the number."""
    gaps = [(c["id"], describe_gap((c.get("runtime") or {}).get("coverage"))) for c in cases]
    return [line for case, gap in gaps if gap for line in wrap(f"! {case}: {gap}", "  ")]


def render_farm(report: dict) -> list[str]:
    """The device ranking of a farm run: one line per device, best VIPS first."""
    lines = ["", "Device ranking (sum of VIPS over each device's scored cases)"]
    for place, device in enumerate(report["ranking"], start=1):
        score, facts = report["by_device"][device], report["devices"].get(device, {})
        name = facts.get("model") or facts.get("name") or ""
        vips = "n/a" if score["vips"] is None else f"{score['vips']:.1f}"
        lines += wrap(f"{place}. {device} {name}: VIPS {vips} over {score['cases']} case(s)"
                      + (" [partial]" if score["partial"] else ""))
    return lines
