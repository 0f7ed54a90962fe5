"""LRN in operators that ExecuTorch's XNNPACK delegate and LiteRT's builtin operators run: the ExecuTorch
export takes it through `for_executorch`, the LiteRT export through `for_litert`.

PyTorch decomposes `nn.LocalResponseNorm` into `avg_pool3d` over the channel axis, which neither
XNNPACK nor ExecuTorch's portable kernels have: the seed model as exported does not load
("kernel 'aten::avg_pool3d.out' not found"). The same formula,

    x / (k + alpha/size * sum of x^2 over `size` neighbouring channels)^beta,

is written here as a 1x1 convolution of x^2 with a banded 0/1 weight (row c sums the channels of
c's window, zero-padded at the edges as PyTorch pads), and the power as exp(-beta * log(base)):
XNNPACK takes `pow` only with the exponent 2, but has `exp` and `log` (base >= k > 0). Eager
outputs stay within float rounding of PyTorch's LRN (tests/executorch/test_lrn_banded.py).

The LiteRT export takes the same rewrite (`for_litert`): litert-torch turns PyTorch's LRN into
STABLEHLO_REDUCE_WINDOW, POW and DIV, which XNNPACK does not take; with it the .tflite holds builtin
operators only. `for_litert` also takes NHWC input, which removes the TRANSPOSE ops the converter
puts around an NCHW input and before the flatten.

The seed model and the ONNX paths (native LRN node, or exporter/rewrites/lrn_pooled.py) are untouched:
`for_executorch` and `for_litert` work on a copy.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from alexnet_export.models.alexnet import FLAT_FEATURES


def banded_weight(channels: int, size: int) -> torch.Tensor:
    """(channels, channels, 1, 1): row c is 1 on the channels of c's window, as PyTorch's LRN takes it
    (size // 2 channels before c, the rest after; channels past the edges count as zeros)."""
    before = size // 2
    weight = torch.zeros(channels, channels, 1, 1)
    for channel in range(channels):
        weight[channel, max(0, channel - before) : min(channels, channel - before + size)] = 1.0
    return weight


class BandedLRN(nn.Module):
    """Drop-in for nn.LocalResponseNorm over `channels` channels, in convolution and elementwise ops."""

    def __init__(self, source: nn.LocalResponseNorm, channels: int):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = source.size, float(source.alpha), float(source.beta), float(source.k)
        self.register_buffer("band", banded_weight(channels, self.size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.conv2d(x * x, self.band) * (self.alpha / self.size) + self.k
        return x * torch.exp(torch.log(base) * -self.beta)


class _FlatBatch(nn.Module):
    """The AlexNet forward with the flatten written as reshape(-1, features): with a dynamic batch,
    torch.flatten becomes a view to a symbolic shape, which XNNPACK does not take (one inferred
    dimension it does)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.features, self.classifier = model.features, model.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).reshape(-1, FLAT_FEATURES))


def for_executorch(model: nn.Module) -> nn.Module:
    """A copy of the AlexNet `model` (eval mode) that ExecuTorch's XNNPACK delegate runs whole."""
    copied = copy.deepcopy(model).eval()
    channels = None
    for index, layer in enumerate(copied.features):
        if isinstance(layer, nn.Conv2d):
            channels = layer.out_channels
        elif isinstance(layer, nn.LocalResponseNorm):
            copied.features[index] = BandedLRN(layer, channels)
    return _FlatBatch(copied).eval()


class _ChannelsLast(nn.Module):
    """The AlexNet forward for NHWC input, flattened in NHWC order: fc6's input columns are permuted
    to match, so the logits are the NCHW model's (to float rounding) and the converted FP32 file holds
    no TRANSPOSE (LiteRT's convolutions are NHWC)."""

    def __init__(self, flat: _FlatBatch):
        super().__init__()
        self.features, self.classifier = flat.features, flat.classifier
        fc6 = self.classifier[1]
        channels = self.features[-3].out_channels  # conv5, before its ReLU and pool5
        side = int(round((FLAT_FEATURES // channels) ** 0.5))
        with torch.no_grad():
            weight = fc6.weight.reshape(fc6.out_features, channels, side, side).permute(0, 2, 3, 1)
            fc6.weight = nn.Parameter(weight.reshape(fc6.out_features, FLAT_FEATURES).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x.permute(0, 3, 1, 2))
        return self.classifier(features.permute(0, 2, 3, 1).reshape(-1, FLAT_FEATURES))


def for_litert(model: nn.Module) -> nn.Module:
    """A copy of the AlexNet `model` (eval mode) for LiteRT: banded LRN, NHWC input (N, 224, 224, 3)."""
    return _ChannelsLast(for_executorch(model)).eval()
