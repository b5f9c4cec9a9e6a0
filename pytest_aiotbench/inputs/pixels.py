"""Streaming pixels: memory independent of the dataset's size.

A session's cropped pixels live on disk, one packed ``.npy`` per crop geometry (``PixelStore``: N x S x S x 3
uint8, written once per session from the pixel cache). A case reads them a chunk at a time with plain file reads
(never memory-mapped: mapped pages a loop has touched count in the process's resident size until the kernel needs
them back) and converts each chunk to the model's input (``ModelInputs``) only when the timing loop reaches it,
between two timed calls. At most one chunk of crops and one of converted inputs is held per model input.

Ships in the device runner bundle: numpy and the standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..frameworks.base import TensorSpec
from .preprocess import PreprocessSpec, to_model_inputs

CHUNK_BYTES = 32 << 20  # converted inputs held at once per model input (sized for float32, the widest)
CHUNK_ENV = "AIOTBENCH_CHUNK_IMAGES"  # fixed images per chunk instead (tests force several chunks with it)


def chunk_images(size: int, env: dict | None = None) -> int:
    """Images per chunk for crops of ``size`` px: ``CHUNK_BYTES`` of float32 inputs, or ``$AIOTBENCH_CHUNK_IMAGES``."""
    value = (os.environ if env is None else env).get(CHUNK_ENV, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            pass  # not a number: the default (checked nowhere else; a typo must not stop a run)
    return max(1, CHUNK_BYTES // (size * size * 3 * 4))


class StoreError(Exception):
    """A packed pixel file that cannot be read as N x S x S x 3 uint8. One line."""


class PixelStore:
    """uint8 crops (N, S, S, 3) in dataset order, in a packed ``.npy`` file, read a slice at a time."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                read = {(1, 0): np.lib.format.read_array_header_1_0,
                        (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if read is None:
                    raise ValueError(f"npy format {version[0]}.{version[1]}")
                shape, fortran, dtype = read(fh)
                self.offset = fh.tell()
                size = os.fstat(fh.fileno()).st_size
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {self.path.name}: {exc}") from None
        if dtype != np.uint8 or fortran or len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2]:
            raise StoreError(f"{self.path.name} holds {dtype} {shape}, expected N x S x S x 3 uint8")
        self.shape = tuple(int(d) for d in shape)
        self.item = self.shape[1] * self.shape[2] * 3
        if size < self.offset + self.item * self.shape[0]:
            raise StoreError(f"{self.path.name} is cut short: {size} bytes for {self.shape[0]} images")

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        stop = min(stop, len(self))
        out = np.empty((max(0, stop - start), *self.shape[1:]), np.uint8)
        if not len(out):
            return out
        with open(self.path, "rb") as fh:
            fh.seek(self.offset + start * self.item)
            got = fh.readinto(memoryview(out).cast("B"))
        if got != out.nbytes:
            raise StoreError(f"{self.path.name}: short read at image {start}")
        return out

    def __array__(self, dtype=None, copy=None):  # the whole store: for small checks only
        x = self.read(0, len(self))
        return x if dtype is None else x.astype(dtype)


class ArrayPixels:
    """Crops already in memory (jobs built from an array: tests, small helpers)."""

    def __init__(self, array: np.ndarray):
        self.array = np.asarray(array)
        self.shape = self.array.shape

    def __len__(self) -> int:
        return len(self.array)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.array[start:stop]

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)


class ArrivingPixels:
    """The device side of a job whose crops are pushed in several files while it runs (``pixels-K.npy``, each
    a packed store of consecutive images): file K is waited for when needed (after writing ``want-K``, which the
    host watches for and removes before the file appears), and removed once its last image has been read, so the
    device holds one file at a time. A pass reads forward; another pass (sustained mode) asks for the files
    again. The waits happen between two timed calls."""

    def __init__(self, folder: Path, counts: Sequence[int], size: int, wait_s: float = 600.0):
        self.folder, self.counts, self.wait_s = Path(folder), [int(c) for c in counts], wait_s
        self.starts = [sum(self.counts[:k]) for k in range(len(self.counts))]
        self.shape = (sum(self.counts), size, size, 3)
        self._open: dict[int, PixelStore] = {}

    def __len__(self) -> int:
        return self.shape[0]

    @staticmethod
    def name(k: int) -> str:
        return f"pixels-{k:05d}.npy"

    def _store(self, k: int) -> PixelStore:
        if k not in self._open:
            import time

            path = self.folder / self.name(k)
            if not path.exists():
                (self.folder / f"want-{k:05d}").write_text("")
                deadline = time.monotonic() + self.wait_s
                while not path.exists():
                    if time.monotonic() > deadline:
                        raise StoreError(f"{path.name} did not arrive within {self.wait_s:.0f} s")
                    time.sleep(0.005)
            store = PixelStore(path)
            if store.shape != (self.counts[k], *self.shape[1:]):
                raise StoreError(f"{path.name} holds {store.shape}, the job says {self.counts[k]} images")
            self._open[k] = store
        return self._open[k]

    def read(self, start: int, stop: int) -> np.ndarray:
        stop = min(stop, len(self))
        parts = []
        for k, (lo, n) in enumerate(zip(self.starts, self.counts)):
            hi = lo + n
            if hi <= start or lo >= stop:
                continue
            parts.append(self._store(k).read(max(start, lo) - lo, min(stop, hi) - lo))
            if stop >= hi:  # read to its end: the device's storage goes to the next file
                self._open.pop(k).path.unlink(missing_ok=True)
        return np.concatenate(parts) if parts else np.empty((0, *self.shape[1:]), np.uint8)


