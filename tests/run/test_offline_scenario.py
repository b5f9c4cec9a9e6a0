"""The offline (throughput) scenario (issue 21 item 5): every image issued at once to concurrent sessions and, where
the model allows, in batches; the answers (and so the accuracy) equal single-stream's on the same images, exactly,
for real models; batches the model cannot take fall back to batch 1, saying so; answers are checked like
single-stream's."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pytest_aiotbench.inputs.dataset import open_dataset
from pytest_aiotbench.frameworks.base import PrepareOptions
from pytest_aiotbench.inputs.preprocess import PixelCache, PreprocessSpec
from pytest_aiotbench.run import offline
from pytest_aiotbench.verdicts.score import accuracy
from pytest_aiotbench.inputs.pixels import CHUNK_ENV
from pytest_aiotbench.run.job import Job, RunSettings
from pytest_aiotbench.targets.host import InferenceError, execute
from pytest_aiotbench.run.timing import PerfCounterTiming
from pytest_aiotbench.verdicts.validity import assess

from tests.helpers.sanity import SIZE, onnx_model
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR, TORCH_DIR

TFLITE = TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"
ONNX = TORCH_DIR / "mobilenet_v1_0.25_128.onnx"
SPEC_NHWC = PreprocessSpec(128, 146, mean=(127.5,) * 3, std=(127.5,) * 3)
SPEC_NCHW = PreprocessSpec(128, 146, mean=(127.5,) * 3, std=(127.5,) * 3, layout="NCHW")
IMAGES = 48

needs_shared = pytest.mark.skipif(not (IMAGENET_500.is_dir() and TFLITE.exists() and ONNX.exists()),
                                  reason="needs the shared models and images (AIOTBENCH_SHARED)")


@pytest.fixture(scope="module")
def dataset():
    return open_dataset(IMAGENET_500, limit=IMAGES)


def _job(model, framework, spec, pixels, **kw) -> Job:
    return Job(case_id="m", framework=framework, model_file=model, options=PrepareOptions(threads=1), pixels=pixels,
               preprocess=spec, warmup=2, num_classes=1001, background=True, **kw)


def _both(model, framework, spec, ds, **offline_kw):
    pixels = ds.pixels(spec, PixelCache(None))
    single = execute(_job(model, framework, spec, pixels), PerfCounterTiming())
    timing = PerfCounterTiming()
    off = execute(_job(model, framework, spec, pixels, scenario="offline", **offline_kw), timing)
    return single, off, timing


@needs_shared
@pytest.mark.parametrize("model, framework, spec, batch, used", [
    (TFLITE, "tflite", SPEC_NHWC, 1, 1),
    (ONNX, "onnxruntime", SPEC_NCHW, 1, 1),
    (ONNX, "onnxruntime", SPEC_NCHW, 5, 5),  # dynamic batch axis; 48 images: the last batch is shorter
], ids=["tflite-int8", "onnx-fp32", "onnx-fp32-batch5"])
def test_offline_answers_equal_single_stream_on_real_models(dataset, model, framework, spec, batch, used):
    single, off, timing = _both(model, framework, spec, dataset, sessions=2, batch=batch)
    np.testing.assert_array_equal(off.topk, single.topk)  # every image's top-5, so top-1/top-5 accuracy exactly
    assert accuracy(off.topk, dataset.labels, 1) == accuracy(single.topk, dataset.labels, 1)
    assert off.latencies_s == [] and off.offline["images"] == IMAGES
    assert off.offline["sessions"] == 2 and off.offline["batch"] == used and off.offline["batch_note"] is None
    assert off.offline["wall_s"] > 0 and off.offline["images_per_s"] == pytest.approx(IMAGES / off.offline["wall_s"])
    assert timing.load is None or timing.load["threads"] == 2  # the load is judged against every session's threads


@needs_shared
def test_tflite_model_with_a_fixed_batch_runs_batch_1_and_says_why(dataset):
    """The TF-slim MobileNet reshapes its logits to 1 x 1001: TFLite refuses batch 4; the case still runs (batch
    1, every session), and the reason is in the result."""
    single, off, _ = _both(TFLITE, "tflite", SPEC_NHWC, dataset, sessions=2, batch=4)
    np.testing.assert_array_equal(off.topk, single.topk)
    assert off.offline["batch"] == 1 and off.offline["batch_requested"] == 4
    note = off.offline["batch_note"]
    assert note.startswith("mobilenet_v1_0.25_128_quant.tflite: batch 4 not possible (") and "batch 1 used" in note
    assert "\n" not in note


@needs_shared
def test_chunks_are_rounded_to_whole_rounds_and_answers_keep_their_order(dataset, monkeypatch):
    monkeypatch.setenv(CHUNK_ENV, "7")  # forces several chunks; rounded up to 3 sessions x 2 = 6 -> 12
    single, off, _ = _both(ONNX, "onnxruntime", SPEC_NCHW, dataset, sessions=3, batch=2)
    np.testing.assert_array_equal(off.topk, single.topk)
    assert off.offline["chunks"] == IMAGES // 12


def test_offline_chunk_is_whole_rounds():
    assert offline.offline_chunk(7, 128, 6) == 12
    assert offline.offline_chunk(12, 128, 6) == 12
    assert offline.offline_chunk(1, 128, 16) == 16
    assert offline.offline_chunk(None, 224, 2) % 2 == 0


def test_auto_sessions_fill_the_cores():
    assert offline.auto_sessions(1, cores=8) == 8
    assert offline.auto_sessions(3, cores=8) == 2
    assert offline.auto_sessions(16, cores=8) == 1
    assert offline.auto_sessions(1) == offline.usable_cores()


def _flat_pixels(values):
    return np.stack([np.full((SIZE, SIZE, 3), v, np.uint8) for v in values])


def _tiny_job(model, values, **kw):
    return Job(case_id="t", framework="onnxruntime", model_file=model, options=PrepareOptions(), scenario="offline",
               pixels=_flat_pixels(values), preprocess=PreprocessSpec(SIZE, 0, layout="NCHW"), warmup=1,
               num_classes=10, background=False, **kw)


def test_fixed_batch_onnx_model_falls_back_to_batch_1(tmp_path):
    model = onnx_model(tmp_path / "fixed.onnx")  # input 1x3x8x8: no batch axis to grow
    m = execute(_tiny_job(model, [10, 20, 30, 40, 50], sessions=2, batch=3), PerfCounterTiming())
    assert m.offline["batch"] == 1 and "the model's input batch dimension is fixed at 1" in m.offline["batch_note"]
    single = execute(_tiny_job(model, [10, 20, 30, 40, 50], sessions=1), PerfCounterTiming())
    np.testing.assert_array_equal(m.topk, single.topk)


def test_a_non_finite_answer_fails_the_offline_case_naming_the_image(tmp_path):
    """Answers are checked as single-stream's (frameworks.base.check_outputs), between chunks, never timed."""
    model = onnx_model(tmp_path / "late.onnx", nan_below=100.0)  # NaN for the images darker than 100
    with pytest.raises(InferenceError) as err:
        execute(_tiny_job(model, [200, 180, 50, 220, 10], sessions=2), PerfCounterTiming())
    assert str(err.value).startswith("late.onnx: model output is not finite (NaN) on 2 of 5 image(s), first image 3")


