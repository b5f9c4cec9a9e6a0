"""Unit tests of the pipeline's pure parts: ranking and scores, dataset discovery, input conversion, catalogs."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pytest_aiotbench.inputs import catalog, dataset
from pytest_aiotbench.run import job
from pytest_aiotbench.verdicts import score
from pytest_aiotbench.frameworks.base import TensorSpec
from pytest_aiotbench.inputs.preprocess import InputShapeError, PreprocessSpec, to_model_inputs


def test_topk_breaks_ties_toward_the_lower_class_and_drops_background():
    scores = np.array([255, 7, 9, 9, 3, 9], dtype=np.uint8)  # background would win; classes 1, 2, 4 tie
    assert job.topk(scores, 3, background=True).tolist() == [1, 2, 4]
    assert job.topk(scores, 2, background=False).tolist() == [0, 2]


def test_topk_uint8_has_no_wraparound():
    assert job.topk(np.array([0, 1, 255], dtype=np.uint8), 1).tolist() == [2]


def test_accuracy_vips_vops_and_device_score():
    rows = np.array([[3, 1], [2, 5], [7, 8]])
    assert score.accuracy(rows, [3, 5, 0], 1) == pytest.approx(1 / 3)
    assert score.accuracy(rows, [3, 5, 0], 2) == pytest.approx(2 / 3)
    assert score.vips(0.8, 0.004) == pytest.approx(200.0)
    assert score.vops(200.0, 0.3) == pytest.approx(60.0)
    assert score.vips(None, 0.004) is None
    results = [{"id": "a", "vips": 100.0, "vops": 30.0}, {"id": "b", "vips": 50.0, "vops": None}]
    full = score.device_score(results, ["a", "b"])
    assert (full.vips, full.vops, full.cases, full.partial) == (150.0, 30.0, 2, False)
    partial = score.device_score(results, ["a", "b", "c"])
    assert partial.partial and partial.missing == ["c"] and partial.partial_reasons == ["1 canonical case(s) not scored"]
    cut = score.device_score(results, ["a"], ["only the first 40 images"])
    assert cut.partial and cut.partial_reasons == ["only the first 40 images"]
    assert score.device_score(results, None).partial_reasons == ["the canonical catalog was not found"]


def _tree(root, classes: int, per_class: int, src):
    synsets = dataset.imagenet_synsets()
    for c in range(classes):
        folder = root / synsets[c * 7]
        folder.mkdir(parents=True)
        for i in range(per_class):
            (folder / f"ILSVRC2012_val_{c:03d}{i:02d}.JPEG").symlink_to(src)


def test_imagenet_tree_labels_come_from_the_synset_list_not_folder_order(tmp_path, shared):
    src = next((shared / "data" / "imagenet-val-500").glob("n*/*.JPEG"))
    _tree(tmp_path, classes=3, per_class=2, src=src)
    ds = dataset.open_dataset(tmp_path)
    assert ds.labels == [0, 0, 7, 7, 14, 14]  # folder enumeration would say 0, 0, 1, 1, 2, 2
    assert not ds.protocol and "too small for the 100 x 5 protocol" in ds.note


def test_full_val_tree_draws_the_seeded_protocol_subset(tmp_path, shared):
    src = next((shared / "data" / "imagenet-val-500").glob("n*/*.JPEG"))
    _tree(tmp_path, classes=120, per_class=6, src=src)
    first, again = dataset.open_dataset(tmp_path), dataset.open_dataset(tmp_path)
    assert first.protocol and len(first) == 500 and first.files == again.files
    assert len(set(first.labels)) == 100 and all(first.labels.count(label) == 5 for label in set(first.labels))
    assert first.labels == sorted(first.labels)
    other_seed = dataset.open_dataset(tmp_path, seed=7)
    assert other_seed.files != first.files and other_seed.seed == 7
    assert dataset.open_dataset(tmp_path, limit=10).files == first.files[:10]


def test_labels_csv_keeps_its_order_and_fingerprint_tracks_labels(tmp_path, shared):
    src = next((shared / "data" / "imagenet-val-500").glob("n*/*.JPEG"))
    (tmp_path / "b.jpg").symlink_to(src)
    (tmp_path / "a.jpg").symlink_to(src)
    (tmp_path / "labels.csv").write_text("file,synset,class_index\nb.jpg,x,5\na.jpg,x,6\n")
    ds = dataset.open_dataset(tmp_path)
    assert ds.files == ["b.jpg", "a.jpg"] and ds.labels == [5, 6]
    (tmp_path / "labels.csv").write_text("file,synset,class_index\nb.jpg,x,5\na.jpg,x,7\n")
    assert dataset.open_dataset(tmp_path).fingerprint() != ds.fingerprint()
    (tmp_path / "labels.csv").write_text("file,synset,class_index\nb.jpg,x,five\n")
    with pytest.raises(dataset.DatasetError, match="line 2: class_index 'five' is not an integer"):
        dataset.open_dataset(tmp_path)


SPEC = PreprocessSpec(2, 0, "RGB", "NHWC", (127.5,) * 3, (127.5,) * 3)
PIXELS = np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3) * 10


def test_pixel_scale_quantized_input_gets_raw_pixels():
    for quant in [(0.0078125, 128), (0.007843137719, 127)]:  # the TF1 and TF2 MobileNets of ../shared
        out = to_model_inputs(PIXELS, SPEC, TensorSpec((1, 2, 2, 3), np.dtype(np.uint8), quant), "m")
        assert len(out) == 2 and np.array_equal(out[1][0], PIXELS[1])


def test_other_quantization_is_applied_and_float_is_normalized():
    out = to_model_inputs(PIXELS, SPEC, TensorSpec((1, 2, 2, 3), np.dtype(np.int8), (1 / 64, 0)), "m")
    expected = np.clip(np.round((PIXELS.astype(np.float32) - 127.5) / 127.5 * 64), -128, 127)
    assert np.array_equal(np.concatenate(out), expected)
    nchw = PreprocessSpec(2, 0, "BGR", "NCHW", (127.5,) * 3, (127.5,) * 3)
    out = to_model_inputs(PIXELS, nchw, TensorSpec((-1, 3, 2, 2), np.dtype(np.float32)), "m")
    assert out[0].shape == (1, 3, 2, 2)
    assert out[0][0, 0, 0, 0] == pytest.approx((PIXELS[0, 0, 0, 2] - 127.5) / 127.5)  # BGR: blue first


def test_wrong_input_shape_is_reported():
    with pytest.raises(InputShapeError, match="model input is 1x3x2x2 but the catalog says NHWC 2x2"):
        to_model_inputs(PIXELS, SPEC, TensorSpec((1, 3, 2, 2), np.dtype(np.float32)), "m")


def test_catalog_variants_inherit_model_keys_and_env_paths_expand(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELS_HOME", "/opt/models")
    path = tmp_path / "c.toml"
    path.write_text("""
