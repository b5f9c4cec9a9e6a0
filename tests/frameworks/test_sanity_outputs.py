"""Issue 22, bad 1 and poor "models": a model's answers are sane before they are scored. NaN/Inf scores, a second
output, a score tensor of the wrong size or type, and a quant label the model's tensors contradict fail the case
with one line naming the file; a reference that failed or measured nothing never yields a threshold of 0.

Unit level: ``targets.host.execute`` on tiny ONNX/TorchScript models (milliseconds). End to end: ``pytest
--aiotbench`` in a subprocess on a few generated PNGs."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_aiotbench.frameworks import PrepareOptions
from pytest_aiotbench.frameworks.base import OutputError, check_outputs, check_quant
from pytest_aiotbench.inputs.preprocess import PreprocessSpec
from pytest_aiotbench.run.job import Job
from pytest_aiotbench.targets.host import InferenceError, execute
from pytest_aiotbench.run.timing import PerfCounterTiming
from tests.helpers.catalogs import write_catalog
from tests.helpers.sanity import SIZE, onnx_entry, onnx_model, png_dataset

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def job_for(model, pixels: np.ndarray, framework: str = "onnxruntime", num_classes: int = 10,
            quant: str | None = "fp32") -> Job:
    return Job(case_id="t", framework=framework, model_file=model, options=PrepareOptions(), pixels=pixels,
               preprocess=PreprocessSpec(SIZE, 0, layout="NCHW"), warmup=1, num_classes=num_classes,
               background=False, quant=quant)


def flat_pixels(values: list[int]) -> np.ndarray:
    return np.stack([np.full((SIZE, SIZE, 3), v, np.uint8) for v in values])


class CountingTiming(PerfCounterTiming):
    """Counts the timed images, to show which checks happen before timing and which after."""

    timed = 0

    def time_each(self, infer, inputs, warmup, keep=list):
        def counted(x):  # an answer's check may stop time_each, so count the timed calls themselves
            self.timed += 1
            return infer(x)

        return super().time_each(counted, inputs, warmup, keep)


@pytest.mark.parametrize("value, shown", [(float("nan"), "NaN"), (float("inf"), "+Inf"), (float("-inf"), "-Inf")])
def test_non_finite_first_answer_fails_before_timing_naming_the_file(tmp_path, value, shown):
    bias = np.zeros(10, np.float32)
    bias[3] = value
    model = onnx_model(tmp_path / "nan.onnx", bias=bias)
    timing = CountingTiming()
    with pytest.raises(InferenceError) as err:
        execute(job_for(model, flat_pixels([10, 20, 30])), timing)
    message = str(err.value)
    assert message.startswith("nan.onnx: model output is not finite") and shown in message, message
    assert "on image 1 of 3: " in message and "\n" not in message
    assert timing.timed == 0  # refused before anything was timed


def test_non_finite_later_answer_fails_after_timing(tmp_path):
    """The first image is fine, the third is NaN: every answer is checked as its chunk is kept (between timed
    calls, never inside one); the chunk's images were timed."""
    model = onnx_model(tmp_path / "late.onnx", nan_below=100.0)
    timing = CountingTiming()
    with pytest.raises(InferenceError) as err:
        execute(job_for(model, flat_pixels([200, 180, 50, 220, 10])), timing)
    assert timing.timed == 1 + 5  # one warmup call, then every image timed before the check
    assert str(err.value) == ("late.onnx: model output is not finite (NaN) on 2 of 5 image(s), first image 3: "
                              "scores that are not numbers cannot be ranked (check the model's weights and its "
                              "input normalization)")


def test_finite_model_still_scores(tmp_path):
    model = onnx_model(tmp_path / "ok.onnx", nan_below=0.0)
    m = execute(job_for(model, flat_pixels([200, 180, 50])), PerfCounterTiming())
    assert m.topk.shape == (3, 5) and len(m.latencies_s) == 3


def test_torchscript_nan_fails_too(tmp_path):
    torch = pytest.importorskip("torch")

    class Nan(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :10] * float("nan")

    path = tmp_path / "nan.pt"
    torch.jit.script(Nan()).save(str(path))
    with pytest.raises(InferenceError, match=r"^nan\.pt: model output is not finite \(NaN\)"):
        execute(job_for(path, flat_pixels([1, 2]), framework="pytorch-mobile"), PerfCounterTiming())


