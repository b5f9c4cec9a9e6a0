"""``manifest.json``: what ``aiotbench zoo build`` wrote, with checksums, provenance and export costs.

One manifest per output folder (``<out>/manifest.json``); its ``files`` map is keyed by the artifact's path relative
to that folder (POSIX separators). Readers use :func:`lookup` (walks up from the artifact to the nearest manifest that
lists it) and :func:`verify` (sha256 check; raises :class:`ManifestMismatch`). Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

MANIFEST_NAME = "manifest.json"
SCHEMA_ID = "aiotbench-zoo/1"

_sha_cache: dict[tuple[str, int, int], str] = {}


class ManifestMismatch(Exception):
    """An artifact whose bytes are not what its manifest recorded (edited, truncated, replaced)."""


def file_sha256(path: Path) -> str:
    """sha256 of a file, cached per (path, mtime, size) for the life of the process."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    cached = _sha_cache.get(key)
    if cached is None:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        cached = _sha_cache[key] = h.hexdigest()
    return cached


def read(manifest_path: Path) -> dict:
    """Load a manifest; a missing file gives an empty one, an unreadable one raises ManifestMismatch."""
    manifest_path = Path(manifest_path)
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"schema": SCHEMA_ID, "files": {}, "models": {}}
    except (OSError, ValueError) as exc:
        raise ManifestMismatch(f"{manifest_path}: unreadable manifest ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise ManifestMismatch(f"{manifest_path}: not a zoo manifest (no 'files' table)")
    return data


def write(manifest_path: Path, data: dict) -> None:
    """Write atomically (temp file + rename), so a crash never leaves half a manifest."""
    manifest_path = Path(manifest_path)
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=manifest_path.parent, prefix=".manifest-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, manifest_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _find(model_file: Path) -> tuple[Path, str, dict] | None:
    model_file = Path(model_file).absolute()
    for folder in model_file.parents:
        candidate = folder / MANIFEST_NAME
        if candidate.is_file():
            data = read(candidate)
            key = model_file.relative_to(folder).as_posix()
            entry = data["files"].get(key)
            if entry is not None:
                return candidate, key, entry
    return None


def lookup(model_file: Path) -> dict | None:
    """The manifest entry of ``model_file`` (nearest ``manifest.json`` above it that lists it), or None.

    The entry has at least ``sha256``, ``size``, ``weights`` ("pretrained", "random" or "torchscript:<sha256>"),
    ``model``, ``framework``, ``quant``, ``layout``, ``input``, ``tools``; plus ``manifest`` (its path)."""
    found = _find(model_file)
    if found is None:
        return None
    manifest_path, key, entry = found
    return {**entry, "manifest": str(manifest_path), "key": key}


def verify(model_file: Path) -> None:
    """Raise ManifestMismatch when ``model_file`` is listed in a manifest with different bytes. A file no manifest
    lists is not checked (not a zoo artifact)."""
    found = _find(model_file)
    if found is None:
        return
    manifest_path, key, entry = found
    expected = entry.get("sha256")
    if not expected:
        raise ManifestMismatch(f"{model_file}: manifest {manifest_path} lists it without a sha256")
    try:
        actual = file_sha256(Path(model_file))
    except OSError as exc:
        raise ManifestMismatch(f"{model_file}: cannot read it to check against {manifest_path}: {exc}") from None
    if actual != expected:
        raise ManifestMismatch(
            f"{model_file}: sha256 {actual[:12]}… does not match {expected[:12]}… recorded in {manifest_path} "
            f"(the file changed after `aiotbench zoo build`; rebuild it or restore the original)")
