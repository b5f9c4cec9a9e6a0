"""A catalog entry for an integer-input model without the model's normalization (the stranger test): with the
default mean 0 / std 1, quantizing with the model's own scale and zero point clipped every pixel but 0 to the top
of the range, and the case ran to a top-1 of 0 % with no word why. Now the case fails saying what to set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_aiotbench.frameworks.base import TensorSpec
from pytest_aiotbench.inputs.preprocess import InputShapeError, PreprocessSpec, to_model_inputs
from tests.helpers.catalogs import tflite_entry, write_catalog
from tests.helpers.shared import IMAGENET_500, TFLITE_DIR

PIXELS = (np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3) * 10)
DEFAULT = PreprocessSpec(2, 0, "RGB", "NHWC", (0.0,) * 3, (1.0,) * 3)  # the catalog's defaults
TF_SLIM = PreprocessSpec(2, 0, "RGB", "NHWC", (127.5,) * 3, (127.5,) * 3)
IMAGENET = PreprocessSpec(2, 0, "RGB", "NHWC", (123.7, 116.3, 103.5), (58.4, 57.1, 57.4))


@pytest.mark.parametrize("dtype, quant", [
    (np.uint8, (0.0078125, 128)),  # the TF1 MobileNets of ../shared: [-1, 1]
    (np.int8, (1 / 64, 0)),  # a full-integer export of a [-2, 2] model
    (np.int8, (0.0186, -14)),  # an ImageNet-normalized model, calibrated
])
def test_default_normalization_on_a_normalized_integer_input_fails_naming_mean_std(dtype, quant):
    with pytest.raises(InputShapeError, match=r"m: the catalog's mean/std map pixels to \[0, 255\] .* clip; set "
                                              r"mean/std"):
        to_model_inputs(PIXELS, DEFAULT, TensorSpec((1, 2, 2, 3), np.dtype(dtype), quant), "m")


@pytest.mark.parametrize("spec, dtype, quant", [
    (TF_SLIM, np.uint8, (0.0078125, 128)),
    (TF_SLIM, np.int8, (1 / 64, 0)),
    (IMAGENET, np.int8, (0.0186, -14)),
    (DEFAULT, np.uint8, (1.0, 0)),  # raw pixels: the model's quantization is the pixel scale
    (DEFAULT, np.int8, (1.0, -128)),  # raw pixels shifted to signed
])
def test_a_normalization_the_input_holds_converts(spec, dtype, quant):
    out = to_model_inputs(PIXELS, spec, TensorSpec((1, 2, 2, 3), np.dtype(dtype), quant), "m")
    assert len(out) == 2 and out[0].dtype == dtype


@pytest.mark.slow
@pytest.mark.real
def test_a_real_case_without_mean_std_fails_in_one_line_instead_of_scoring_zero(run_aiotbench, tmp_path):
    entry = tflite_entry("m", TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite", 128)
    del entry["mean"], entry["std"]
    run = run_aiotbench("--aiotbench-images=5", "--aiotbench-memory=off",
                        catalogs=[write_catalog(tmp_path / "cat.toml", [entry])], dataset=IMAGENET_500)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out[-3000:]
    assert "Traceback" not in out
    assert "mean/std map pixels to [0, 255]" in out and "holds [-1, 0.992]" in out
    assert not run.json_path.exists() or all(c["status"] != "passed" and c.get("top1") is None
                                             for c in json.loads(run.json_path.read_text())["cases"])