@pytest.mark.parametrize("dtype", ["bool"])
def test_output_that_is_not_numbers_fails(tmp_path, dtype):
    model = onnx_model(tmp_path / "b.onnx", out_dtype=dtype)
    with pytest.raises(InferenceError, match=r"b\.onnx: model output \(image 1 of 2\) has dtype bool"):
        execute(job_for(model, flat_pixels([1, 2])), PerfCounterTiming())


def test_two_outputs_are_refused(tmp_path):
    model = onnx_model(tmp_path / "two.onnx", outputs=2)
    with pytest.raises(Exception) as err:
        execute(job_for(model, flat_pixels([1])), PerfCounterTiming())
    assert "two.onnx: the model has 2 outputs (Y, Y1)" in str(err.value)


@pytest.mark.parametrize("quant, kwargs, actual", [
    ("fp32", {"out_dtype": "uint8"}, "float32 input, uint8 output, no integer-quantized tensors inside"),
    ("fp16", {"in_dtype": "uint8"}, "uint8 input, float32 output, no integer-quantized tensors inside"),
    ("int8", {}, "float32 input, float32 output, no integer-quantized tensors inside"),
])
def test_quant_label_against_real_tensor_types(tmp_path, quant, kwargs, actual):
    model = onnx_model(tmp_path / "q.onnx", **kwargs)
    with pytest.raises(InferenceError) as err:
        execute(job_for(model, flat_pixels([1]), quant=quant), PerfCounterTiming())
    assert str(err.value).startswith(f"q.onnx: quant = '{quant}' but the model is "), str(err.value)
    assert f"({actual})" in str(err.value)


def test_matching_quant_labels_pass(tmp_path):
    check_quant("int8", "m", np.uint8, np.uint8, None)
    check_quant("int8", "m", np.float32, np.float32, True)  # float IO around an integer model
    check_quant("int8", "m", np.float32, np.float32, None)  # the framework cannot tell: IO alone is not proof
    check_quant("dynamic", "m", np.float32, np.float32, True)
    with pytest.raises(OutputError):
        check_quant("dynamic", "m", np.float32, np.int8, True)


