"""The eager AlexNet -> ncnn layers: the .param text and the .bin bytes, FP32, FP16 or INT8.

The model's modules map one to one: Conv2d -> Convolution (ConvolutionDepthWise, ncnn's grouped
convolution, for conv2, conv4 and conv5), Linear -> InnerProduct, each with the ReLU after it
fused (activation_type 1), MaxPool2d -> Pooling with pad_mode 1 (PyTorch's floor; ncnn's default
rounds up), LocalResponseNorm -> ncnn's own LRN (the same formula: alpha and k pass unchanged,
src/layer/lrn.cpp), the flatten -> Flatten. Dropout is left out (eval). Parameter ids and the order
of each layer's weights: src/layer/{convolution,convolutiondepthwise,innerproduct,pooling,lrn}.cpp.

INT8 writes each grouped convolution as Slice, one Convolution per group, Concat: per-output-channel
scales (ConvolutionDepthWise keeps one per group), and it keeps clear of ncnn's x86 INT8 grouped
convolution, which returned uninitialised memory here with the default packed layout (ncnn
1.0.20261020, AVX-512; docs/ncnn.md).
"""

from __future__ import annotations

from torch import nn

from alexnet_export.exporter.ncnn.format import FP16, FP32, INT8, BinWriter, ParamWriter
from alexnet_export.exporter.ncnn.quantize import input_scale, quantize_rows
from alexnet_export.models.spec import INPUT_NAME, OUTPUT_NAME
from alexnet_export.runtimes.verification.layers import LAYERS

PRECISIONS = (FP32, FP16, INT8)
RELU = 1  # activation_type (src/layer/fused_activation.h)
MAX_POOL, FLOOR = 0, 1  # Pooling pooling_type, pad_mode "valid"
ACROSS_CHANNELS = 0  # LRN region_type
PER_CHANNEL, PER_GROUP = 2, 1  # int8_scale_term: one weight scale per output channel, or per group
_NAMES = {layer.module: layer.name for layer in LAYERS}  # "features.0" -> "conv1"


def write_ncnn(model: nn.Module, precision: str = FP32, input_ranges: dict[str, float] | None = None) -> tuple[str, bytes]:
    """(.param text, .bin bytes) for the eval-mode AlexNet `model`. input_ranges (INT8): the max |value|
    of each weighted layer's input (conv1..fc8), from exporter/ncnn/quantize.py `input_ranges`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one ncnn's writer knows; expected one of {PRECISIONS}")
    if precision == INT8 and not input_ranges:
        raise ValueError("INT8 needs the input range of every weighted layer (calibration)")
    writer = _Layers(precision, input_ranges or {})
    modules = [(name, module) for name, module in _in_order(model) if not isinstance(module, nn.Dropout)]
    index = 0
    while index < len(modules):
        name, module = modules[index]
        fused = (isinstance(module, (nn.Conv2d, nn.Linear)) and index + 1 < len(modules)
                 and isinstance(modules[index + 1][1], nn.ReLU))
        index += 2 if fused else 1
        writer.add(_NAMES.get(name, name), module, RELU if fused else 0, last=index == len(modules))
    return writer.param.text(), writer.bin.getvalue()


def _in_order(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules the seed's forward runs (models/alexnet.py): features, the flatten, classifier."""
    return [*((f"features.{i}", m) for i, m in enumerate(model.features)), ("flatten", nn.Flatten()),
            *((f"classifier.{i}", m) for i, m in enumerate(model.classifier))]


