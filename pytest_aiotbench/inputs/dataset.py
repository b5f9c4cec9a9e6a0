"""The dataset module: which images, in which order, with which labels; and their pixels, cached.

Three sources: a folder with ``labels.csv`` (exactly those images, in that order), an ILSVRC2012 val tree (one
folder per synset; the AIoTBench protocol draws 100 classes x 5 images with a recorded seed), or, with nothing
configured, deterministic synthetic images (latency is real, accuracy is n/a).
"""

from __future__ import annotations

import csv
import hashlib
import posixpath
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterator

import numpy as np

from .preprocess import PixelCache, PreprocessError, PreprocessSpec, sha256_bytes
from .pixels import PixelStore, write_store

PROTOCOL_CLASSES = 100
PROTOCOL_PER_CLASS = 5
PROTOCOL_SEED = 2019  # AIoTBench's year; recorded in every report
SYNTHETIC_IMAGES = 50
STORE_BATCH = 64  # crops per batch while a store is written
SYNSET = re.compile(r"^n\d{8}$")
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}  # what Pillow decodes


class DatasetError(Exception):
    """A dataset folder that cannot be used as given. One line, naming the path."""


@lru_cache(maxsize=1)
def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 ILSVRC2012 synsets in sorted order: line index = class index (Caffe, torchvision, Keras)."""
    text = resources.files("pytest_aiotbench").joinpath("data/imagenet_synsets.txt").read_text()
    return tuple(text.split())


@dataclass
class Dataset:
    kind: str  # "labels.csv" | "imagenet-val" | "synthetic"
    root: Path | None
    files: list[str]  # relative to root
    labels: list[int] | None
    seed: int | None = None
    note: str | None = None
    protocol: bool = False  # the canonical 100 x 5 AIoTBench subset
    complete: bool = True  # False when --aiotbench-images cut it short
    _digests: list[str] | None = field(default=None, repr=False)

    @property
    def labeled(self) -> bool:
        return self.labels is not None

    def __len__(self) -> int:
        return len(self.files)

    def gaps(self) -> list[str]:
        """Why a score over this data is not a full AIoTBench score."""
        gaps = []
        if not self.labeled:
            gaps.append("synthetic images: no accuracy")
        if not self.complete:
            gaps.append(f"only the first {len(self)} images")
        return gaps

    def digests(self) -> list[str]:
        """sha256 of every image's bytes (read once per session): the cache key and part of the fingerprint."""
        if self._digests is None:
            if self.root is None:
                self._digests = [hashlib.sha256(f"synthetic-{self.seed}-{i}".encode()).hexdigest() for i in range(len(self))]
            else:
                self._digests = [sha256_bytes(self._read(f)) for f in self.files]
        return self._digests

    def fingerprint(self) -> str:
        """Identifies the exact evaluation set: ordered files, their labels and their bytes."""
        h = hashlib.sha256()
        labels = self.labels or [-1] * len(self)
        for name, label, digest in zip(self.files, labels, self.digests()):
            h.update(f"{name}\t{label}\t{digest}\n".encode())
        return "sha256:" + h.hexdigest()

    def check_files(self, show: int = 5) -> None:
        """Before any case runs: every listed image exists, is a non-empty file with an image header Pillow knows
        (a truncated body still fails its case when decoded). Raises DatasetError
        listing the first few that are not, so a run never dies (or loses cases) on an image halfway through."""
        if self.root is None:
            return
        import warnings

        from PIL import Image, UnidentifiedImageError  # here: only a run with a dataset pays for Pillow

        from .preprocess import bomb_error_text, bomb_problem, mode_problem

        bad = []
        for name in self.files:
            path = self.root / name
            try:
                st = path.stat()
                if not path.is_file():
                    problem = "not a file"
                elif st.st_size == 0:
                    problem = "empty file"
                else:
                    with warnings.catch_warnings():  # the size limit is judged below, as one line
                        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                        opened = Image.open(path)
                    with opened as img:  # reads the header only (~0.1 ms); the pixels are decoded in the case
                        problem = bomb_problem(img) or mode_problem(img.mode)
                        if problem is None:
                            continue
            except Image.DecompressionBombError as exc:
                problem = bomb_error_text(exc)
            except UnidentifiedImageError:
                problem = "not an image Pillow can decode"
            except OSError as exc:
                problem = "missing" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
            except Exception:  # noqa: BLE001 - a header Pillow chokes on (ValueError, SyntaxError, ...)
                problem = "not an image Pillow can decode"
            bad.append(f"{name} ({problem})")
        if bad:
            more = f" and {len(bad) - show} more" if len(bad) > show else ""
            raise DatasetError(f"{self.root}: {len(bad)} of {len(self)} images cannot be used: "
                               f"{', '.join(bad[:show])}{more}")

    def _read(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except OSError as exc:
            raise PreprocessError(f"cannot read image {self.root / name}: {exc.strerror or exc}") from None

    def pixels(self, spec: PreprocessSpec, cache: PixelCache) -> np.ndarray:
        """Stacked uint8 crops (N, S, S, 3) in dataset order, all in memory (small sets, helpers; a session
        streams them from a ``store``)."""
        return np.concatenate(list(self.crops(spec, cache))) if len(self) else np.empty((0,) * 4, np.uint8)

    def crops(self, spec: PreprocessSpec, cache: PixelCache, progress=None) -> Iterator[np.ndarray]:
        """uint8 crops (n, S, S, 3) in dataset order, a bounded batch at a time; decoding what the cache does
        not hold uses every core (``decode``). ``progress(done, total)`` is called between batches."""
        from . import decode

        size = spec.input_size
        if self.root is None:
            # One generator per image (seeded by the run's seed and the image's index): the same pixels
            # whatever the batches.
            for start in range(0, len(self), STORE_BATCH):
                stop = min(len(self), start + STORE_BATCH)
                yield np.stack([np.random.default_rng([self.seed or 0, i]).integers(0, 256, (size, size, 3),
                                                                                   dtype=np.uint8)
                                for i in range(start, stop)])
            return
        yield from decode.crops(self.root, self.files, self.digests(), spec, cache, progress)

    def store(self, spec: PreprocessSpec, cache: PixelCache, folder: Path, progress=None) -> PixelStore:
        """This dataset's crops for ``spec`` written once to a packed file in ``folder`` (the session's store)."""
        path = Path(folder) / f"{spec.geometry}.npy"
        return write_store(path, len(self), spec.input_size, self.crops(spec, cache, progress))

    def describe(self) -> dict:
        return {
            "path": str(self.root) if self.root else None,
            "kind": self.kind,
            "images": len(self),
            "fingerprint": self.fingerprint(),
            "labeled": self.labeled,
            "protocol": self.protocol,
            "complete": self.complete,
            "seed": self.seed,
            "note": self.note,
            "files": list(self.files),
            "labels": list(self.labels) if self.labels is not None else None,
        }


def open_dataset(path: str | Path | None, limit: int | None = None, seed: int = PROTOCOL_SEED) -> Dataset:
    if not path:
        ds = Dataset("synthetic", None, [f"synthetic/{i:05d}" for i in range(limit or SYNTHETIC_IMAGES)], None, seed=seed,
                     note="no dataset configured: synthetic images, accuracy n/a")
        return ds
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}" if not root.exists()
                           else f"{root}: not a folder (give the folder that holds labels.csv or the synset folders)")
    # exists(), not is_file(): a labels.csv that is a folder is an error, never a silent switch to the tree layout
    ds = _from_labels_csv(root) if (root / "labels.csv").exists() else _from_imagenet_tree(root, seed)
    if limit is not None and limit < len(ds):
        ds.files, ds.labels = ds.files[:limit], ds.labels[:limit] if ds.labels is not None else None
        ds.complete = False
    if not ds.files:
        raise DatasetError(f"no images found in {root}")
    return ds


