"""Exact rewrites that keep a model inside the XNNPACK delegate, as an expert ExecuTorch user exports it.

XNNPACK's average pooling divides by the number of *real* pixels in a window (``count_include_pad=False``), so
ExecuTorch's XNNPACK partitioner leaves a padded ``avg_pool2d(count_include_pad=True)`` (InceptionV3's nine branch
pools: 3x3, stride 1, padding 1) to the portable reference kernels, between delegate subgraphs. The same pool is
an explicit zero pad followed by an unpadded pool: the window sums and the divisor (kernel area) are identical.
InceptionV3's ``transform_input`` (channel slices, unsqueeze, cat) likewise becomes one per-channel multiply-add
with the same float32 constants; MnasNet's ``mean(dim=[2, 3])`` without keepdim becomes the keepdim mean XNNPACK
takes plus a reshape; DenseNet's one-tensor ``cat`` (first layer of each block) is the tensor itself. Each rewrite
is recorded (what, how many) for the manifest. Imported only inside export subprocesses (needs torch).
"""

from __future__ import annotations

from collections import Counter

import torch

aten = torch.ops.aten


def _pair(value) -> list[int]:
    value = list(value) if isinstance(value, (list, tuple)) else [value]
    return value * 2 if len(value) == 1 else value


def _avg_pool2d_explicit_pad(counts: Counter):
    def decompose(x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
                  divisor_override=None):
        pad_h, pad_w = _pair(padding)
        if not count_include_pad or not (pad_h or pad_w) or ceil_mode or divisor_override is not None:
            return NotImplemented  # XNNPACK takes it as it is (or no exact rewrite applies): keep the op
        counts["aten.avg_pool2d(count_include_pad=True, padding>0) -> constant_pad_nd(0) + avg_pool2d(padding=0)"] += 1
        padded = aten.constant_pad_nd.default(x, [pad_w, pad_w, pad_h, pad_h], 0.0)
        return aten.avg_pool2d.default(padded, kernel_size, stride, [0, 0], False, True, None)

    return decompose


def _mean_keepdim(counts: Counter):
    def decompose(x, dim, keepdim=False, *, dtype=None):
        dims = sorted(d % x.dim() for d in (dim or ()))
        if keepdim or dtype is not None or x.dim() != 4 or dims != [2, 3]:
            return NotImplemented
        counts["aten.mean(dim=[2, 3], keepdim=False) -> mean(keepdim=True) + reshape"] += 1
        pooled = aten.mean.dim(x, [2, 3], True)
        return aten.view.default(pooled, [x.shape[0], x.shape[1]])

    return decompose


def _cat_single(counts: Counter):
    def decompose(tensors, dim=0):
        if len(tensors) != 1:
            return NotImplemented
        counts["aten.cat of one tensor (DenseNet's first layer per block) -> the tensor itself"] += 1
        return tensors[0]

    return decompose


class _ChannelAffine(torch.nn.Module):
    """``x * scale[c] + shift[c]``: torchvision InceptionV3's ``_transform_input`` without slicing."""

    def __init__(self, scale, shift):
        super().__init__()
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return x * self.scale + self.shift


def rewrite_module(net, counts: Counter) -> None:
    """Module-level rewrites of torchvision architectures (in place)."""
    if getattr(net, "transform_input", False) and hasattr(net, "_transform_input"):
        # torchvision: x_c = x[:, c] * (std_c / 0.5) + (mean_c - 0.5) / 0.5 with ImageNet mean/std
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        affine = _ChannelAffine([s / 0.5 for s in std], [(m - 0.5) / 0.5 for m in mean])
        net.transform_input = False
        net._aiotbench_affine = affine
        original_forward = net._forward

        def forward_with_affine(x):
            return original_forward(affine(x))

        net._forward = forward_with_affine
        counts["inception transform_input (select + unsqueeze + cat) -> per-channel mul + add"] += 1


def _zero_padded_pool(pool):
    """MaxPool2d(k, s, p) on a non-negative input == ZeroPad2d(p) + MaxPool2d(k, s, 0): every window holds at
    least one real pixel (p <= k // 2), all >= 0, so a 0 in the window never wins over them."""
    if not isinstance(pool, torch.nn.MaxPool2d) or pool.ceil_mode or pool.return_indices:
        return None
    pad, kernel, dilation = (_pair(v) for v in (pool.padding, pool.kernel_size, pool.dilation))
    if not any(pad) or dilation != [1, 1] or any(p > k // 2 for p, k in zip(pad, kernel)):
        return None
    return torch.nn.Sequential(torch.nn.ZeroPad2d((pad[1], pad[1], pad[0], pad[0])),
                               torch.nn.MaxPool2d(pool.kernel_size, pool.stride, 0))


def rewrite_max_pool_after_relu(net, counts: Counter) -> None:
    """TFLite: litert-torch lowers a padded max pool to PADV2 with -inf, which XNNPACK does not take (ResNet50's and
    DenseNet121's stem). After a ReLU the input is >= 0 and zero padding is exact; XNNPACK takes PAD with 0."""
    what = "max_pool2d(padding>0) after ReLU -> zero pad + max_pool2d(padding=0) (input >= 0)"
    relu = (torch.nn.ReLU, torch.nn.ReLU6)
    for module in net.modules():  # Sequential containers: DenseNet's features (relu0, pool0)
        if isinstance(module, torch.nn.Sequential):
            names = list(module._modules)
            for prev, name in zip(names, names[1:]):
                fixed = _zero_padded_pool(module._modules[name]) if isinstance(module._modules[prev], relu) else None
                if fixed is not None:
                    module._modules[name] = fixed
                    counts[what] += 1
    # torchvision ResNet: forward runs conv1 -> bn1 -> relu -> maxpool
    if type(net).__name__ == "ResNet" and isinstance(getattr(net, "relu", None), relu):
        fixed = _zero_padded_pool(getattr(net, "maxpool", None))
        if fixed is not None:
            net.maxpool = fixed
            counts[what] += 1


def rewrite_exported(exported, counts: Counter):
    """Graph-level rewrites of an ExportedProgram (works for TorchScript sources too)."""
    return exported.run_decompositions({aten.avg_pool2d.default: _avg_pool2d_explicit_pad(counts),
                                        aten.mean.dim: _mean_keepdim(counts),
                                        aten.cat.default: _cat_single(counts)})
