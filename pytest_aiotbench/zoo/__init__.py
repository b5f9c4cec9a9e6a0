"""The model zoo: the six AIoTBench classifiers exported to every framework and quantization mode from one set of
weights (``aiotbench zoo build``), with a ``manifest.json`` of checksums and provenance beside the artifacts.

This package is import-light: torch, torchvision, litert-torch and ai-edge-quantizer are imported only inside the
export subprocesses (``pytest_aiotbench.zoo.exporters``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # torchvision's (0.485, 0.456, 0.406) * 255
IMAGENET_STD = (58.395, 57.12, 57.375)  # torchvision's (0.229, 0.224, 0.225) * 255


@dataclass(frozen=True)
class ZooModel:
    """One architecture of the zoo. Reference numbers are torchvision's documented ImageNet-1k figures for the
    IMAGENET1K_V1 weights (acc@1/acc@5 as fractions; GFLOPS as torchvision counts them, i.e. multiply-adds)."""

    name: str
    builder: str  # torchvision.models.<builder>
    weights_enum: str  # torchvision.models.<weights_enum>.IMAGENET1K_V1
    input_size: int
    resize: int
    reference_top1: float
    reference_top5: float
    params: int
    gflops: float
    checkpoint: str  # file name torchvision's IMAGENET1K_V1 weights have in the torch hub cache (checkpoints/)
    builder_kwargs: dict = field(default_factory=dict, hash=False, compare=False)
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    num_classes: int = 1000
    background: bool = False


# The canonical AIoTBench set. SqueezeNet is torchvision's squeezenet1_1: same ImageNet accuracy as 1.0
# (58.18 vs 58.09 top-1 in torchvision's table) at 2.4x fewer multiply-adds (0.35 vs 0.82 G) and fewer parameters,
# which is what an on-device benchmark should measure; the SqueezeNet authors call v1.1 the drop-in replacement.
MODELS: dict[str, ZooModel] = {m.name: m for m in (
    ZooModel("resnet50", "resnet50", "ResNet50_Weights", 224, 256, 0.76130, 0.92862, 25557032, 4.09,
             "resnet50-0676ba61.pth"),
    ZooModel("inception_v3", "inception_v3", "Inception_V3_Weights", 299, 342, 0.77294, 0.93450, 27161264, 5.71,
             "inception_v3_google-0cc3c7bd.pth"),
    ZooModel("densenet121", "densenet121", "DenseNet121_Weights", 224, 256, 0.74434, 0.91972, 7978856, 2.83,
             "densenet121-a639ec97.pth"),
    ZooModel("squeezenet", "squeezenet1_1", "SqueezeNet1_1_Weights", 224, 256, 0.58178, 0.80624, 1235496, 0.35,
             "squeezenet1_1-b8a52dc0.pth"),
    ZooModel("mobilenet_v2", "mobilenet_v2", "MobileNet_V2_Weights", 224, 256, 0.71878, 0.90286, 3504872, 0.30,
             "mobilenet_v2-b0353104.pth"),
    ZooModel("mnasnet", "mnasnet1_0", "MNASNet1_0_Weights", 224, 256, 0.73456, 0.91510, 4383312, 0.31,
             "mnasnet1.0_top1_73.512-f206786ef8.pth"),
)}

# Builders a user's own state_dict (``--weights FILE.pth --arch``) may pick, per AIoTBench model; the first is the
# canonical one. SqueezeNet has two published versions, and AIoTBench's original app ships 1.0.
ARCHS: dict[str, tuple[str, ...]] = {name: (m.builder,) for name, m in MODELS.items()}
ARCHS["squeezenet"] = ("squeezenet1_1", "squeezenet1_0")

# variant -> (framework, quant, layout, file name pattern, absolute floor: slack under the reference top-1)
# The float floors are three standard errors of a top-1 measured on 500 images (sigma ~0.02 near 0.72): they catch a
# broken export or preprocessing, not a subset that happens to be harder. The quantized variants' floors apply only
# when the catalog has no tflite-fp32 case of the model to be relative to (RELATIVE_THRESHOLDS).
FLOAT_FLOOR_SLACK = 0.06
VARIANTS: dict[str, tuple[str, str, str, str, float]] = {
    "ptl": ("pytorch-mobile", "fp32", "NCHW", "{name}.ptl", FLOAT_FLOOR_SLACK),
    "onnx": ("onnxruntime", "fp32", "NCHW", "{name}.onnx", FLOAT_FLOOR_SLACK),
    "fp32": ("tflite", "fp32", "NHWC", "{name}-fp32.tflite", FLOAT_FLOOR_SLACK),
    "dynamic": ("tflite", "dynamic", "NHWC", "{name}-dynamic.tflite", FLOAT_FLOOR_SLACK + 0.02),
    "int8": ("tflite", "int8", "NHWC", "{name}-int8.tflite", FLOAT_FLOOR_SLACK + 0.03),
    "fp16": ("tflite", "fp16", "NHWC", "{name}-fp16.tflite", FLOAT_FLOOR_SLACK + 0.01),
    "pte": ("executorch", "fp32", "NCHW", "{name}.pte", FLOAT_FLOOR_SLACK),
    # issue 20: same weights in ncnn (pnnx from TorchScript), MNN and OpenVINO (from ONNX). fp32 is exact; the
    # engines' own lower default precisions are separate, labelled variants (ncnn fp16, OpenVINO bf16).
    "ncnn": ("ncnn", "fp32", "NCHW", "{name}.ncnn.param", FLOAT_FLOOR_SLACK),
    "ncnn-fp16": ("ncnn", "fp16", "NCHW", "{name}-fp16.ncnn.param", FLOAT_FLOOR_SLACK + 0.01),
    "mnn": ("mnn", "fp32", "NCHW", "{name}.mnn", FLOAT_FLOOR_SLACK),
    "openvino": ("openvino", "fp32", "NCHW", "{name}.xml", FLOAT_FLOOR_SLACK),
    "openvino-bf16": ("openvino", "bf16", "NCHW", "{name}-bf16.xml", FLOAT_FLOOR_SLACK + 0.02),
}
# Catalog `options` a variant's cases carry (the precision the framework is told to run in).
VARIANT_OPTIONS: dict[str, dict] = {"ncnn-fp16": {"fp16": True}, "openvino-bf16": {"precision": "bf16"}}
# Quantized variants are held to a share of the same run's TFLite fp32 top-1 (pytest_aiotbench.inputs.thresholds), as
# MLPerf holds int8 to 99 % of FP32 -- on 50,000 images; on 500 a difference of a few images is noise, so the shares
# leave 1 (fp16), 2 (dynamic) and 3 (int8) points. Measured: MobileNetV2 98.5 % (int8), 99.2 % (dynamic);
# SqueezeNet 1.0 99.7 % (both).
RELATIVE_REFERENCE = "fp32"  # the variant every relative threshold refers to
RELATIVE_THRESHOLDS = {"fp16": "99% of tflite-fp32", "dynamic": "98% of tflite-fp32", "int8": "97% of tflite-fp32",
                       # bf16 keeps 8 mantissa bits: 3 of 100 top-1 flips on MobileNetV2 (STACK.md)
                       "ncnn-fp16": "99% of tflite-fp32", "openvino-bf16": "98% of tflite-fp32"}
# The six variants of every model (the canonical cases).
DEFAULT_VARIANTS = ("ptl", "onnx", "fp32", "dynamic", "int8", "fp16")
# Variants whose toolchain is an optional extra: built only when its module is importable in the interpreter that
# runs the build, otherwise listed as skipped (not failed). Their catalog cases are not canonical (the device score
# is not partial without them). variant -> (module whose presence is checked, how to get it)
OPTIONAL_VARIANTS: dict[str, tuple[str, str]] = {
    "pte": ("executorch.exir", "pip install 'pytest-aiotbench[executorch]'"),
    "ncnn": ("pnnx", "pip install 'pytest-aiotbench[zoo,ncnn]'"),
    "ncnn-fp16": ("pnnx", "pip install 'pytest-aiotbench[zoo,ncnn]'"),
    "mnn": ("MNN", "pip install 'pytest-aiotbench[zoo,mnn]'"),
    "openvino": ("openvino", "pip install 'pytest-aiotbench[zoo,openvino]'"),
    "openvino-bf16": ("openvino", "pip install 'pytest-aiotbench[zoo,openvino]'"),
}
# What `aiotbench zoo build` makes by default: the six, plus every optional variant whose toolchain is installed.
BUILD_VARIANTS = DEFAULT_VARIANTS + tuple(OPTIONAL_VARIANTS)
