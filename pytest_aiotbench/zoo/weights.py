"""Pretrained checkpoints: where torchvision publishes them, and a hash-checked, resumable download into the torch hub
cache (``<TORCH_HOME>/hub/checkpoints``, where torchvision's own loader looks).

torchvision names every checkpoint ``<name>-<sha256 prefix>.pth``; ``torch.hub`` checks a download against that
prefix (its ``HASH_REGEX``), and so does :func:`fetch`: a file whose sha256 does not start with the prefix is
removed and never used. Unlike ``torch.hub.download_url_to_file``, a dropped connection is retried and resumed with
an HTTP Range request, and a mirror can replace torchvision's host (firewalled sites; the tests' loopback server).
Standard library only; torchvision is imported only to ask its weights API for the URL.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..files import file_sha256

# torch.hub.HASH_REGEX (torch 2.x), the file-name convention torchvision's checkpoints follow; kept here so the
# build's parent process need not import torch (a test checks they agree).
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
OFFLINE_ENV = "AIOTBENCH_OFFLINE"
MIRROR_ENV = "AIOTBENCH_WEIGHTS_MIRROR"
CHUNK = 1 << 16


class FetchError(Exception):
    """A checkpoint that could not be obtained; the message is the one-line reason."""


def offline_requested(flag: bool = False) -> bool:
    return flag or os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def mirror_from(option: str | None) -> str | None:
    return option or os.environ.get(MIRROR_ENV) or None


def hash_prefix(file_name: str) -> str:
    """The sha256 prefix a checkpoint's file name promises (torchvision/torch.hub convention)."""
    match = HASH_REGEX.search(file_name)
    if not match or not match.group(1):
        raise FetchError(f"{file_name}: no '-<sha256 prefix>.' in the file name to check the download against")
    return match.group(1)


def checkpoint_url(weights_enum: str, checkpoint: str, mirror: str | None) -> str:
    """Where to download ``checkpoint`` from: ``<mirror>/<checkpoint>``, else the URL torchvision's weights API
    gives for ``<weights_enum>.IMAGENET1K_V1``."""
    if mirror:
        return mirror.rstrip("/") + "/" + checkpoint
    from .torchvision_compat import import_torchvision

    url = getattr(import_torchvision().models, weights_enum).IMAGENET1K_V1.url
    if os.path.basename(url) != checkpoint:  # a torchvision release that renamed it: its own name wins
        raise FetchError(f"torchvision now publishes {weights_enum}.IMAGENET1K_V1 as {os.path.basename(url)}, "
                         f"not {checkpoint}: update pytest_aiotbench.zoo.MODELS")
    return url


# A download slower than MIN_RATE bytes/s over any WINDOW seconds is abandoned (and resumed by the next attempt):
# a mirror that trickles a byte every few seconds never trips the socket timeout, and would hang the build forever.
MIN_RATE = 4096
WINDOW = 60.0
HEARTBEAT = 10.0  # on a pipe, a line at least this often while a download crawls: never silent