def test_issuer_serves_every_request_once_in_order_across_sessions():
    """Constructed runners (sleep releases the GIL like a runtime's inference): each worker takes the next request
    when free; answers come back in request order, each request served once."""
    served: dict[int, list] = {0: [], 1: [], 2: []}

    def runner(k):
        def run(x):
            served[k].append(int(x))
            time.sleep(0.005)
            return [x * 10]
        return offline.Runner(run)

    issuer = offline.Issuer([runner(0), runner(1), runner(2)])
    try:
        answers = issuer.serve(list(range(30)), "m", 1)
    finally:
        issuer.close()
    assert [a[0] for a in answers] == [x * 10 for x in range(30)]
    assert sorted(sum(served.values(), [])) == list(range(30))
    assert all(served[k] for k in served)  # every session got work


def test_a_runtime_error_in_a_worker_is_one_line_naming_the_request():
    def run(x):
        if x == 4:
            raise RuntimeError("kernel exploded\nsecond line")
        return [x]

    issuer = offline.Issuer([offline.Runner(run), offline.Runner(run)])
    try:
        with pytest.raises(offline.OfflineError) as err:
            issuer.serve(list(range(8)), "m.onnx", 1)
    finally:
        issuer.close()
    assert str(err.value).startswith("m.onnx: inference failed (offline, request 5 of 8 from image 1): kernel exploded")
    assert "\n" not in str(err.value)


def test_offline_validity_judges_the_load_only():
    v = assess(None, None)
    assert v["valid"] and "images" not in v["checks"]
    assert any(n.startswith("offline scenario: no per-image latency") for n in v["notes"])
    busy = {"waited_share": 0.5, "other_busy_cores": 0.0, "loadavg_1m": 0.1, "cores": 2, "threads": 2,
            "busy_processes": []}
    v = assess(None, busy)
    assert not v["valid"] and v["reasons"][0].startswith("contention")


@needs_shared
def test_run_case_offline_without_pytest(dataset, tmp_path):
    """pipeline.run_case (the plugin's path, without pytest) builds the offline entry: throughput, offline VIPS,
    no latency or single-stream VIPS, accuracy as single-stream's run_case on the same images."""
    from pytest_aiotbench.inputs import catalog
    from pytest_aiotbench.pipeline import run_case
    from pytest_aiotbench.targets.host import HostTarget
    from tests.helpers.catalogs import tflite_entry, write_catalog

    case = catalog.load(write_catalog(tmp_path / "c.toml", [tflite_entry("m", TFLITE, 128)]))[0]
    single = run_case(case, dataset, HostTarget(), run=RunSettings(warmup=1))
    entry = run_case(case, dataset, HostTarget(), run=RunSettings(warmup=1, scenario="offline", sessions=2))
    assert entry["scenario"] == "offline" and "scenario" not in single
    assert (entry["top1"], entry["top5"]) == (single["top1"], single["top5"])
    assert entry["latency_ms"] is None and entry["vips"] is None and entry["offline"]["sessions"] == 2
    assert entry["offline"]["vips"] == pytest.approx(entry["top1"] * entry["images_per_s"])
    assert "load" not in entry["offline"]  # judged in the validity, not repeated
