"""The first decode of a dataset, on every core: crops come back in dataset order, a bounded batch at a time.

Decoding and cropping are deterministic (Pillow, ``preprocess.crop_pixels``) and independent per image, so
batches of images are cropped in worker processes (``spawn``: a fork of a process holding runtime threads is not
safe) and handed on in order; at most two batches per worker are in flight, so memory does not grow with the
dataset. What the pixel cache already holds is read, not decoded; with few images to decode (or one core) it all
happens in this process, where a pool's start-up would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..frameworks.base import usable_cores
from .preprocess import PixelCache, PreprocessError, PreprocessSpec

BATCH = 32  # images per task
POOL_MIN = 256  # fewer images to decode than this: in this process


def _read(root: Path, name: str) -> bytes:
    try:
        return (root / name).read_bytes()
    except OSError as exc:
        raise PreprocessError(f"cannot read image {root / name}: {exc.strerror or exc}") from None


def crop_batch(root: str, cache_root: str | None, spec: PreprocessSpec, items: Sequence[tuple[str, str]],
               cache: PixelCache | None = None):
    """Crops of ``items`` (name, sha256) through the pixel cache: (array, hits, misses, cache note)."""
    cache = cache if cache is not None else PixelCache(Path(cache_root) if cache_root else None)
    hits, misses = cache.hits, cache.misses
    base = Path(root)
    out = np.empty((len(items), spec.input_size, spec.input_size, 3), np.uint8)
    for j, (name, digest) in enumerate(items):
        out[j] = cache.get(digest, lambda name=name: _read(base, name), spec, str(base / name))
    return out, cache.hits - hits, cache.misses - misses, cache.note


def _to_decode(cache: PixelCache, spec: PreprocessSpec, digests: Sequence[str]) -> int:
    if cache.root is None:
        return len(digests)
    folder = cache.root / spec.geometry
    return sum(not (folder / d[:2] / f"{d}.npy").is_file() for d in digests)


def crops(root: Path, files: Sequence[str], digests: Sequence[str], spec: PreprocessSpec, cache: PixelCache,
          progress: Callable[[int, int], None] | None = None, pool_min: int = POOL_MIN) -> Iterator[np.ndarray]:
    total = len(files)
    batches = [list(zip(files[s:s + BATCH], digests[s:s + BATCH])) for s in range(0, total, BATCH)]
    n = min(usable_cores(), len(batches))
    done = 0
    if n < 2 or _to_decode(cache, spec, digests) < pool_min:
        for items in batches:
            arr = crop_batch(str(root), None, spec, items, cache)[0]
            done += len(arr)
            if progress:
                progress(done, total)
            yield arr
        return
    pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending: deque = deque()
        todo = iter(batches)
        for _ in range(2 * n):
            items = next(todo, None)
            if items is not None:
                pending.append(pool.submit(crop_batch, str(root), _root(cache), spec, items))
        while pending:
            arr, hits, misses, note = pending.popleft().result()
            items = next(todo, None)
            if items is not None:
                pending.append(pool.submit(crop_batch, str(root), _root(cache), spec, items))
            cache.hits += hits
            cache.misses += misses
            if note and cache.note is None:  # a worker could not write the cache: the session runs without it
                cache.note, cache.root = note, None
            done += len(arr)
            if progress:
                progress(done, total)
            yield arr
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _root(cache: PixelCache) -> str | None:
    return str(cache.root) if cache.root else None