class _Progress:
    """A progress bar on a terminal; on a pipe, one line per 10 %, and one every HEARTBEAT seconds when the 10 %
    steps do not come (logs stay readable, a stalled download is never silent)."""

    def __init__(self, label: str, total: int | None, done: int, stream=None) -> None:
        self.label, self.total, self.done = label, total, done
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.t0, self.start_bytes = time.monotonic(), done
        self.next_step = 10
        self.last_draw = 0.0
        self.last_line = self.t0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.tty:  # redraw at most 10 times a second, and at the end
            if now - self.last_draw >= 0.1 or self.done == self.total:
                self.last_draw = now
                self._line("\r", "")
            return
        pct = int(100 * self.done / self.total) if self.total else -1
        if self.total and pct >= self.next_step:
            self._line("", "\n")
            self.next_step = (pct // 10 + 1) * 10
            self.last_line = now
        elif now - self.last_line >= HEARTBEAT:
            self._line("", "\n")
            self.last_line = now

    def _line(self, head: str, tail: str) -> None:
        rate = (self.done - self.start_bytes) / max(time.monotonic() - self.t0, 1e-6) / 1e6
        mb = self.done / 1e6
        if self.total:
            pct = 100 * self.done / self.total
            bar = "#" * int(pct / 5)
            text = f"[zoo] {self.label} [{bar:<20}] {pct:3.0f}% {mb:.1f}/{self.total / 1e6:.1f} MB {rate:.1f} MB/s"
        else:
            text = f"[zoo] {self.label} {mb:.1f} MB {rate:.1f} MB/s"
        self.stream.write(head + text + tail)
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _say(msg: str) -> None:
    print(f"[zoo] {msg}", file=sys.stderr, flush=True)


class TooSlow(OSError):
    """An attempt abandoned because the bytes came in slower than the minimum rate."""


def _transfer(url: str, part: Path, timeout: float, label: str, min_rate: float = MIN_RATE,
              window: float = WINDOW) -> None:
    """One attempt: continue ``part`` from its current size (Range request) or start it over if the server does
    not resume. Raises on a dropped connection, a short body, or fewer than ``min_rate * window`` bytes in any
    ``window`` seconds (TooSlow)."""
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "pytest-aiotbench", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the partial file is complete (the hash decides)
            return
        raise
    with resp:
        length = resp.headers.get("Content-Length")
        resumed = have and resp.status == 206
        if have and not resumed:
            _say(f"{label}: the server does not resume; starting over")
            have = 0
        total = have + int(length) if length is not None else None
        progress = _Progress(label, total, have)
        got = have
        window_start, window_got = time.monotonic(), got
        with open(part, "ab" if resumed else "wb") as fh:
            while True:
                chunk = resp.read1(CHUNK)  # whatever has arrived (read() would wait for a whole CHUNK)
                if not chunk:
                    break
                fh.write(chunk)
                got += len(chunk)
                progress.update(len(chunk))
                now = time.monotonic()
                if now - window_start >= window:
                    if got - window_got < min_rate * window:
                        raise TooSlow(f"too slow: {got - window_got} bytes in {now - window_start:.0f} s (minimum "
                                      f"{min_rate / 1024:g} KB/s)")
                    window_start, window_got = now, got
        progress.close()
    if total is not None and got < total:
        raise http.client.IncompleteRead(b"", total - got)


def fetch(url: str, dest: Path, *, attempts: int = 4, timeout: float = 30.0, backoff: float = 1.0,
          min_rate: float = MIN_RATE, window: float = WINDOW) -> Path:
    """Download ``url`` to ``dest`` (atomically, through ``dest.partial``), retrying and resuming a dropped
    connection up to ``attempts`` times, then check its sha256 against the prefix in ``dest``'s name. A mismatch
    removes the download and raises FetchError, so a corrupted checkpoint is never used."""
    dest = Path(dest)
    prefix = hash_prefix(dest.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".partial")
    label = f"downloading {dest.name}"
    _say(f"{label} from {url}")
    for attempt in range(1, attempts + 1):
        try:
            _transfer(url, part, timeout, label, min_rate, window)
            break
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 401, 403, 410):  # retrying will not help
                raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            why = f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, socket.gaierror):  # no name resolution: no network, retrying won't help
                raise FetchError(f"{url}: cannot resolve the host ({exc.reason}): no network?") from None
            why = str(exc.reason)
        except (http.client.HTTPException, OSError) as exc:
            why = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
            if isinstance(exc, http.client.IncompleteRead):
                why = f"connection dropped ({exc.expected} bytes missing)"
        have = part.stat().st_size if part.is_file() else 0
        if attempt == attempts:
            raise FetchError(f"{url}: {why} (gave up after {attempts} attempts; {have} bytes kept in {part} "
                             f"for the next try)")
        wait = backoff * 2 ** (attempt - 1)
        _say(f"{label}: {why}; {have / 1e6:.1f} MB so far, retrying in {wait:.0f} s "
             f"(attempt {attempt + 1}/{attempts})")
        time.sleep(wait)
    actual = file_sha256(part)
    if not actual.startswith(prefix):
        part.unlink(missing_ok=True)
        raise FetchError(f"{url}: sha256 {actual[:16]}… does not start with {prefix} (from the file name "
                         f"{dest.name}): corrupted or not this checkpoint; removed, not used")
    os.replace(part, dest)
    _say(f"{dest.name}: sha256 {actual[:len(prefix)]}… verified, saved to {dest}")
    return dest