def as_pixels(pixels) -> PixelStore | ArrayPixels | ArrivingPixels:
    return pixels if isinstance(pixels, (PixelStore, ArrayPixels, ArrivingPixels)) else ArrayPixels(pixels)


def write_store(path: Path, count: int, size: int, chunks: Iterator[np.ndarray]) -> PixelStore:
    """Write ``count`` crops of ``size`` px, given in order as arrays of any length, to a packed ``.npy`` at
    ``path`` (through a temporary name: a store that exists is whole)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    written = 0
    try:
        with open(tmp, "wb") as fh:
            np.lib.format.write_array_header_2_0(fh, {"descr": "|u1", "fortran_order": False,
                                                      "shape": (count, size, size, 3)})
            for arr in chunks:
                arr = np.ascontiguousarray(arr, dtype=np.uint8)
                if arr.shape[1:] != (size, size, 3) or written + len(arr) > count:
                    raise StoreError(f"{path.name}: got {arr.shape} after {written} of {count} crops of {size} px")
                fh.write(memoryview(arr).cast("B"))
                written += len(arr)
        if written != count:
            raise StoreError(f"{path.name}: {written} of {count} crops written")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return PixelStore(path)


class ModelInputs:
    """A job's model inputs, converted from its crops one chunk at a time (``to_model_inputs``): only the chunk
    in use is held. Indexing converts the chunk holding that image when it is not the current one, so callers
    index in increasing order (the timing loops do, outside their timed calls). ``largest`` is the most crops
    ever converted at once (what the streaming tests check)."""

    def __init__(self, pixels, spec: PreprocessSpec, tensor: TensorSpec, name: str, chunk: int | None = None):
        self.pixels = as_pixels(pixels)
        self.spec, self.tensor, self.name = spec, tensor, name
        self.chunk = max(1, int(chunk or chunk_images(spec.input_size)))
        self.total = len(self.pixels)
        self.count = -(-self.total // self.chunk)
        self.largest = 0
        self.loads = 0  # chunk conversions (a chunk converted again counts again)
        self._k = -1
        self._cur: list[np.ndarray] = []
        self._load(0)  # the input check (InputShapeError) happens here, before any inference

    def __len__(self) -> int:
        return self.total

    def held_bytes(self) -> int:
        """Bytes of converted inputs held now (the current chunk): the harness's, not the model's memory."""
        return sum(int(x.nbytes) for x in self._cur)

    def _load(self, k: int) -> list[np.ndarray]:
        if k != self._k:
            self._cur, self._k = [], -1  # the previous chunk goes before the next one is read
            start = k * self.chunk
            crops = self.pixels.read(start, min(self.total, start + self.chunk))
            self.largest = max(self.largest, len(crops))
            self.loads += 1
            self._cur, self._k = to_model_inputs(crops, self.spec, self.tensor, self.name), k
        return self._cur

    def __getitem__(self, i: int) -> np.ndarray:
        if i < 0:
            i += self.total
        if not 0 <= i < self.total:
            raise IndexError(i)
        k, j = divmod(i, self.chunk)
        return (self._cur if k == self._k else self._load(k))[j]

    def first(self) -> list[np.ndarray]:
        """The first chunk (the first inference and the warmup rounds use it)."""
        return self._load(0)

    def chunks(self) -> Iterator[list[np.ndarray]]:
        for k in range(self.count):
            yield self._load(k)


def first_chunk(inputs: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
    return inputs.first() if isinstance(inputs, ModelInputs) else inputs


def iter_chunks(inputs: Sequence[np.ndarray]) -> Iterator[Sequence[np.ndarray]]:
    return inputs.chunks() if isinstance(inputs, ModelInputs) else iter((inputs,))


Keep = Callable[[list], list]  # raw outputs of a chunk -> what is kept of them (top-k rows)


def stream_store_dir(cache_root: Path | None) -> Path:
    """A private folder for one session's packed crops: under the pixel cache (a disk, by convention) in
    ``stores/PID-RANDOM``, else in the temporary folder. Folders of sessions whose process is gone (a crash, a
    kill) are removed first, so they never pile up."""
    import shutil
    import socket
    import tempfile

    if cache_root is not None:
        base = Path(cache_root) / "stores"
        host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40]
        try:
            base.mkdir(parents=True, exist_ok=True)
            for old in base.iterdir():  # only this machine's: a shared cache may serve other machines' sessions
                pid, _, rest = old.name.partition("-")
                if pid.isdigit() and rest.startswith(f"{host}-") and int(pid) != os.getpid() \
                        and not _alive(int(pid)):
                    shutil.rmtree(old, ignore_errors=True)
            return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{host}-", dir=base))
        except OSError:
            pass  # an unwritable cache was switched off already; this is a race with its removal: use tmp
    return Path(tempfile.mkdtemp(prefix="aiotbench-pixels-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True
