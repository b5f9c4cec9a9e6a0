"""Issue 20: the zoo builds ncnn (pnnx), MNN and OpenVINO artifacts from the same weights as every other artifact,
recorded in the manifest with sha256 (their weights files too) and converter versions; the fp32 variants are exact,
the engines' lower default precisions are separate labelled variants (ncnn fp16, OpenVINO bf16)."""

from __future__ import annotations

import json
import shutil

import pytest

from pytest_aiotbench.zoo import OPTIONAL_VARIANTS, RELATIVE_THRESHOLDS, VARIANT_OPTIONS, VARIANTS
from tests.helpers.shared import IMAGENET_500, TORCH_DIR
from tests.frameworks.test_executorch import TOP1, zoo_build
from tests.helpers.zoo import has_module

pytestmark = pytest.mark.real

ENGINE_VARIANTS = ("ncnn", "ncnn-fp16", "mnn", "openvino", "openvino-bf16")
TS_MODEL = TORCH_DIR / "mobilenet_v2_1.0_224.pt"


def test_engine_variants_are_optional_labelled_and_carry_their_precision():
    for v in ENGINE_VARIANTS:
        framework, quant, layout, pattern, _ = VARIANTS[v]
        assert v in OPTIONAL_VARIANTS and layout == "NCHW"
    assert (VARIANTS["ncnn-fp16"][1], VARIANT_OPTIONS["ncnn-fp16"]) == ("fp16", {"fp16": True})
    assert (VARIANTS["openvino-bf16"][1], VARIANT_OPTIONS["openvino-bf16"]) == ("bf16", {"precision": "bf16"})
    assert all(VARIANTS[v][1] == "fp32" and v not in VARIANT_OPTIONS for v in ("ncnn", "mnn", "openvino"))
    assert {"ncnn-fp16", "openvino-bf16"} <= set(RELATIVE_THRESHOLDS)
    # the committed catalog carries the options, so a bf16 case never runs as f32
    from pytest_aiotbench.inputs import catalog
    from tests.helpers.shared import REPO

    cases = {c.id: c for c in catalog.load(REPO / "models" / "aiotbench.toml", builtin=True)}
    assert cases["mobilenet_v2-openvino-bf16"].options == {"precision": "bf16"}
    assert cases["mobilenet_v2-ncnn-fp16"].options == {"fp16": True}
    assert cases["mobilenet_v2-openvino-fp32"].options == {} and not cases["mobilenet_v2-mnn-fp32"].canonical


@pytest.fixture(scope="module")
def engine_zoo(tmp_path_factory):
    if not all(has_module(m) for m in ("pnnx", "ncnn", "MNN", "openvino", "torch")):
        pytest.skip("pip install -e '.[zoo,ncnn,mnn,openvino]'")
    if not (TS_MODEL.is_file() and IMAGENET_500.is_dir()):
        pytest.skip("shared data not found (set AIOTBENCH_SHARED)")
    out = tmp_path_factory.mktemp("enginezoo") / "out"
    home = tmp_path_factory.mktemp("home")  # the build must write nothing under $HOME (OpenVINO telemetry: ~/intel)
    r = zoo_build(out, "--variants", ",".join(ENGINE_VARIANTS), env={"HOME": str(home)})
    assert r.returncode == 0, r.stderr[-4000:]
    assert list(home.rglob("*")) == [], list(home.rglob("*"))
    return out, r


