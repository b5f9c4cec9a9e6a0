"""Report files are written whole or not at all: a temporary file beside the target, fsync, then rename."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], Any], *, durable: bool = True) -> None:
    """The one atomic writer: ``write(fh)`` fills a temporary binary file beside ``path``, which then replaces
    ``path``, so readers see the old file or the new one, never a part. ``durable`` fsyncs first (reports); a cache
    entry skips it (one lost in a crash is unreadable or absent, and then rebuilt)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Opened by name (not mkstemp) so the file gets the usual umask permissions, not 0600.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Streamed to the file (json.dump): a report with 50,000 images' rows would cost ~40 MB as one string."""
    def write(fh: BinaryIO) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8")
        json.dump(data, text, indent=1, allow_nan=False)
        text.write("\n")
        text.flush()
        text.detach()  # the binary file stays open for write_atomic's fsync and close

    write_atomic(path, write)


_sha_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, cached per (path, mtime, size) for the life of the process."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _sha_cache[key] = h.hexdigest()
    return _sha_cache[key]


class ReportPathError(Exception):
    """The report path cannot be written, or another run is writing it. One line naming the path."""


def check_writable(path: Path) -> None:
    """Before anything runs: the report can be created at ``path`` (not a directory; the nearest existing folder
    above it is a folder we may write in, since the atomic write creates missing folders and a temporary file)."""
    path = Path(path)
    if path.is_dir():
        raise ReportPathError(f"{path}: is a directory, expected a file name for the report")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ReportPathError(f"{path}: cannot create it, {folder} is not a folder")
    try:  # really create a file: os.access says yes to root on a read-only mount or in /proc
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ReportPathError(f"{path}: cannot write in {folder} ({exc.strerror or exc})") from None
    if path.exists() and not path.is_file():
        raise ReportPathError(f"{path}: exists and is not a regular file")


class ReportLock:
    """An exclusive lock on a report path for the whole session (``.NAME.lock`` beside it, holding our PID), so
    two runs never write the same report and silently drop each other's cases."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no flock (Windows): no lock, as before
            return
        while True:
            try:
                self.lock_path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise ReportPathError(f"{self.path}: cannot create the lock file {self.lock_path} "
                                      f"({exc.strerror or exc})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise ReportPathError(f"{self.path}: another aiotbench run (PID {holder}) is writing this report; "
                                      "wait for it or choose another --aiotbench-json") from None
            # The previous holder may have removed the lock file between our open and our flock: retry on the
            # file that is there now, so two runs can never both hold "the" lock.
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        self.lock_path.unlink(missing_ok=True)  # while still holding it (see acquire)
        os.close(self._fd)
        self._fd = None
