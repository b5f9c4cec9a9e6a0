"""``aiotbench rank A.json B.json ...``: a leaderboard of devices by AI score (sum of VIPS, sum of VOPS).

Scores are sums over cases, so two runs are only comparable over the same case set and the same images: the
command refuses (exit 2) otherwise, unless ``--allow-mismatch``, which ranks on the cases all runs share and
says so. A run with cases that produced no VIPS (skipped, error) is flagged partial: its sum is understated.
``--speed sustained`` scores each case at its sustained speed (``--aiotbench-sustain``: the median latency of the
last time window, after the device has run the case for the whole duration) instead of its cold mean latency.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..inputs.limits import scenario
from ..run.environment import machine_differences
from .read import ReportError, cli_command, load_report, score_of, text_table
from ..verdicts.score import vips, vops

SPEEDS = ("cold", "sustained")


def sustained_case(case: dict) -> dict:
    """The case scored at its sustained speed: VIPS from the last time window's median latency (no VIPS when the
    case had no sustained run, so the run is flagged partial)."""
    rows = [w for w in ((case.get("sustained") or {}).get("windows") or ()) if w.get("median_ms")]
    value = vips(case.get("top1"), rows[-1]["median_ms"] / 1e3) if rows else None
    return {**case, "vips": value, "vops": vops(value, case.get("gflops"))}


def _refuse_repeats(paths: list[str]) -> None:
    """One run given twice (the same file, a link to it, or a byte-identical copy) would be ranked against
    itself: refused, naming both arguments."""
    import hashlib

    seen: dict[tuple, str] = {}
    for path in paths:
        try:
            keys = [("file", Path(path).resolve()), ("content", hashlib.sha256(Path(path).read_bytes()).digest())]
        except OSError:
            continue  # load_report says what is wrong with it
        for key in keys:
            if key in seen:
                how = "the same file" if key[0] == "file" else "identical copies (one run)"
                raise ReportError(f"{seen[key]} and {path} are {how}: give each run once")
            seen[key] = path


@dataclass
class Entry:
    report: dict
    label: str
    cases: list[dict]  # the ranked case set (all of the run's cases, or the shared ones with --allow-mismatch)

    @property
    def score(self) -> dict:
        return score_of(self.cases)

    @property
    def unfinished(self) -> bool:
        """The run stopped before its end (Ctrl-C, killed): its sum lacks the cases it never reached."""
        return self.report.get("finished") is False

    @property
    def partial(self) -> bool:
        return self.score["partial"] or bool(self.report["score"].get("partial")) or self.unfinished

    @property
    def missing(self) -> list[str]:
        return list(dict.fromkeys(self.score["missing"] + list(self.report["score"].get("missing") or [])))


@dataclass
class Ranking:
    entries: list[Entry]  # best first
    by: str
    notes: list[str]  # what --allow-mismatch let through
    speed: str = "cold"


def rank_reports(reports: list[dict], by: str = "vips", allow_mismatch: bool = False,
                 speed: str = "cold") -> Ranking:
    if len(reports) < 2:
        raise ReportError("rank needs at least two result files")
    if speed == "sustained":
        if not any(c.get("sustained") for r in reports for c in r["cases"]):
            raise ReportError("cannot rank by sustained speed: no run has a sustained measurement "
                              "(run with --aiotbench-sustain DURATION)")
        reports = [{**r, "cases": [sustained_case(c) for c in r["cases"]]} for r in reports]
    offline = [_name(r) for r in reports if any(scenario(c) == "offline" for c in r["cases"])]
    if offline:  # offline cases carry no single-stream VIPS: the runs came out unranked "no result" rows
        raise ReportError(f"cannot rank: {', '.join(offline)} ran the offline scenario, which has no AIoTBench "
                          "score (single-stream VIPS); rank single-stream runs, compare offline runs with "
                          "`aiotbench compare --fail-on images_per_s:-5%`")
    notes = []
    fingerprints = {r["dataset"].get("fingerprint") for r in reports}
    if len(fingerprints) > 1:
        message = "runs used different datasets (" + ", ".join(
            f"{_name(r)}: {str(r['dataset'].get('fingerprint'))[:19]}" for r in reports) + ")"
        if not allow_mismatch:
            raise ReportError(f"cannot rank: {message}; use --allow-mismatch to rank anyway")
        notes.append(f"{message}: accuracy, hence VIPS, is not comparable")
    case_sets = [[case["id"] for case in r["cases"]] for r in reports]
    union = list(dict.fromkeys(i for ids in case_sets for i in ids))
    common = [i for i in union if all(i in ids for ids in case_sets)]
    if len(common) < len(union):
        differences = "; ".join(f"{_name(r)} lacks {', '.join(i for i in union if i not in ids)}"
                                for r, ids in zip(reports, case_sets) if set(ids) != set(union))
        if not allow_mismatch:
            raise ReportError(f"cannot rank: runs differ in case set ({differences}); "
                              "use --allow-mismatch to rank on the cases they share")
        if not common:
            raise ReportError(f"cannot rank: the runs have no case in common ({differences})")
        notes.append(f"case sets differ ({differences}): ranked on the {len(common)} case(s) all runs share")
    labels = _labels(reports)
    # Same-looking machines that differ in ISA features or CPU: said before the scores are read as a verdict.
    for report, label in list(zip(reports, labels))[1:]:
        notes += [f"{labels[0]} vs {label}: {d}" for d in machine_differences(reports[0], report, (labels[0], label))]
    entries = [Entry(r, label, [c for c in r["cases"] if c["id"] in common]) for r, label in zip(reports, labels)]
    # Sort by score, best first; runs without any score go last. Ties keep the order given.
    entries.sort(key=lambda e: -(e.score[by] if e.score[by] is not None else float("-inf")))
    return Ranking(entries, by, notes, speed)


def _name(report: dict) -> str:
    return Path(report.get("origin", "report")).name


def _labels(reports: list[dict]) -> list[str]:
    """Device names; runs of the same device are told apart by their file name."""
    names = [str(r["device"].get("name") or r["device"].get("target") or "?") for r in reports]
    counts = Counter(names)
    return [f"{n} [{_name(r)}]" if counts[n] > 1 else n for n, r in zip(names, reports)]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def format_ranking(ranking: Ranking) -> str:
    lines = [f"NOTE: {note}" for note in ranking.notes]
    rows = []
    for place, entry in enumerate(ranking.entries, 1):
        score = entry.score
        measured = score["cases"] - len(score["missing"])
        missing = entry.missing
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        flag = (f"PARTIAL (no result: {shown})" if missing else "PARTIAL") if entry.partial else ""
        flag = f"UNFINISHED run, {flag}" if entry.unfinished else flag
        rows.append([str(place), entry.label, _fmt(score["vips"]), _fmt(score["vops"]),
                     f"{measured}/{score['cases']}", flag, _name(entry.report)])
    how = ", sustained speed: last time window's median latency" if ranking.speed == "sustained" else ""
    lines.append(f"AI score leaderboard (by {ranking.by.upper()}, sum over cases{how})")
    lines.append(text_table(["#", "device", "VIPS", "VOPS", "cases", "flags", "file"], rows, right_from=2))
    for key, title in (("framework", "VIPS by framework"), ("model", "VIPS by model")):
        lines += ["", title + " (* best)", _breakdown(ranking.entries, key)]
    return "\n".join(lines)


def _breakdown(entries: list[Entry], key: str) -> str:
    groups = list(dict.fromkeys(case[key] for entry in entries for case in entry.cases))
    rows = []
    for group in groups:
        sums = [score_of([c for c in e.cases if c[key] == group])["vips"] for e in entries]
        best = max((s for s in sums if s is not None), default=None)
        rows.append([group] + [_fmt(s) + ("*" if s is not None and s == best and len(entries) > 1 else " ")
                               for s in sums])
    return text_table([key] + [e.label for e in entries], rows)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rank", help="leaderboard of devices by AI score",
        description="Rank runs (one per device) by the sum of VIPS (or VOPS) over the same cases and images. "
                    "Exit 2 when the runs are not comparable or a file is unusable.")
    parser.add_argument("reports", nargs="+", metavar="RUN.json")
    parser.add_argument("--by", choices=("vips", "vops"), default="vips", help="score to rank by (default vips)")
    parser.add_argument("--allow-mismatch", action="store_true",
                        help="rank runs over different case sets (on the shared cases) or datasets, saying so")
    parser.add_argument("--speed", choices=SPEEDS, default="cold",
                        help="cold: each case's mean latency (default); sustained: the last time window's median "
                             "of a --aiotbench-sustain run")
    parser.set_defaults(func=_run)


@cli_command("rank")
def _run(args: argparse.Namespace) -> int:
    reports = [load_report(p) for p in args.reports]  # a broken file is named first
    _refuse_repeats(args.reports)
    ranking = rank_reports(reports, args.by, args.allow_mismatch, args.speed)
    print(format_ranking(ranking))
    return 0
