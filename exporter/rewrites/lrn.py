"""Export each LocalResponseNorm as one ONNX `LRN` node.

PyTorch's exporters decompose `nn.LocalResponseNorm` into Pad/AvgPool/Pow/Div. ONNX `LRN`
computes the same formula, x / (bias + alpha/size * sum of squares over `size` channels)^beta,
runs as one kernel in ONNX Runtime and maps to TensorRT's LRN layer. So for export the LRN
modules call a custom op whose eager code is PyTorch's own LRN and whose ONNX translation is
the native node.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from onnxscript import opset18 as onnx_op
from torch import nn


@torch.library.custom_op("alexnet_export::lrn", mutates_args=())
def lrn(x: torch.Tensor, size: int, alpha: float, beta: float, k: float) -> torch.Tensor:
    return F.local_response_norm(x, size, alpha, beta, k)


@lrn.register_fake
def _lrn_shape(x, size, alpha, beta, k):
    return torch.empty_like(x)


def _lrn_to_onnx(x, size: int, alpha: float, beta: float, k: float):
    return onnx_op.LRN(x, size=size, alpha=alpha, beta=beta, bias=k)


# For torch.onnx.export(custom_translation_table=...).
ONNX_TRANSLATIONS = {torch.ops.alexnet_export.lrn.default: _lrn_to_onnx}


class NativeLRN(nn.Module):
    """Drop-in for nn.LocalResponseNorm that exports as one ONNX LRN node."""

    def __init__(self, source: nn.LocalResponseNorm):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = source.size, float(source.alpha), float(source.beta), float(source.k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.alexnet_export.lrn(x, self.size, self.alpha, self.beta, self.k)


def with_native_lrn(model: nn.Module) -> nn.Module:
    """A copy of `model` whose LRN modules export as ONNX LRN; `model` itself is untouched."""
    exportable = copy.deepcopy(model).eval()
    for name, module in list(exportable.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.LocalResponseNorm):
                setattr(module, child_name, NativeLRN(child))
    return exportable

