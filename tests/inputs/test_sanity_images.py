"""Issue 22, bad 2 and poor "data": every image mode Pillow can open becomes 8-bit RGB by a stated rule
(``preprocess.MODE_RULES``) or is refused with one line naming the file and the mode; 16-bit greyscale is scaled,
never clipped to white; an image over Pillow's pixel limit says so; a synset column that contradicts class_index is
an error naming the line. The seeded fuzz of every mode against an independent numpy conversion is in
tests/inputs/test_sanity_fuzz.py (tests/inputs/test_sanity_fuzz.py)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pytest_aiotbench.inputs import dataset, preprocess
from pytest_aiotbench.inputs.preprocess import MODE_RULES, PreprocessError, PreprocessSpec, crop_pixels
from tests.helpers.sanity import encoded, geometry

SPEC = PreprocessSpec(24, 28)  # resize the shorter side to 28, center crop 24: the real pipeline, small
STRAIGHT = PreprocessSpec(16, 0)


def old_pipeline(data: bytes, spec: PreprocessSpec) -> np.ndarray:
    """The conversion before issue 22 (convert("RGB"), then the same geometry): RGB/L/P/CMYK results must not move."""
    with Image.open(io.BytesIO(data)) as img:
        return geometry(img.convert("RGB"), spec)


# ------------------------------------------------------------------------------------------------ regressions

def test_16_bit_greyscale_png_is_scaled_not_white(shared):
    from tests.helpers.shared import IMAGENET_500

    grey8 = Image.open(IMAGENET_500 / "n02951358/ILSVRC2012_val_00000347.JPEG").convert("L")
    grey16 = Image.fromarray(np.asarray(grey8).astype(np.uint16) * 257)  # the same picture at 16 bits
    data16 = encoded(grey16, "PNG")
    assert Image.open(io.BytesIO(data16)).mode == "I;16"
    assert old_pipeline(data16, SPEC).min() == 255  # what it was: a white image
    spec = PreprocessSpec(224, 256)
    got = crop_pixels(data16, spec, "grey16.png")
    assert np.array_equal(got, crop_pixels(encoded(grey8, "PNG"), spec, "grey8.png"))
    assert got.std() > 20


def test_rgb_l_p_cmyk_jpegs_and_pngs_keep_their_pixels(shared):
    """Accuracy numbers must not move: the modes the shared data has convert exactly as before."""
    from tests.helpers.shared import IMAGENET_500

    sample = Image.open(IMAGENET_500 / "n02951358/ILSVRC2012_val_00000347.JPEG")
    spec = PreprocessSpec(224, 256)
    cases = [(IMAGENET_500 / "n02951358/ILSVRC2012_val_00000347.JPEG").read_bytes(),
             encoded(sample.convert("L"), "JPEG"), encoded(sample.convert("CMYK"), "JPEG"),
             encoded(sample.convert("P"), "PNG"), encoded(sample.convert("L"), "PNG")]
    for data in cases:
        assert np.array_equal(crop_pixels(data, spec, "x"), old_pipeline(data, spec))


def test_cache_key_carries_the_mode_rules():
    import hashlib

    digest = hashlib.sha256(repr(sorted(MODE_RULES.items())).encode()).hexdigest()[:8]
    assert preprocess.PIXELS_VERSION.endswith(digest) and digest in SPEC.geometry


@pytest.mark.parametrize("mode, fmt, why", [("F", "TIFF", "32-bit float pixels have no defined range"),
                                            ("LAB", "TIFF", "Pillow has no colour-correct LAB to RGB conversion")])
def test_modes_without_a_correct_conversion_are_refused_in_one_line(mode, fmt, why):
    data = encoded(Image.new(mode, (8, 8)), fmt)
    with pytest.raises(PreprocessError) as err:
        crop_pixels(data, SPEC, "odd.tif")
    assert str(err.value).startswith(f"cannot read image odd.tif: image mode {mode} is not supported ({why}")
    assert "\n" not in str(err.value)


def test_mode_i_outside_16_bits_is_refused():
    img = Image.fromarray(np.array([[0, 70000], [5, 9]], np.int32), "I")
    with pytest.raises(PreprocessError, match=r"^cannot read image i\.tif: image mode I with values 0\.\.70000 "
                                              r"outside the 16-bit range"):
        crop_pixels(encoded(img, "TIFF"), STRAIGHT, "i.tif")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (the body is never read by the header check)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 8)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [15000, 20000])  # over the limit (Pillow warns), over twice (Pillow raises)
def test_image_over_the_pixel_limit_says_so(tmp_path, side):
    (tmp_path / "huge.png").write_bytes(_png_header_only(side, side))
    (tmp_path / "labels.csv").write_text("file,synset,class_index\nhuge.png,n01440764,0\n")
    ds = dataset.open_dataset(tmp_path)
    with pytest.raises(dataset.DatasetError) as err:
        ds.check_files()
    limit = Image.MAX_IMAGE_PIXELS
    assert f"huge.png ({side * side} pixels is over Pillow's decompression-bomb limit of {limit} pixels" in \
        str(err.value) or f"huge.png ({side}x{side} = {side * side} pixels is over Pillow's decompression-bomb " \
        f"limit of {limit} pixels" in str(err.value), str(err.value)
    assert "not an image Pillow can decode" not in str(err.value)
    with pytest.raises(PreprocessError, match="decompression-bomb limit"):
        crop_pixels(_png_header_only(side, side), SPEC, "huge.png")


def test_synset_that_contradicts_class_index_names_the_line(tmp_path):
    img = encoded(Image.new("RGB", (8, 8)), "PNG")
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(img)
    (tmp_path / "labels.csv").write_text("file,synset,class_index\na.png,n01440764,0\nb.png,n01443537,0\n")
    with pytest.raises(dataset.DatasetError) as err:
        dataset.open_dataset(tmp_path)
    assert str(err.value) == (f"{tmp_path / 'labels.csv'} line 3: synset 'n01443537' (which is class_index 1) "
                              "contradicts class_index 0 (n01440764)")
    (tmp_path / "labels.csv").write_text("file,synset,class_index\na.png,n01440764,0\nb.png,n99999999,1\n")
    with pytest.raises(dataset.DatasetError, match="line 3: synset 'n99999999' \\(not one of the 1000 ILSVRC2012 "
                                                   "synsets\\) contradicts class_index 1"):
        dataset.open_dataset(tmp_path)
    (tmp_path / "labels.csv").write_text("file,synset,class_index\na.png,n01440764,0\nb.png,n01443537,1\n")
    assert dataset.open_dataset(tmp_path).labels == [0, 1]


def test_shared_labels_agree_with_their_synsets(shared):
    from tests.helpers.shared import IMAGENET_500

    assert len(dataset.open_dataset(IMAGENET_500)) == 500


def test_refused_mode_stops_the_run_before_any_case(tmp_path):
    for name, img in (("ok.png", Image.new("RGB", (8, 8))), ("float.tif", Image.new("F", (8, 8)))):
        img.save(tmp_path / name)
    (tmp_path / "labels.csv").write_text("file,synset,class_index\nok.png,n01440764,0\nfloat.tif,n01440764,0\n")
    with pytest.raises(dataset.DatasetError) as err:
        dataset.open_dataset(tmp_path).check_files()
    assert str(err.value) == (f"{tmp_path}: 1 of 2 images cannot be used: float.tif (image mode F is not supported "
                              "(32-bit float pixels have no defined range (0..1? 0..255?)); save it as 8-bit RGB or "
                              "greyscale)")