def _from_labels_csv(root: Path) -> Dataset:
    files: list[str] = []
    labels: list[int] = []
    csv_path = root / "labels.csv"
    first_line: dict[str, int] = {}
    try:
        # utf-8-sig: spreadsheet exports start with a byte-order mark, which would hide the "file" column
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"file", "class_index"} <= {f.strip() for f in reader.fieldnames}:
                raise DatasetError(f"{csv_path}: needs a header with columns file,synset,class_index")
            reader.fieldnames = [f.strip() for f in reader.fieldnames]
            for row in reader:
                line = reader.line_num  # the physical line: blank lines are skipped but still counted
                if row.get("class_index") is None:
                    raise DatasetError(f"{csv_path} line {line}: {len([v for v in row.values() if v is not None])} "
                                       f"column(s), expected {len(reader.fieldnames)} ({','.join(reader.fieldnames)})")
                name = (row.get("file") or "").strip()
                if not name or "\x00" in name:
                    raise DatasetError(f"{csv_path} line {line}: {'empty file name' if not name else 'NUL in file name'}")
                try:
                    label = int(str(row.get("class_index")).strip())
                except (TypeError, ValueError):
                    raise DatasetError(f"{csv_path} line {line}: class_index {row.get('class_index')!r} "
                                       "is not an integer") from None
                if not 0 <= label < 1000:
                    raise DatasetError(f"{csv_path} line {line}: class_index {label} outside 0..999")
                synset = (row.get("synset") or "").strip()
                # A synset id (n########) and the class index are two spellings of one label: they must agree.
                # Other text (a placeholder, a human-readable name) names no class and is not judged.
                if SYNSET.match(synset) and synset != imagenet_synsets()[label]:
                    where = imagenet_synsets().index(synset) if synset in imagenet_synsets() else None
                    what = (f"which is class_index {where}" if where is not None else
                            "not one of the 1000 ILSVRC2012 synsets")
                    raise DatasetError(f"{csv_path} line {line}: synset {synset!r} ({what}) contradicts class_index "
                                       f"{label} ({imagenet_synsets()[label]})")
                # Lexical check (symlinked images are fine): no absolute path, no way up out of the folder.
                key = posixpath.normpath(name.replace("\\", "/"))
                if posixpath.isabs(key) or Path(name).is_absolute() or key == ".." or key.startswith("../"):
                    raise DatasetError(f"{csv_path} line {line}: {name!r} is outside the dataset folder")
                if key in first_line:
                    raise DatasetError(f"{csv_path} line {line}: {name!r} is listed twice "
                                       f"(first on line {first_line[key]})")
                first_line[key] = line
                files.append(name)
                labels.append(label)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{csv_path}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise DatasetError(f"{csv_path}: not a valid CSV file ({exc})") from None
    except OSError as exc:
        raise DatasetError(f"{csv_path}: cannot read ({exc.strerror or exc})") from None
    if not files:
        raise DatasetError(f"{csv_path}: lists no images (a header and no rows)")
    return Dataset("labels.csv", root, files, labels, note="images and order from labels.csv")


