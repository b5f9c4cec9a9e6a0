"""Bounded memory at any dataset size (issue 19): crops stream from a packed file on disk a chunk at a time,
are converted between timed calls, and the answers equal the all-in-memory computation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from pytest_aiotbench.inputs import decode
from pytest_aiotbench.inputs.dataset import open_dataset
from pytest_aiotbench.frameworks.base import PrepareOptions, TensorSpec
from pytest_aiotbench.inputs.preprocess import PixelCache, PreprocessSpec, to_model_inputs
from pytest_aiotbench.inputs.pixels import CHUNK_ENV, ArrayPixels, ModelInputs, PixelStore, StoreError, chunk_images, write_store
from pytest_aiotbench.run.job import Job
from pytest_aiotbench.targets.host import execute
from pytest_aiotbench.run.timing import PerfCounterTiming

from tests.helpers.catalogs import tflite_entry, write_catalog
from tests.helpers.copies import unique_copies
from tests.helpers.shared import TFLITE_DIR

MODEL = TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"
SPEC = PreprocessSpec(128, 146, mean=(127.5,) * 3, std=(127.5,) * 3)


def _crops(n: int, size: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_store_is_written_from_uneven_batches_and_read_by_slices(tmp_path):
    crops = _crops(23)
    store = write_store(tmp_path / "s.npy", 23, 6, iter([crops[:5], crops[5:6], crops[6:23]]))
    assert len(store) == 23 and store.shape == (23, 6, 6, 3)
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), crops)  # a plain .npy
    np.testing.assert_array_equal(store.read(4, 11), crops[4:11])
    np.testing.assert_array_equal(store.read(20, 99), crops[20:])
    assert not (tmp_path / "s.npy.part").exists()
    # Too few crops: no store is left behind under the final name.
    with pytest.raises(StoreError, match="22 of 23 crops written"):
        write_store(tmp_path / "short.npy", 23, 6, iter([crops[:22]]))
    assert not list(tmp_path.glob("short.npy*"))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "s.npy").read_bytes()[:-10])
    with pytest.raises(StoreError, match="cut short"):
        PixelStore(tmp_path / "cut.npy")
    np.save(tmp_path / "f.npy", np.zeros((2, 6, 6, 3), np.float32))
    with pytest.raises(StoreError, match="expected N x S x S x 3 uint8"):
        PixelStore(tmp_path / "f.npy")


@pytest.mark.parametrize("chunk", [1, 7, 23, 100])
def test_model_inputs_convert_one_chunk_at_a_time_and_equal_the_whole_conversion(chunk):
    crops = _crops(23)
    spec = PreprocessSpec(6, 0, layout="NCHW", mean=(120.0, 110.0, 100.0), std=(60.0, 61.0, 62.0))
    tensor = TensorSpec((1, 3, 6, 6), np.dtype(np.float32))
    whole = to_model_inputs(crops, spec, tensor, "m")
    inputs = ModelInputs(ArrayPixels(crops), spec, tensor, "m", chunk=chunk)
    streamed = [x for c in inputs.chunks() for x in c]
    assert len(streamed) == len(inputs) == 23
    for a, b in zip(whole, streamed):
        np.testing.assert_array_equal(a, b)
    assert inputs.largest == min(chunk, 23)
    assert inputs.loads == -(-23 // chunk)  # each chunk converted once (chunk 0 is not converted twice)
    np.testing.assert_array_equal(inputs[22], whole[22])


def test_chunk_size_follows_the_input_size_or_the_environment():
    assert chunk_images(224, {}) == (32 << 20) // (224 * 224 * 12)
    assert chunk_images(128, {}) > chunk_images(224, {}) > chunk_images(299, {}) >= 1
    assert chunk_images(224, {CHUNK_ENV: "5"}) == 5
    assert chunk_images(224, {CHUNK_ENV: "x"}) == chunk_images(224, {})


@pytest.fixture(scope="module")
def small_set(tmp_path_factory, shared):
    root = tmp_path_factory.mktemp("copies")
    return unique_copies(root, 60, shrink=150)


def _job(pixels, warmup=3) -> Job:
    return Job(case_id="m", framework="tflite", model_file=MODEL, options=PrepareOptions(threads=1),
               pixels=pixels, preprocess=SPEC, warmup=warmup, num_classes=1001, background=True)


@pytest.mark.real
def test_host_job_over_chunks_equals_one_chunk(small_set, tmp_path, monkeypatch):
    ds = open_dataset(small_set)
    store = ds.store(SPEC, PixelCache(tmp_path / "cache"), tmp_path)
    whole = ds.pixels(SPEC, PixelCache(None))
    np.testing.assert_array_equal(np.asarray(store), whole)
    monkeypatch.setenv(CHUNK_ENV, "100000")
    one = execute(_job(whole), PerfCounterTiming())
    monkeypatch.setenv(CHUNK_ENV, "7")
    chunked = execute(_job(store, warmup=12), PerfCounterTiming())  # warmup longer than a chunk: cycles in it
    np.testing.assert_array_equal(chunked.topk, one.topk)
    assert len(chunked.latencies_s) == 60


@pytest.mark.real
def test_ab_pairs_over_chunks_equal_one_chunk(small_set, tmp_path, monkeypatch):
    from pytest_aiotbench.pipeline import time_pair

    store = open_dataset(small_set).store(SPEC, PixelCache(None), tmp_path)
    monkeypatch.setenv(CHUNK_ENV, "100000")
    one = time_pair(_job(store), _job(store))
    monkeypatch.setenv(CHUNK_ENV, "5")
    chunked = time_pair(_job(store), _job(store))
    np.testing.assert_array_equal(chunked.new.topk, one.new.topk)
    np.testing.assert_array_equal(chunked.base.topk, one.base.topk)
    assert len(chunked.new.latencies_s) == len(chunked.base.latencies_s) == 60


def test_parallel_first_decode_equals_the_serial_one(small_set, tmp_path):
    ds = open_dataset(small_set)
    ds.files, ds.labels, ds._digests = ds.files[:50], ds.labels[:50], None
    serial_cache = PixelCache(tmp_path / "serial")
    serial = np.concatenate(list(decode.crops(ds.root, ds.files, ds.digests(), SPEC, serial_cache, pool_min=10**9)))
    assert (serial_cache.hits, serial_cache.misses) == (0, 50)
    seen = []
    pooled_cache = PixelCache(tmp_path / "pooled")
    batches = list(decode.crops(ds.root, ds.files, ds.digests(), SPEC, pooled_cache,
                                lambda done, total: seen.append((done, total)), pool_min=0))
    np.testing.assert_array_equal(np.concatenate(batches), serial)  # same pixels, same order
    assert (pooled_cache.hits, pooled_cache.misses) == (0, 50)  # the workers' counts reach the session's cache
    assert max(len(b) for b in batches) <= decode.BATCH
    assert seen[-1] == (50, 50) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(list((tmp_path / "pooled").rglob("*.npy"))) == 50  # the workers filled the cache
    again = PixelCache(tmp_path / "pooled")
    np.testing.assert_array_equal(np.concatenate(list(decode.crops(ds.root, ds.files, ds.digests(), SPEC, again,
                                                                   pool_min=0))), serial)
    assert (again.hits, again.misses) == (50, 0)


def test_decode_uses_the_cores_this_process_may_run_on():
    import os

    assert decode.usable_cores() == len(os.sched_getaffinity(0))


SPY = """
import json, os
import pytest
from pytest_aiotbench.inputs import dataset, pixels as stream

