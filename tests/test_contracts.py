"""Contracts written once: install hints come from ``Framework.requirement``; a report's score follows
``score.device_score``; one list of image suffixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_aiotbench.frameworks import available_frameworks, get_framework
from pytest_aiotbench.frameworks.base import FrameworkUnavailable
from pytest_aiotbench.report.read import score_of
from pytest_aiotbench.verdicts.score import device_score

from tests.helpers.reports import make_case


@pytest.mark.parametrize("name", ["tflite", "pytorch-mobile", "onnxruntime", "executorch", "ncnn", "mnn", "openvino"])
def test_install_hint_comes_from_the_requirement(name):
    if name not in available_frameworks():
        pytest.skip(f"{name} not registered")
    framework = get_framework(name)
    exc = FrameworkUnavailable.missing(framework, "some-runtime==1.0")
    assert exc.fix == f"pip install '{framework.requirement}'  (some-runtime==1.0)"
    assert str(exc) == f"{name} runtime is not installed: {exc.fix}"


def test_report_score_is_the_device_score_rule():
    cases = [make_case("a-tflite-int8", seed=1), make_case("b-onnx-fp32", status="skipped"),
             make_case("c-tflite-fp32", top1=None)]
    score = score_of(cases)
    rule = device_score(cases, [c["id"] for c in cases])
    assert (score["vips"], score["vops"], score["partial"], score["missing"]) == \
           (rule.vips, rule.vops, True, ["b-onnx-fp32", "c-tflite-fp32"])
    assert score["cases"] == 3
    full = score_of([make_case("a-tflite-int8", seed=1)])
    assert not full["partial"] and full["vips"] == pytest.approx(cases[0]["vips"])


def test_one_image_suffix_list():
    from pytest_aiotbench.inputs import dataset
    from pytest_aiotbench.zoo import calibration

    # the one list is imported, not written again (an identity check breaks when pytester's in-process runs
    # earlier in the same worker re-imported one of the modules)
    assert calibration.IMAGE_SUFFIXES == dataset.IMAGE_SUFFIXES
    assert "IMAGE_SUFFIXES =" not in Path(calibration.__file__).read_text()
    assert {".jpeg", ".jpg", ".png"} <= dataset.IMAGE_SUFFIXES


def test_dataset_readme_states_the_protocol_the_code_uses():
    from pytest_aiotbench.inputs import dataset
    from tests.helpers.shared import REPO

    text = (REPO / "dataset" / "README.md").read_text()
    assert f"{dataset.PROTOCOL_CLASSES} classes × {dataset.PROTOCOL_PER_CLASS} images with seed " \
           f"{dataset.PROTOCOL_SEED}" in text
    assert f"{dataset.SYNTHETIC_IMAGES} deterministic synthetic images" in text
    assert all(suffix in text for suffix in dataset.IMAGE_SUFFIXES)
