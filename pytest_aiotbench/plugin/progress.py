"""Live progress of a long case (images done, ETA) on a terminal, and one summary line per case in logs.

On a TTY the text is written after whatever pytest has on the current line (the file name and its dots, also
with ``-q``) and erased with backspaces, through the terminal writer's raw output, so pytest's own line
bookkeeping is untouched; capture is suspended only for that write. Updates come from the untimed step between
two images, at most every ``INTERVAL`` seconds: the timed call never pays for them. Not on a TTY (CI logs), or on
an xdist worker, nothing is shown live; instead each case ends with one line (not with ``-q``).
"""

from __future__ import annotations

from time import monotonic

INTERVAL = 0.5  # seconds between two live updates
MIN_ROOM = 24  # characters the line must have left for the live text; else nothing is shown live


def _fmt_seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 10 else f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


class CaseProgress:
    def __init__(self, config, label: str) -> None:
        self.label = label
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        self._capman = config.pluginmanager.get_plugin("capturemanager")
        worker = hasattr(config, "workerinput")
        self._tw = reporter._tw if reporter is not None else None
        self.live = bool(reporter is not None and reporter.isatty() and not worker)
        self.log_lines = bool(reporter is not None and not reporter.isatty() and not worker
                              and config.get_verbosity() >= 0)
        self._reporter = reporter
        self._shown = 0  # characters of live text currently on the terminal
        self._start = self._last = None

    def _uncaptured(self, write) -> None:
        """Run ``write`` with pytest's capture suspended: during a test, fd 1 goes to the capture file."""
        if self._capman is not None:
            with self._capman.global_and_fixture_disabled():
                write()
        else:
            write()

    def _write(self, text: str) -> None:
        self._uncaptured(lambda: self._tw.write_raw(text, flush=True))

    def update(self, done: int, total: int) -> None:
        """Called between images (untimed); cheap when there is nothing to show."""
        if not self.live or done < 0:  # done < 0: still in the warmup rounds
            return
        now = monotonic()
        if self._start is None:
            self._start = self._last = now
            return
        if now - self._last < INTERVAL and done < total:
            return
        self._last = now
        eta = (now - self._start) / max(done, 1) * (total - done)
        text = f" [{self.label}: {done}/{total} images, ETA {_fmt_seconds(eta)}]"
        room = self._tw.fullwidth - self._tw.width_of_current_line - 1
        if room < MIN_ROOM:
            return
        text = text[:room]
        pad = max(self._shown - len(text), 0)
        self._write("\b" * self._shown + text + " " * pad + "\b" * pad)
        self._shown = len(text)

    def clear(self) -> None:
        if self.live and self._shown:
            self._write("\b" * self._shown + " " * self._shown + "\b" * self._shown)
            self._shown = 0
        self._start = None

    def finish(self, summary: str) -> None:
        """End of the case: erase the live text; in logs, print the case's one-line summary."""
        self.clear()
        if self.log_lines:
            def line():
                from ..report.table import wrap

                self._reporter.ensure_newline()
                for text in wrap(f"aiotbench: {summary}", more="    "):  # fits COLUMNS, like the summary
                    self._reporter.write_line(text)

            self._uncaptured(line)


def case_summary(entry: dict, seconds: float) -> str:
    lat = entry.get("latency_ms") or {}
    top1 = "n/a" if entry.get("top1") is None else f"{entry['top1']:.1%}"
    from ..verdicts.validity import label

    return (f"{entry['id']}: {entry['images']} images in {_fmt_seconds(seconds)}, median "
            f"{lat.get('median', float('nan')):.3g} ms, p90 {lat.get('p90', float('nan')):.3g} ms, top-1 {top1}, "
            f"latency {label(entry.get('validity'))}")