seen = {"converted": [], "read": [], "stacked": 0}
_convert, _read = stream.to_model_inputs, stream.PixelStore.read

def convert(pixels, *args):
    seen["converted"].append(len(pixels))
    return _convert(pixels, *args)

def read(self, start, stop):
    out = _read(self, start, stop)
    seen["read"].append(len(out))
    return out

def stacked(*args, **kwargs):  # the all-in-memory path must not run in a session
    seen["stacked"] += 1
    raise AssertionError("Dataset.pixels called")

stream.to_model_inputs, stream.PixelStore.read, dataset.Dataset.pixels = convert, read, stacked

def pytest_sessionfinish(session):
    with open(os.environ["SPY_OUT"], "w") as fh:
        json.dump(seen, fh)
"""


@pytest.mark.real
@pytest.mark.slow
def test_a_session_over_3000_images_never_holds_more_than_a_chunk(run_aiotbench, tmp_path, shared):
    """3000 crops of 128 px are 147 MB; a chunk of 170 is 8 MB. Structural: no conversion and no read of the
    store is ever larger than a chunk, the all-in-memory stack never runs; and the answers are those of the
    all-in-memory computation."""
    n, chunk = 3000, 170
    data = unique_copies(tmp_path / "data", n, shrink=150)
    (tmp_path / "conftest.py").write_text(SPY)
    cat = write_catalog(tmp_path / "c.toml", [tflite_entry("m", MODEL, 128, min_top1=0.0)])
    run = run_aiotbench("--aiotbench-warmup=5", catalogs=[cat], dataset=data,
                        env={"SPY_OUT": str(tmp_path / "spy.json"), CHUNK_ENV: str(chunk)})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    seen = json.loads((tmp_path / "spy.json").read_text())
    assert seen["stacked"] == 0
    assert max(seen["converted"]) == chunk and sum(seen["converted"]) == n  # each chunk converted once
    assert max(seen["read"]) == chunk
    case = run.report["cases"][0]
    assert case["images"] == n and run.report["settings"]["cache"]["misses"] == n
    assert not list((tmp_path / "pixel-cache" / "stores").glob("*/*"))  # the session's store is gone
    # The all-in-memory computation: every crop stacked, converted at once, inferred in order.
    from pytest_aiotbench.frameworks import get_framework
    from pytest_aiotbench.run.job import topk

    ds = open_dataset(data)
    pixels = ds.pixels(SPEC, PixelCache(tmp_path / "pixel-cache"))
    session = get_framework("tflite").prepare(str(MODEL), PrepareOptions(threads=1))
    try:
        expected = [topk(session.infer(x), 5, True).tolist() for x in to_model_inputs(pixels, SPEC, session.input, "m")]
    finally:
        session.close()
    assert case["per_image"]["top5"] == expected
    labels = np.asarray(ds.labels)
    assert case["top1"] == float(np.mean(np.asarray(expected)[:, 0] == labels))


def test_kept_rows_do_not_hold_the_whole_outputs():
    """What a case keeps per image is its top-k row alone: a view of the whole argsort (8 KB an image at 1000
    classes) made the memory grow with the dataset."""
    from pytest_aiotbench.targets.host import Prepared

    ready = Prepared(_job(_crops(1, 128)), session=None, inputs=None, prepare_s=0.0, first_s=0.0)
    rows = ready.keep([np.arange(1001, dtype=np.float32), np.ones(1001, np.uint8)])
    assert [r.tolist() for r in rows] == [[999, 998, 997, 996, 995], [0, 1, 2, 3, 4]]
    assert all(r.base is None and r.nbytes == 5 * r.itemsize for r in rows)


@pytest.mark.slow
def test_a_report_is_written_without_building_its_whole_text(tmp_path):
    """The JSON report streams to its file: with 50,000 images' rows, json.dumps(indent=1) would allocate ~40 MB
    at once, more than the rest of a case's bookkeeping (the 128 px curve rose 1.32x at 50,000 images with it)."""
    import tracemalloc

    from pytest_aiotbench.files import write_json_atomic

    n = 50_000
    report = {"cases": [{"per_image": {"top5": [[k % 1000, 1, 2, 3, 4] for k in range(n)], "latency_ms": [0.5] * n}}],
              "name": "é"}
    tracemalloc.start()
    try:
        write_json_atomic(tmp_path / "r.json", report)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak / 2**20:.1f} MB"
    assert (tmp_path / "r.json").read_text() == json.dumps(report, indent=1) + "\n"
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "r.json", {"x": float("nan")})
    assert json.loads((tmp_path / "r.json").read_text()) == report and len(list(tmp_path.iterdir())) == 1