@pytest.mark.zoo
@pytest.mark.slow
def test_manifest_records_sha256_companions_and_converter_versions(engine_zoo):
    from pytest_aiotbench.inputs import manifest as mf

    out, r = engine_zoo
    data = json.loads((out / "manifest.json").read_text())
    files = data["files"]
    tools = {"ncnn": {"pnnx", "ncnn"}, "mnn": {"MNN", "onnx"}, "openvino": {"openvino", "onnx"}}
    for v in ENGINE_VARIANTS:
        framework, quant, _, pattern, _ = VARIANTS[v]
        key = "mobilenet_v2_tf/" + pattern.format(name="mobilenet_v2_tf")
        e = files[key]
        assert e["sha256"] == mf.file_sha256(out / key) and (e["framework"], e["quant"]) == (framework, quant)
        assert tools[framework] <= {k for k, ver in e["tools"].items() if ver}, e["tools"]
        assert e["weights"].startswith("torchscript:") and e["coverage"]["complete"], e["coverage"]
        if framework in ("ncnn", "openvino"):  # the weights beside the .param/.xml are hashed too
            (name, c), = e["companions"].items()
            assert c["sha256"] == mf.file_sha256(out / "mobilenet_v2_tf" / name) and c["size"] > 5e6
        details = e["details"]
        if quant == "fp32":
            assert details["max_abs_diff_vs_eager"] < 1e-4, (v, details["max_abs_diff_vs_eager"])
            assert details["weights_dtype"] == "fp32"
    assert files["mobilenet_v2_tf/mobilenet_v2_tf-fp16.ncnn.param"]["details"]["weights_dtype"] == "fp16"
    bf16 = files["mobilenet_v2_tf/mobilenet_v2_tf-bf16.xml"]
    assert bf16["details"]["runtime_precision"] == "bf16"
    if "verify_error" not in bf16["details"]:  # this CPU runs bf16: the nodes say so
        assert bf16["coverage"]["runtime_precisions"].get("bf16")
    text = (out / "catalog.toml").read_text()
    assert 'options = { precision = "bf16" }' in text and "options = { fp16 = true }" in text
    again = zoo_build(out, "--variants", ",".join(ENGINE_VARIANTS))
    assert again.returncode == 0 and again.stderr.count(": up to date") == 5, again.stderr[-2000:]


@pytest.mark.zoo
@pytest.mark.slow
def test_fp32_variants_are_exact_on_the_500_images_and_lower_precisions_are_labelled(engine_zoo, run_aiotbench):
    out, _ = engine_zoo
    run = run_aiotbench(catalogs=[out / "catalog.toml"], dataset=IMAGENET_500)
    assert run.returncode == 0, run.stdout[-3000:]
    cases = {c["id"]: c for c in run.report["cases"]}
    for framework in ("ncnn", "mnn", "openvino"):
        c = cases[f"mobilenet_v2_tf-{framework}-fp32"]
        assert c["status"] == "passed" and c["images"] == 500
        assert abs(c["top1"] - TOP1) <= 0.002, (framework, c["top1"])  # the .onnx/.ptl/TFLite fp32 figure
    fp16 = cases["mobilenet_v2_tf-ncnn-fp16"]
    assert fp16["runtime"]["precision"] == "fp16 storage + arithmetic" and fp16["status"] == "passed"
    bf16 = cases["mobilenet_v2_tf-openvino-bf16"]
    if bf16["status"] == "skipped":
        assert "does not support bf16" in bf16["reason"]
    else:
        assert bf16["runtime"]["precision"] == "bf16" and abs(bf16["top1"] - TOP1) <= 0.03
    print({k: c.get("top1") for k, c in cases.items()})


@pytest.mark.zoo
@pytest.mark.slow
def test_a_changed_weights_file_beside_the_param_fails_the_case(engine_zoo, tmp_path, run_aiotbench):
    out, _ = engine_zoo
    copy = tmp_path / "zoo"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns(".sources", ".logs"))
    weights = copy / "mobilenet_v2_tf" / "mobilenet_v2_tf.ncnn.bin"
    raw = bytearray(weights.read_bytes())
    raw[1000] ^= 0xFF
    weights.write_bytes(bytes(raw))
    run = run_aiotbench("--aiotbench-images=2", "-k", "ncnn-fp32", catalogs=[copy / "catalog.toml"],
                        dataset=IMAGENET_500)
    assert run.returncode == 1, run.stdout[-3000:]
    case = run.case("mobilenet_v2_tf-ncnn-fp32")
    assert case["status"] == "failed" and "its weights mobilenet_v2_tf.ncnn.bin do not match" in case["reason"]
