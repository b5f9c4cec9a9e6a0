"""Files are written whole or not at all: a temporary file beside the target, fsync, then rename. And a file's
sha256, computed once per version of the file. Standard library only: the runner bundle ships it."""

from __future__ import annotations

import hashlib
import io
import json
import os
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