[[model]]
name = "net"
input_size = 224
layout = "NCHW"
gflops = 0.3
  [[model.variant]]
  framework = "tflite"
  quant = "fp16"
  layout = "NHWC"
  file = "${MODELS_HOME}/net-fp16.tflite"
  [[model.variant]]
  framework = "onnxruntime"
  quant = "fp32"
  file = "net.onnx"
  min_top1 = 0.7
""")
    tfl, onnx = catalog.load(path)
    assert (tfl.id, tfl.preprocess.layout, str(tfl.file)) == ("net-tflite-fp16", "NHWC", "/opt/models/net-fp16.tflite")
    assert (onnx.preprocess.layout, onnx.file, onnx.min_top1, onnx.gflops) == ("NCHW", tmp_path / "net.onnx", 0.7, 0.3)
    assert tfl.preprocess.resize == 256  # default: the 0.875 central crop


@pytest.mark.parametrize("text,message", [
    ('[[model]]\nname="n"\nframework="t"\nquant="int8"\nfile="f"\ninput_size=224\nmin_top1=70\n', "model 'n': min_top1 = 70: expected a number in [0, 1]"),
    ('[[model]]\nname="n"\nframework="t"\nquant="int8"\nfile="f"\ninput_size=224\nlayuot="NCHW"\n', "unknown key(s) layuot"),
    ('[[model]]\nname="n"\nframework="t"\nquant="int8"\nfile="f"\ninput_size=224\ncolor="YUV"\n', 'color = "YUV": expected one of RGB, BGR'),
    ('[[model', "not valid TOML"),
])
def test_catalog_errors_name_the_problem(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(catalog.CatalogError, match=re.escape(message)):
        catalog.load(path)


@pytest.mark.parametrize("data,what", [(b"", "empty file"), (b"GIF89a-not-really", "not an image Pillow can decode")])
def test_an_undecodable_image_is_named_not_shown_as_a_buffer(data, what):
    from pytest_aiotbench.inputs.preprocess import PreprocessError, crop_pixels

    with pytest.raises(PreprocessError) as info:
        crop_pixels(data, SPEC, "data/n01440764/bad.JPEG")
    assert str(info.value).startswith(f"cannot read image data/n01440764/bad.JPEG: {what}")
    assert "BytesIO" not in str(info.value)


def test_the_atomic_writer_leaves_the_old_file_whole_when_a_write_fails(tmp_path):
    """storage.write_atomic is the one writer of reports and cache entries: a writer that fails half-way leaves
    the previous file untouched and no temporary file behind."""
    from pytest_aiotbench.files import write_atomic, write_text_atomic

    target = tmp_path / "sub" / "entry.npy"
    write_text_atomic(target, "old")

    def half_then_fail(fh):
        fh.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_atomic(target, half_then_fail, durable=False)
    assert target.read_text() == "old" and sorted(p.name for p in target.parent.iterdir()) == ["entry.npy"]
    import numpy as np

    write_atomic(target, lambda fh: np.save(fh, np.arange(3, dtype=np.uint8)), durable=False)
    assert np.load(target).tolist() == [0, 1, 2]