WATCH_STORES = """
import json, os
from pathlib import Path

seen = []

def pytest_runtest_setup(item):  # before each case builds its own crops: what earlier cases left
    stores = Path(os.environ["STORES"])
    seen.append([p.name for p in sorted(stores.glob("*/*.npy"))])

def pytest_sessionfinish(session):
    Path(os.environ["SEEN_OUT"]).write_text(json.dumps(seen))
"""


@pytest.mark.real
@pytest.mark.slow
def test_a_geometry_no_later_case_needs_is_removed(run_aiotbench, tmp_path, shared):
    """Issue 19: the session's packed crops hold the geometries still to come, not every one it used."""
    (tmp_path / "watch_stores.py").write_text(WATCH_STORES)  # a plugin: the cases are not under a conftest
    cat = write_catalog(tmp_path / "c.toml", [
        tflite_entry("a128", MODEL, 128, min_top1=0.0),
        tflite_entry("b160", TFLITE_DIR / "mobilenet_v1_0.5_160_quant.tflite", 160, min_top1=0.0),
        tflite_entry("c160", TFLITE_DIR / "mobilenet_v1_0.5_160_quant.tflite", 160, min_top1=0.0),
        tflite_entry("d128", MODEL, 128, min_top1=0.0)])
    run = run_aiotbench("--aiotbench-images=8", "--aiotbench-warmup=1", "--aiotbench-memory=off", "-p",
                        "watch_stores", catalogs=[cat], dataset=shared / "data" / "imagenet-val-500",
                        env={"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
                             "STORES": str(tmp_path / "pixel-cache" / "stores"), "SEEN_OUT": str(tmp_path / "seen")})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert [c["id"].split("-")[0] for c in run.report["cases"]] == ["a128", "b160", "c160", "d128"]
    g128, g160 = (f"{PreprocessSpec(s, round(s / 0.875)).geometry}.npy" for s in (128, 160))
    # before a: nothing; before b: a's 128 kept (d needs it); before c: 160 kept too; before d: 160 gone
    assert json.loads((tmp_path / "seen").read_text()) == [[], [g128], sorted([g128, g160]), [g128]]
    assert not list((tmp_path / "pixel-cache" / "stores").glob("*/*"))  # and the last one at the end
