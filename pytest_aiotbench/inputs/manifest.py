"""``manifest.json``: what ``aiotbench zoo build`` wrote, with checksums, provenance and export costs. Read here
(stage 1: a catalog case whose file a manifest lists is checked against it before it runs), written by the zoo.

One manifest per output folder (``<out>/manifest.json``); its ``files`` map is keyed by the artifact's path relative
to that folder (POSIX separators). Readers use :func:`lookup` (walks up from the artifact to the nearest manifest that
lists it) and :func:`verify` (sha256 check; raises :class:`ManifestMismatch`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..files import file_sha256, write_text_atomic

MANIFEST_NAME = "manifest.json"
SCHEMA_ID = "aiotbench-zoo/1"

class ManifestMismatch(Exception):
    """An artifact whose bytes are not what its manifest recorded (edited, truncated, replaced)."""


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
    if data.get("schema", SCHEMA_ID) != SCHEMA_ID or not isinstance(data.get("models", {}), dict) or not all(
            isinstance(v, dict) for v in data["files"].values()):
        raise ManifestMismatch(f"{manifest_path}: not a zoo manifest of this version (schema "
                               f"{data.get('schema')!r}, expected {SCHEMA_ID!r})")
    return data


def write(manifest_path: Path, data: dict) -> None:
    """Write atomically (temp file + rename), so a crash never leaves half a manifest."""
    write_text_atomic(manifest_path, json.dumps(data, indent=1, sort_keys=True) + "\n")


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


def check_input(model_file: Path, entry: dict, spec) -> None:
    """Raise ManifestMismatch when the catalog feeds a zoo artifact other preprocessing than it was built for (e.g.
    the built-in catalog's 224/ImageNet-normalized input to a model built with --input-size 227 --mean ...)."""
    built = entry.get("input") or {}
    want = {"size": spec.input_size, "resize": spec.resize, "color": spec.color, "mean": list(spec.mean),
            "std": list(spec.std)}
    wrong = [f"{k} {want[k]} (built for {built[k]})" for k in want if k in built and
             (built[k] != want[k] if not isinstance(want[k], list) else
              [round(float(v), 4) for v in built[k]] != [round(float(v), 4) for v in want[k]])]
    if wrong:
        raise ManifestMismatch(f"{model_file}: the catalog's preprocessing does not match the build: {', '.join(wrong)}"
                               f"; use the catalog the build wrote ({Path(entry.get('manifest', '.')).parent}/"
                               f"catalog.toml) or rebuild")


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
    for name, companion in (entry.get("companions") or {}).items():  # the weights beside a .ncnn.param / .xml
        other = Path(model_file).parent / name
        try:
            ok = file_sha256(other) == companion.get("sha256")
        except OSError:
            raise ManifestMismatch(f"{model_file}: its weights {name} are missing (listed in {manifest_path})") from None
        if not ok:
            raise ManifestMismatch(f"{model_file}: its weights {name} do not match the sha256 recorded in "
                                   f"{manifest_path} (rebuild with `aiotbench zoo build` or restore the original)")