class _Layers:
    def __init__(self, precision: str, input_ranges: dict[str, float]):
        self.precision, self.input_ranges = precision, input_ranges
        self.param, self.bin = ParamWriter(), BinWriter()
        self.param.layer("Input", INPUT_NAME, [], [INPUT_NAME], {})
        self.blob = INPUT_NAME

    def add(self, name: str, module: nn.Module, activation: int, *, last: bool) -> None:
        top = OUTPUT_NAME if last else name
        if isinstance(module, nn.Conv2d):
            self._convolution(name, module, activation, top)
        elif isinstance(module, nn.Linear):
            self._inner_product(name, module, activation, top)
        elif isinstance(module, nn.MaxPool2d):
            self._pooling(name, module, top)
        elif isinstance(module, nn.LocalResponseNorm):
            self._simple("LRN", name, top, {0: ACROSS_CHANNELS, 1: module.size, 2: module.alpha, 3: module.beta,
                                            4: module.k})
        elif isinstance(module, (nn.ReLU, nn.Flatten)):
            self._simple(type(module).__name__, name, top, {})
        else:
            raise ValueError(f"{name} is a {type(module).__name__}, which has no ncnn layer here; expected the seed"
                             " AlexNet's modules")
        self.blob = top

    def _simple(self, kind: str, name: str, top: str, params: dict) -> None:
        self.param.layer(kind, name, [self.blob], [top], params)

    def _convolution(self, name: str, conv: nn.Conv2d, activation: int, top: str) -> None:
        weight = conv.weight.detach().float().numpy()
        bias = conv.bias.detach().float().numpy() if conv.bias is not None else None
        groups, outputs = conv.groups, conv.out_channels
        if groups == 1:
            params = _conv_params(conv, outputs, activation, PER_CHANNEL if self._int8 else 0) | {6: weight.size}
            self.param.layer("Convolution", name, [self.blob], [top], params)
            self._weights(name, weight, bias, outputs)
        elif not self._int8:
            params = _conv_params(conv, outputs, activation, 0) | {6: weight.size, 7: groups}
            self.param.layer("ConvolutionDepthWise", name, [self.blob], [top], params)
            self._weights(name, weight, bias, outputs)
        else:  # Slice -> one Convolution per group -> Concat (see the module's docstring)
            parts, per_group = [f"{name}.g{i}" for i in range(groups)], outputs // groups
            self.param.layer("Slice", f"{name}.slice", [self.blob], [f"{part}.in" for part in parts],
                             {0: [conv.in_channels // groups] * groups, 1: 0})
            for i, part in enumerate(parts):
                rows = slice(i * per_group, (i + 1) * per_group)
                params = _conv_params(conv, per_group, activation, PER_CHANNEL) | {6: weight[rows].size}
                self.param.layer("Convolution", part, [f"{part}.in"], [f"{part}.out"], params)
                self._weights(name, weight[rows], None if bias is None else bias[rows], per_group)
            self.param.layer("Concat", f"{name}.concat", [f"{part}.out" for part in parts], [top], {0: 0})

    def _inner_product(self, name: str, fc: nn.Linear, activation: int, top: str) -> None:
        weight = fc.weight.detach().float().numpy()
        bias = fc.bias.detach().float().numpy() if fc.bias is not None else None
        params = {0: fc.out_features, 1: int(bias is not None), 2: weight.size}
        params |= ({8: PER_CHANNEL} if self._int8 else {}) | ({9: activation} if activation else {})
        self.param.layer("InnerProduct", name, [self.blob], [top], params)
        self._weights(name, weight, bias, fc.out_features)

    def _pooling(self, name: str, pool: nn.MaxPool2d, top: str) -> None:
        kernel, stride, pad = (_pair(value) for value in (pool.kernel_size, pool.stride, pool.padding))
        if pool.ceil_mode or _pair(pool.dilation) != (1, 1):
            raise ValueError(f"{name} is {pool}; expected floor-mode max pooling without dilation")
        self._simple("Pooling", name, top, {0: MAX_POOL, 1: kernel[1], 11: kernel[0], 2: stride[1], 12: stride[0],
                                            3: pad[1], 13: pad[0], 5: FLOOR})

    @property
    def _int8(self) -> bool:
        return self.precision == INT8

    def _weights(self, name: str, weight, bias, rows: int) -> None:
        """What the layer's load_model reads: the weights, the bias, then (INT8) weight scales and input scale."""
        if self._int8:
            quantized, scales = quantize_rows(weight, rows)
            self.bin.weight(quantized, INT8)
        else:
            self.bin.weight(weight, self.precision)
        if bias is not None:
            self.bin.raw(bias)
        if self._int8:
            if name not in self.input_ranges:
                raise ValueError(f"no calibration range for {name}'s input")
            self.bin.raw(scales)
            self.bin.raw(input_scale(self.input_ranges[name], name))


def _conv_params(conv: nn.Conv2d, outputs: int, activation: int, int8_scales: int) -> dict:
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        raise ValueError(f"{conv} pads {conv.padding!r} ({conv.padding_mode}); expected explicit zero padding")
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = conv.kernel_size, conv.stride, conv.dilation, conv.padding
    params = {0: outputs, 1: kw, 11: kh, 2: dw, 12: dh, 3: sw, 13: sh, 4: pw, 14: ph, 5: int(conv.bias is not None)}
    return params | ({8: int8_scales} if int8_scales else {}) | ({9: activation} if activation else {})


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)
