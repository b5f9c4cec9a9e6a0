"""Issue 22, bad 2 and poor "data": every image mode Pillow can open becomes 8-bit RGB by a stated rule
(``preprocess.MODE_RULES``) or is refused with one line naming the file and the mode; 16-bit greyscale is scaled,
never clipped to white; an image over Pillow's pixel limit says so; a synset column that contradicts class_index is
an error naming the line. The fuzz at the end draws seeded random images in every mode and compares each with an
independent numpy conversion."""

from __future__ import annotations

import colorsys
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pytest_aiotbench import dataset, preprocess
from pytest_aiotbench.preprocess import MODE_RULES, PreprocessError, PreprocessSpec, crop_pixels, to_rgb

SPEC = PreprocessSpec(24, 28)  # resize the shorter side to 28, center crop 24: the real pipeline, small
STRAIGHT = PreprocessSpec(16, 0)


def encoded(img: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def old_pipeline(data: bytes, spec: PreprocessSpec) -> np.ndarray:
    """The conversion before issue 22 (convert("RGB"), then the same geometry): RGB/L/P/CMYK results must not move."""
    with Image.open(io.BytesIO(data)) as img:
        return geometry(img.convert("RGB"), spec)


def geometry(img: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    w, h = img.size
    if spec.resize:
        nw, nh = (spec.resize, round(h * spec.resize / w)) if w <= h else (round(w * spec.resize / h), spec.resize)
        img = img.resize((nw, nh), Image.BILINEAR)
        left, top = int(round((nw - spec.input_size) / 2.0)), int(round((nh - spec.input_size) / 2.0))
        img = img.crop((left, top, left + spec.input_size, top + spec.input_size))
    else:
        img = img.resize((spec.input_size, spec.input_size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


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


# ---------------------------------------------------------------------------------------------- the seeded fuzz

def _reference(img: Image.Image) -> tuple[np.ndarray, int] | None:
    """An independent RGB conversion of ``img`` (numpy and colorsys from its raw bands) and the largest difference
    allowed (0 where the rule is ours; 1 where Pillow's integer formula rounds differently), or None: refused."""
    mode = img.mode
    if mode in ("F", "LAB"):
        return None
    a = np.asarray(img)
    white = lambda c, al: ((c.astype(np.uint32) * al + 255 * (255 - al.astype(np.uint32)) + 127) // 255)  # noqa: E731
    if mode == "1":
        g = a.astype(np.uint8) * 255
        return np.stack([g] * 3, -1), 0
    if mode == "L":
        return np.stack([a] * 3, -1), 0
    if mode == "LA":
        g = white(a[..., 0], a[..., 1])
        return np.stack([g] * 3, -1).astype(np.uint8), 0
    if mode in ("P", "PA"):
        pal = np.array(img.getpalette("RGB"), np.uint8).reshape(-1, 3)
        idx = a[..., 0] if mode == "PA" else a
        rgb = pal[idx]
        if mode == "PA":
            return white(rgb, a[..., 1:2]).astype(np.uint8), 0
        if "transparency" in img.info:
            alpha = np.where(idx == img.info["transparency"], 0, 255)[..., None]
            return white(rgb, alpha).astype(np.uint8), 0
        return rgb, 0
    if mode in ("RGB", "RGBX"):
        return a[..., :3], 0
    if mode == "RGBA":
        return white(a[..., :3], a[..., 3:4]).astype(np.uint8), 0
    if mode == "CMYK":
        k = a[..., 3:4].astype(np.float64)
        return np.round((255 - a[..., :3]) * (255 - k) / 255).astype(np.uint8), 1
    if mode == "YCbCr":
        y, cb, cr = (a[..., i].astype(np.float64) for i in range(3))
        rgb = np.stack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                        y + 1.772 * (cb - 128)], -1)
        return np.clip(np.round(rgb), 0, 255).astype(np.uint8), 1
    if mode == "HSV":
        flat = [[round(c * 255) for c in colorsys.hsv_to_rgb(*(p / 255.0))] for p in a.reshape(-1, 3)]
        return np.array(flat, np.uint8).reshape(a.shape), 1
    if mode.startswith("I"):
        v = a.astype(np.int64)
        if v.min() < 0 or v.max() > 65535:
            return None
        g = (v // 256).astype(np.uint8)
        return np.stack([g] * 3, -1), 0
    raise AssertionError(f"no reference for mode {mode}")


def _random_image(mode: str, rng: np.random.Generator) -> Image.Image:
    w, h = (int(v) for v in rng.integers(3, 20, 2))
    if mode == "1":
        return Image.fromarray(rng.integers(0, 2, (h, w)).astype(bool))
    if mode.startswith("I;16"):
        img = Image.new(mode, (w, h))
        raw = rng.integers(0, 65536, (h, w)).astype({"I;16B": ">u2", "I;16N": "=u2"}.get(mode, "<u2"))
        img.frombytes(raw.tobytes())
        return img
    if mode == "I":
        hi = 65536 if rng.random() < 0.8 else 100000  # sometimes outside 16 bits: refused
        return Image.fromarray(rng.integers(-5 if hi > 65536 else 0, hi, (h, w)).astype(np.int32), "I")
    if mode == "F":
        return Image.fromarray(rng.random((h, w)).astype(np.float32), "F")
    if mode in ("P", "PA"):
        img = Image.new(mode, (w, h))
        img.putpalette(rng.integers(0, 256, 768).astype(np.uint8).tobytes())
        bands = 2 if mode == "PA" else 1
        img.frombytes(rng.integers(0, 256, (h, w, bands)).astype(np.uint8).tobytes())
        if mode == "P" and rng.random() < 0.5:
            img.info["transparency"] = int(img.getpixel((0, 0)))
        return img
    bands = len(Image.new(mode, (1, 1)).getbands())
    return Image.frombytes(mode, (w, h), rng.integers(0, 256, (h, w, bands)).astype(np.uint8).tobytes())


# Modes Pillow opens from files, and a format that keeps each (HSV has none: converted in memory only).
FUZZ_MODES = {"1": "PNG", "L": "PNG", "LA": "PNG", "P": "PNG", "PA": "TIFF", "RGB": "PNG", "RGBA": "PNG",
              "RGBX": None, "CMYK": "TIFF", "YCbCr": "TIFF", "LAB": "TIFF", "HSV": None, "I": "TIFF",
              "I;16": "PNG", "I;16B": "TIFF", "I;16L": "TIFF", "I;16N": None, "F": "TIFF"}


def test_fuzz_every_mode_matches_an_independent_conversion_or_is_refused():
    rng = np.random.default_rng(2022)
    seen = {"converted": set(), "refused": set()}
    for round_ in range(6):
        for mode, fmt in FUZZ_MODES.items():
            img = _random_image(mode, rng)
            expected = _reference(img)
            name = f"fuzz-{round_}-{mode}"
            if expected is None:
                with pytest.raises(PreprocessError) as err:
                    to_rgb(img, name)
                assert str(err.value).startswith(f"cannot read image {name}: image mode {img.mode} ")
                assert "\n" not in str(err.value)
                seen["refused"].add(mode)
            else:
                want, tolerance = expected
                got = np.asarray(to_rgb(img, name))
                assert got.dtype == np.uint8 and got.shape == want.shape, (mode, got.shape, want.shape)
                diff = np.abs(got.astype(int) - want.astype(int)).max()
                assert diff <= tolerance, (mode, round_, diff)
                seen["converted"].add(mode)
            if fmt is None:
                continue
            data = encoded(img, fmt)  # through a file: what the dataset sees
            with Image.open(io.BytesIO(data)) as reopened:
                assert reopened.mode == (img.mode if img.mode != "I;16L" else "I;16"), (mode, reopened.mode)
            if expected is None:
                with pytest.raises(PreprocessError):
                    crop_pixels(data, STRAIGHT, name)
            else:
                with Image.open(io.BytesIO(data)) as reopened:
                    want_rgb, tolerance = _reference(reopened)
                got = crop_pixels(data, STRAIGHT, name)
                ref = geometry(Image.fromarray(want_rgb, "RGB"), STRAIGHT)
                assert np.abs(got.astype(int) - ref.astype(int)).max() <= tolerance, (mode, round_)
    assert seen["refused"] >= {"F", "LAB"} and seen["converted"] >= set(FUZZ_MODES) - {"F", "LAB"}
    assert set(MODE_RULES) <= set(FUZZ_MODES)  # every mode with a rule is fuzzed