def test_real_shared_models_match_their_catalog_labels(shared):
    """The shared uint8 TFLite MobileNets are int8 by their tensors, the float ONNX ports fp32."""
    from pytest_aiotbench.frameworks import get_framework
    from tests.helpers.shared import TFLITE_DIR, TORCH_DIR

    q = get_framework("tflite").prepare(str(TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite"), PrepareOptions())
    assert q.integer_quantized() is True and q.input.dtype == np.uint8
    f = get_framework("onnxruntime").prepare(str(TORCH_DIR / "mobilenet_v1_0.25_128.onnx"), PrepareOptions())
    assert f.integer_quantized() is False and f.input.dtype == np.float32


def test_check_outputs_wrong_size_names_the_image():
    with pytest.raises(OutputError, match=r"^m\.onnx: model output for image 2 of 2 has 9 values \(9\), expected "
                                          r"num_classes = 10$"):
        check_outputs([np.zeros(10, np.float32), np.zeros(9, np.float32)], "m.onnx", 10)


# ------------------------------------------------------------------------------------------------ end to end

def _pixels_prediction(model, value: int) -> int:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    x = np.full((1, 3, SIZE, SIZE), value, np.float32)
    return int(np.argmax(sess.run(None, {"X": x})[0]))


@pytest.mark.slow
def test_nan_reference_fails_and_its_int8_dependent_never_passes(tmp_path, run_aiotbench):
    bias = np.zeros(10, np.float32)
    bias[0] = np.nan
    ref = onnx_model(tmp_path / "ref_nan.onnx", bias=bias)
    dep = onnx_model(tmp_path / "dep.onnx", out_dtype="uint8")
    data = png_dataset(tmp_path / "data", [10, 60, 120, 200])
    cat = write_catalog(tmp_path / "c.toml", [onnx_entry("m", dep, quant="int8", min_top1="97% of fp32"),
                                              onnx_entry("m", ref, min_top1=0.0)])
    run = run_aiotbench("--aiotbench-warmup=0", catalogs=[cat], dataset=data)
    assert run.returncode == 1, run.stdout[-3000:]
    assert "Traceback" not in run.stdout and "During handling" not in run.stdout
    r, d = run.case("m-onnxruntime-fp32"), run.case("m-onnxruntime-int8")
    assert r["status"] == "failed" and r["top1"] is None
    assert r["reason"].startswith("ref_nan.onnx: model output is not finite (NaN) on image 1 of 4: ")
    assert d["status"] == "failed", d
    assert d["reason"].startswith("m-onnxruntime-int8: min_top1 = '97% of m-onnxruntime-fp32' needs "
                                  "m-onnxruntime-fp32 to pass earlier in this run, and it failed: ref_nan.onnx"), d


@pytest.mark.slow
def test_reference_with_zero_top1_yields_no_threshold(tmp_path, run_aiotbench):
    ref = onnx_model(tmp_path / "ref.onnx", seed=3)
    dep = onnx_model(tmp_path / "dep.onnx", out_dtype="uint8", seed=3)
    wrong = (_pixels_prediction(ref, 90) + 1) % 10  # every image is labelled what the reference never answers
    data = png_dataset(tmp_path / "data", [90, 90, 90], labels=[wrong] * 3)
    cat = write_catalog(tmp_path / "c.toml", [onnx_entry("m", ref),
                                              onnx_entry("m", dep, quant="int8", min_top1="50% of fp32")])
    run = run_aiotbench("--aiotbench-warmup=0", catalogs=[cat], dataset=data)
    r, d = run.case("m-onnxruntime-fp32"), run.case("m-onnxruntime-int8")
    assert r["status"] == "passed" and r["top1"] == 0.0
    assert run.returncode == 1 and d["status"] == "failed", run.stdout[-3000:]
    assert "whose top-1 is 0.0: a share of it is no threshold" in d["reason"]


def test_quant_banana_is_a_catalog_error(tmp_path, run_aiotbench):
    model = onnx_model(tmp_path / "m.onnx")
    cat = write_catalog(tmp_path / "c.toml", [onnx_entry("m", model, quant="banana")])
    run = run_aiotbench(catalogs=[cat])
    assert run.returncode == 4
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("ERROR:")]
    assert errors == [f'ERROR: {cat}: model \'m\': quant = "banana": expected one of fp32, fp16, bf16, dynamic, int8']


def test_fp32_declared_on_uint8_model_fails_the_case(tmp_path, run_aiotbench, shared):
    from tests.helpers.catalogs import tflite_entry
    from tests.helpers.shared import IMAGENET_500, TFLITE_DIR

    cat = write_catalog(tmp_path / "c.toml", [tflite_entry("m", TFLITE_DIR / "mobilenet_v1_0.25_128_quant.tflite",
                                                           128, quant="fp32")])
    run = run_aiotbench("--aiotbench-images=5", "--aiotbench-warmup=0", catalogs=[cat], dataset=IMAGENET_500)
    assert run.returncode == 1
    assert run.case("m-tflite-fp32")["reason"] == (
        "mobilenet_v1_0.25_128_quant.tflite: quant = 'fp32' but the model is integer-quantized (uint8 input, uint8 "
        "output, integer-quantized tensors inside); declare quant = \"int8\"")


@pytest.mark.slow
def test_executorch_program_with_two_outputs_is_refused(tmp_path):
    pytest.importorskip("executorch.exir")
    torch = pytest.importorskip("torch")
    from executorch.exir import to_edge_transform_and_lower

    from pytest_aiotbench.frameworks import ModelLoadError, get_framework

    class Two(torch.nn.Module):
        def forward(self, x):
            y = x.flatten(1)[:, :10]
            return y, y * 2

    path = tmp_path / "two.pte"
    program = to_edge_transform_and_lower(torch.export.export(Two(), (torch.zeros(1, 3, SIZE, SIZE),)))
    path.write_bytes(program.to_executorch().buffer)
    with pytest.raises(ModelLoadError, match=r"two\.pte: the model has 2 outputs \(output 0, output 1\)"):
        get_framework("executorch").prepare(str(path), PrepareOptions())


@pytest.mark.slow
def test_skipped_reference_fails_its_dependent_naming_it(tmp_path, run_aiotbench):
    dep = onnx_model(tmp_path / "dep.onnx", out_dtype="uint8")
    data = png_dataset(tmp_path / "data", [10, 200])
    cat = write_catalog(tmp_path / "c.toml", [onnx_entry("m", tmp_path / "missing.onnx"),
                                              onnx_entry("m", dep, quant="int8", min_top1="97% of fp32")])
    run = run_aiotbench("--aiotbench-warmup=0", catalogs=[cat], dataset=data)
    assert run.returncode == 1 and "During handling" not in run.stdout, run.stdout[-3000:]
    assert run.case("m-onnxruntime-fp32")["status"] == "skipped"
    d = run.case("m-onnxruntime-int8")
    assert d["status"] == "failed" and d["reason"].startswith(
        "m-onnxruntime-int8: min_top1 = '97% of m-onnxruntime-fp32' needs m-onnxruntime-fp32 to pass earlier in this "
        "run, and it was skipped: model file not found"), d["reason"]