def _from_imagenet_tree(root: Path, seed: int) -> Dataset:
    index = {s: i for i, s in enumerate(imagenet_synsets())}
    by_class: dict[str, list[str]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if not SYNSET.match(folder.name):
            continue
        if folder.name not in index:
            raise DatasetError(f"{folder}: {folder.name} is not one of the 1000 ILSVRC2012 synsets")
        images = sorted(f.name for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            by_class[folder.name] = images
    if not by_class:
        raise DatasetError(f"{root}: neither a labels.csv nor synset folders (n01440764/...) found")
    eligible = sorted(s for s, imgs in by_class.items() if len(imgs) >= PROTOCOL_PER_CLASS)
    if len(eligible) >= PROTOCOL_CLASSES:
        rng = random.Random(seed)
        chosen = {s: sorted(rng.sample(by_class[s], PROTOCOL_PER_CLASS)) for s in sorted(rng.sample(eligible, PROTOCOL_CLASSES))}
        note, protocol = f"AIoTBench protocol: {PROTOCOL_CLASSES} classes x {PROTOCOL_PER_CLASS} images, seed {seed}", True
    else:
        chosen = by_class
        note = (f"tree too small for the {PROTOCOL_CLASSES} x {PROTOCOL_PER_CLASS} protocol "
                f"({len(eligible)} classes with >= {PROTOCOL_PER_CLASS} images): used whole")
        protocol = False
    files, labels = [], []
    for synset in sorted(chosen, key=index.__getitem__):
        for name in chosen[synset]:
            files.append(f"{synset}/{name}")
            labels.append(index[synset])
    return Dataset("imagenet-val", root, files, labels, seed=seed if protocol else None, note=note, protocol=protocol)
