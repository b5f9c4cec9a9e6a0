"""Where reports go: the path is writable before anything runs, one run writes it at a time (a lock), outputs never
land on inputs, and a run that measured nothing never replaces a report that holds measured cases."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


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


# -- what a run may replace, and where its outputs may go ----------------------------------------------------------

def is_measured(entry: dict) -> bool:
    """A case entry that holds a measurement (a skipped case, or one that failed before timing, holds none)."""
    return entry.get("latency_ms") is not None or entry.get("top1") is not None


def measured_cases_in(path: Path) -> int | None:
    """How many measured cases the report at ``path`` holds: 0 when there is no file or it is a report without a
    measurement, None when it cannot be told (not JSON, not a report): such a file may hold anything."""
    path = Path(path)
    if not path.exists():
        return 0
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, list):
        return None
    return sum(1 for c in cases if isinstance(c, dict) and is_measured(c))


def _identity(path: Path) -> tuple[Path, tuple[int, int] | None]:
    """The resolved path (symlinks followed, ``..`` folded) and (device, inode) when it exists (hard links)."""
    try:
        st = os.stat(path)
        inode = (st.st_dev, st.st_ino)
    except OSError:
        inode = None
    return Path(os.path.realpath(path)), inode


def check_output_paths(outputs: list[tuple[str, Path]], inputs: list[tuple[str, Path]],
                       input_folders: list[tuple[str, Path]] = (), output_folders: list[tuple[str, Path]] = (),
                       many_inputs: tuple[str, list[Path]] | None = None) -> None:
    """Before anything runs: no file the run writes is a file it reads or another file it writes (a report on the
    catalog, on labels.csv, on the compare base, JSON on HTML...), however either is spelled (symlinks, ``..``,
    hard links), and no folder it fills (the pixel cache) is an input or lies in a folder it reads (the dataset).
    ``many_inputs`` (the dataset's images: thousands) are compared by inode only, and only with outputs that
    exist already (an output not yet there cannot be an existing image under any spelling).
    Raises ReportPathError naming both paths."""
    outs = [(name, Path(p), _identity(Path(p))) for name, p in outputs + list(output_folders)]
    ins = [(name, Path(p), _identity(Path(p))) for name, p in inputs + list(input_folders)]

    def same(a, b) -> bool:
        return a[0] == b[0] or (a[1] is not None and a[1] == b[1])

    for i, (name, path, ident) in enumerate(outs):
        for other_name, other, other_ident in outs[:i]:
            if same(ident, other_ident):
                raise ReportPathError(f"{name} {path} and {other_name} {other} are the same file: one would "
                                      "overwrite the other; give each its own path")
        for in_name, in_path, in_ident in ins:
            if same(ident, in_ident):
                raise ReportPathError(f"{name} {path} is {in_name} {in_path}: the run would overwrite its own "
                                      "input; choose another path")
    existing = {ident[1]: (name, path) for name, path, ident in outs if ident[1] is not None}
    if many_inputs is not None and existing:
        what, paths = many_inputs
        for in_path in paths:
            try:
                st = os.stat(in_path)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in existing:
                name, path = existing[st.st_dev, st.st_ino]
                raise ReportPathError(f"{name} {path} is {what} {in_path}: the run would overwrite its own "
                                      "input; choose another path")
    for name, folder in output_folders:
        resolved = _identity(Path(folder))[0]
        for in_name, in_folder in input_folders:
            if resolved.is_relative_to(_identity(Path(in_folder))[0]):
                raise ReportPathError(f"{name} {folder} is inside {in_name} {in_folder}: the run would write into "
                                      "its input; choose another folder")
