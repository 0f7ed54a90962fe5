"""What an ncnn `.ncnn.param` + `.ncnn.bin` pair holds, checked strictly before ncnn sees either file.

ncnn trusts both: a Net whose load failed segfaults, a short INT8 .bin can crash load_model, a wrong weight count
loads with rc 0 and reads beside its weights. So this parses the .param as src/net.cpp and paramdict.cpp do, infers
every blob's shape, checks each weight count against it and walks the .bin as load_model reads it (src/modelbin.cpp).
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from alexnet_export.errors import ModelLoadError
from alexnet_export.models.spec import CHANNELS, IMAGE_SIZE

MAGIC, MAX_PARAM_BYTES, MAX_LAYERS = "7767517", 1 << 20, 1000  # the bounds keep hostile files cheap
TAGS = {0x00000000: ("fp32", 4), 0x01306B47: ("fp16", 2), 0x000D4B38: ("int8", 1)}
NAME = re.compile(r"[A-Za-z0-9_.:/\-]{1,255}")  # ncnn reads names with %255s; no '=', so none reads as a param
# ncnn scans a value with %15[^,\n ], a float iff it holds '.' or 'e', digit runs kept in 32-bit ints; ints
# and floats share a union in ParamDict, so one read as the other is reinterpreted bit for bit.
INT, FLOAT = re.compile(r"-?\d{1,10}"), re.compile(r"-?\d{1,9}(\.\d{0,9}([eE][-+]?\d{1,2})?|[eE][-+]?\d{1,2})")
NOT_TEXT = re.compile(rb"[^\x20-\x7e\n]")  # a tab or CR would change how ncnn's scanner splits a value

# The keys of each load_param this reader knows, with sane values: a range or tuple of ints, a (low, high)
# pair of floats, [range] for an int array. Others (10 activation params, 19 dynamic weights, 30, 31) are refused.
KERNEL, DILATION, PAD, OUTPUTS, COUNT = range(1, 65), range(1, 9), range(0, 65), range(1, 100_001), range(1, 2**31)
CONV = {0: OUTPUTS, 1: KERNEL, 11: KERNEL, 2: DILATION, 12: DILATION, 3: KERNEL, 13: KERNEL, 4: PAD, 14: PAD,
        15: PAD, 16: PAD, 5: (0, 1), 6: COUNT, 8: (0, 2), 9: (0, 1)}
PARAMS: dict[str, dict[int, object]] = {
    "Input": {0: range(1, 4097), 1: range(1, 4097), 2: range(1, 4097)},
    "Convolution": CONV,
    "ConvolutionDepthWise": CONV | {7: OUTPUTS, 8: (0, 1, 2)},  # 8=1: one int8 weight scale per group
    "InnerProduct": {0: OUTPUTS, 1: (0, 1), 2: COUNT, 8: (0, 2), 9: (0, 1)},
    # max pooling, pad_mode 1 "valid" (PyTorch's floor) only: 0 pads the tail (ceil), 2 and 3 are "same"
    "Pooling": {0: (0,), 1: KERNEL, 11: KERNEL, 2: KERNEL, 12: KERNEL, 3: PAD, 13: PAD, 14: PAD, 15: PAD, 5: (1,)},
    "LRN": {0: (0,), 1: range(1, 32), 2: (1e-12, 1e3), 3: (1e-12, 10.0), 4: (1e-12, 1e3)},
    "ReLU": {0: (0.0, 1.0)}, "Dropout": {0: (1e-12, 1e3)}, "Flatten": {}, "Split": {},
    "Softmax": {0: (0,), 1: (0, 1)}, "Slice": {0: [OUTPUTS], 1: (0,)}, "Concat": {0: (0,)},
}
REQUIRED = {"Convolution": (0, 1, 6), "ConvolutionDepthWise": (0, 1, 6), "InnerProduct": (0, 2), "Pooling": (1, 5), "Slice": (0,)}
ONE, MANY = range(1, 2), range(1, 65)
ARITY = {"Input": (range(0, 1), ONE), "Slice": (ONE, MANY), "Split": (ONE, MANY), "Concat": (MANY, ONE)}  # else 1, 1
IMAGE_LAYERS = ("Convolution", "ConvolutionDepthWise", "Pooling", "LRN")  # need a (c, h, w) input


@dataclass(frozen=True)
class NcnnLayer:
    type: str
    name: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    params: dict[int, int | float | tuple]


@dataclass(frozen=True)
class NcnnFacts:
    layers: tuple[NcnnLayer, ...]
    input: str
    output: str
    input_shape: tuple[int, int, int]  # (c, h, w)
    classes: int
    weights: str  # "int8" if any weight tag says int8, else "fp16" if any says fp16, else "fp32"
    lrn_layers: int
    param_bytes: int
    bin_bytes: int

    def describe(self) -> str:
        counts = Counter(layer.type for layer in self.layers)
        return f"{len(self.layers)} layers: " + ", ".join(f"{t} x{n}" for t, n in sorted(counts.items()))


def bin_path(param_path: str | Path) -> Path:
    return Path(param_path).with_suffix(".bin")


def read_ncnn_facts(param_path: str | Path, bin_file: str | Path | None = None) -> NcnnFacts:
    """The facts of an ncnn pair, or ModelLoadError in one line for anything ncnn could misread."""
    param_path = Path(param_path)
    bin_file = bin_path(param_path) if bin_file is None else Path(bin_file)
    text = _read_text(param_path)
    layers, lines = _parse_layers(text, param_path.name)
    shapes, output, classes = _infer_shapes(layers, lines, param_path.name)
    file, bin_bytes = _open(bin_file, f"the .bin written with {param_path.name}")
    with file:
        words = _walk_bin(layers, file, bin_bytes, bin_file.name, param_path.name)
    weights = next((word for word in ("int8", "fp16") if word in words), "fp32")
    return NcnnFacts(tuple(layers), layers[0].tops[0], output, shapes[layers[0].tops[0]], classes, weights,
                     sum(layer.type == "LRN" for layer in layers), len(text), bin_bytes)


def _expect(ok: object, message: str) -> None:
    if not ok:
        raise ModelLoadError(message)


def _open(path: Path, expected: str) -> tuple[BinaryIO, int]:
    try:
        file = open(path, "rb")
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}; expected {expected}") from None
    size = os.fstat(file.fileno()).st_size
    if size == 0:
        file.close()
        raise ModelLoadError(f"{path.name} is empty; expected {expected}")
    return file, size


def _read_text(path: Path) -> str:
    expected = "the ncnn .param text the exporter writes"
    file, size = _open(path, expected)
    with file:
        data = file.read(MAX_PARAM_BYTES + 1)  # never more than the bound, even if the file grew
    _expect(len(data) <= MAX_PARAM_BYTES, f"{path.name} has {size} bytes, over {MAX_PARAM_BYTES}; expected {expected}")
    bad = NOT_TEXT.search(data)
    if bad:
        at, line = bad.start(), data.count(b"\n", 0, bad.start()) + 1
        raise ModelLoadError(f"{path.name} is not ncnn .param text: byte 0x{data[at]:02X} at offset {at} (line {line})"
                             f" is not printable ASCII; expected {expected}")
    return data.decode("ascii")


def _parse_layers(text: str, name: str) -> tuple[list[NcnnLayer], list[int]]:
    lines = [(n, line.split()) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    _expect(lines and lines[0][1] == [MAGIC], f"{name} does not start with ncnn's magic {MAGIC}; expected an ncnn .param")
    counts = lines[1][1] if len(lines) > 1 else []
    _expect(len(counts) == 2 and all(t.isdigit() and 0 < int(t) < 10**9 for t in counts),
            f"{name}'s second line is not 'layer_count blob_count' (two positive counts); expected e.g. '15 15'")
    (layer_count, blob_count), found = map(int, counts), len(lines) - 2
    _expect(max(layer_count, found) <= MAX_LAYERS, f"{name} has over {MAX_LAYERS} layers; expected an AlexNet's few")
    _expect(layer_count == found, f"{name} says {layer_count} layers but has {found}; expected the count it was written with")
    layers = [_parse_layer(tokens, f"{name} line {n}") for n, tokens in lines[2:]]
    blobs = {blob for layer in layers for blob in layer.bottoms + layer.tops}
    _expect(blob_count == len(blobs),  # ncnn sizes its blob table by this count and writes past a short one
            f"{name} says {blob_count} blobs but its layers name {len(blobs)}; expected the count it was written with")
    return layers, [n for n, _ in lines[2:]]


def _parse_layer(tokens: list[str], where: str) -> NcnnLayer:
    _expect(len(tokens) >= 4, f"{where} has {len(tokens)} fields; expected 'Type name bottom_count top_count blobs k=v...'")
    type_, name = tokens[:2]
    _expect(type_ in PARAMS, f"{where}: unknown layer type {type_[:40]!r}; expected one of {', '.join(sorted(PARAMS))}")
    _expect(NAME.fullmatch(name), f"{where}: layer name {name[:40]!r} is not 1-255 of A-Za-z0-9_.:/-; expected a plain name")
    where, (ins, outs) = f"{where} ({type_} {name})", ARITY.get(type_, (ONE, ONE))
    n_in, n_out = (int(t) if t.isdigit() and len(t) <= 2 else -1 for t in tokens[2:4])
    wants = [str(r.start) if len(r) == 1 else f"{r.start} to {r.stop - 1}" for r in (ins, outs)]
    _expect(n_in in ins and n_out in outs, f"{where}: bottom and top counts {tokens[2][:9]!r} {tokens[3][:9]!r} are wrong;"
            f" expected {wants[0]} bottom(s) and {wants[1]} top(s)")
    blobs = tokens[4:4 + n_in + n_out]
    _expect(len(blobs) == n_in + n_out, f"{where} names {len(blobs)} blobs; expected {n_in} bottoms and {n_out} tops")
    for blob in blobs:
        _expect(NAME.fullmatch(blob), f"{where}: blob name {blob[:40]!r} is not 1-255 of A-Za-z0-9_.:/-; expected a plain name")
    return NcnnLayer(type_, name, tuple(blobs[:n_in]), tuple(blobs[n_in:]), _parse_params(tokens[4 + n_in + n_out:], type_, where))


def _parse_params(tokens: list[str], type_: str, where: str) -> dict[int, int | float | tuple]:
    spec, params = PARAMS[type_], {}
    for token in tokens:
        key, eq, value = token.partition("=")
        _expect(not key.startswith("-"), f"{where}: param {token[:40]!r} is ncnn's old -233xx array form; expected 'key=a,b'")
        _expect(eq and key.isdigit() and len(key) <= 2, f"{where}: {token[:40]!r} is not a key=value param; expected e.g. '0=96'")
        key = int(key)
        _expect(key in spec, f"{where}: param key {key} is not one this reader knows for {type_}; expected {sorted(spec)}")
        _expect(key not in params, f"{where}: param key {key} is given twice; expected each key once")
        params[key] = _parse_value(value, spec[key], f"{where}: param {key}={value[:40]!r}")
    for key in REQUIRED.get(type_, ()):
        _expect(key in params, f"{where}: param key {key} is missing; expected keys {list(REQUIRED[type_])} on a {type_}")
    return params


def _parse_value(value: str, rule, where: str) -> int | float | tuple:
    kind = "int array" if isinstance(rule, list) else "float" if isinstance(rule[0], float) else "int"
    items, allowed, numbers = value.split(","), rule[0] if kind == "int array" else rule, []
    _expect(len(items) == 1 or kind == "int array", f"{where} is an array; expected one {kind}")
    for item in items:
        _expect(len(item) <= 15 and (FLOAT if kind == "float" else INT).fullmatch(item), f"{where} does not parse as"
                f" {kind}; expected e.g. {'2.0' if kind == 'float' else '3'} (ncnn reads a value with '.' or 'e' as a float)")
        numbers.append(float(item) if kind == "float" else int(item))
        ok = allowed[0] <= numbers[-1] <= allowed[1] if kind == "float" else numbers[-1] in allowed
        word = " or ".join(map(str, allowed)) if isinstance(allowed, tuple) and kind == "int" else f"{allowed[0]} to {allowed[-1]}"
        _expect(ok, f"{where} is out of range; expected {word}")
    return tuple(numbers) if kind == "int array" else numbers[0]


def _infer_shapes(layers: list[NcnnLayer], lines: list[int], name: str) -> tuple[dict[str, tuple], str, int]:
    """Every blob's shape in .param order, (c, h, w) or (n,) once flat; the one output blob; its classes."""
    shapes, consumed = {}, set()
    for index, (layer, line) in enumerate(zip(layers, lines)):
        where = f"{name} line {line} ({layer.type} {layer.name})"
        _expect((layer.type == "Input") == (index == 0), f"{where}: the one Input must be the first layer; expected one input")
        for blob in layer.bottoms:
            _expect(blob in shapes, f"{where}: blob {blob!r} is used before a layer makes it; expected data-flow order")
            _expect(blob not in consumed, f"{where}: blob {blob!r} is used a second time; expected a Split, as ncnn needs")
            consumed.add(blob)
        inputs = [shapes[blob] for blob in layer.bottoms]
        _expect(layer.type not in IMAGE_LAYERS or len(inputs[0]) == 3, f"{where}: its input is flat; expected a (c, h, w) map")
        for blob, shape in zip(layer.tops, SHAPE_RULES[layer.type](layer, inputs, where)):
            _expect(blob not in shapes, f"{where}: blob {blob!r} is made a second time; expected each blob made once")
            shapes[blob] = shape
    left = [blob for blob in shapes if blob not in consumed]
    _expect(len(left) == 1, f"{name} leaves {len(left)} blobs unused ({', '.join(left[:5])}); expected one output blob")
    last = next(layer for layer in layers if left[0] in layer.tops)
    _expect(last.type == "InnerProduct", f"{name}'s output {left[0]!r} comes from a {last.type}; expected an InnerProduct")
    return shapes, left[0], last.params[0]


def _window_shape(layer: NcnnLayer, shapes: list[tuple], where: str) -> list[tuple]:
    """Convolution, ConvolutionDepthWise, Pooling: the output size; first, for a convolution, its weight count."""
    (c, h, w), p, pool = shapes[0], layer.params, layer.type == "Pooling"
    stride, pad = (2, 3) if pool else (3, 4)  # the keys for w; those for h are 10 more, right/bottom pads 11/12 more
    kw, sw, dw, left = p[1], p.get(stride, 1), 1 if pool else p.get(2, 1), p.get(pad, 0)
    kh, sh, dh, top = p.get(11, kw), p.get(stride + 10, sw), 1 if pool else p.get(12, dw), p.get(pad + 10, left)
    out, group = (c, 1) if pool else (p[0], p.get(7, 1))
    _expect(c % group == 0 and out % group == 0, f"{where}: group {group} does not divide {c} inputs and {out} outputs; expected a divisor")
    need = out * (c // group) * kh * kw
    _expect(pool or p[6] == need, f"{where}: weight_data_size (6) is {p.get(6)} but {out} outputs x {c // group} inputs x"
            f" {kh}x{kw} kernel need {need}; expected the weight count of its kernel")
    windows, sizes = ((h, kh, sh, dh, (top, p.get(pad + 12, top))), (w, kw, sw, dw, (left, p.get(pad + 11, left)))), []
    for size, kernel, step, dilation, pads in windows:
        extent, span = dilation * (kernel - 1) + 1, size + pads[0] + pads[1]  # C division rounds a negative span to 0
        _expect(span >= extent, f"{where}: a {extent}-wide window does not fit a {size}-wide input with pads {pads}; expected a fit")
        sizes.append((span - extent) // step + 1)
    return [(out, *sizes)]


def _inner_product_shape(layer: NcnnLayer, shapes: list[tuple], where: str) -> list[tuple]:
    inputs, out, count = math.prod(shapes[0]), layer.params[0], layer.params[2]
    _expect(count == out * inputs, f"{where}: weight_data_size (2) is {count} but {out} outputs x {inputs} inputs need"
            f" {out * inputs}; expected the weight count of its input")
    return [(out,)]


def _channel_shapes(layer: NcnnLayer, shapes: list[tuple], where: str) -> list[tuple]:
    """Slice cuts its input's channels (axis 0) into its tops; Concat joins its inputs' channels."""
    _expect(len({(len(shape), shape[1:]) for shape in shapes}) == 1, f"{where}: inputs {shapes} differ in h or w; expected equal")
    if layer.type == "Concat":
        return [(sum(shape[0] for shape in shapes), *shapes[0][1:])]
    sizes, channels = layer.params[0], shapes[0][0]
    _expect(len(sizes) == len(layer.tops) and sum(sizes) == channels,
            f"{where}: slices {sizes} do not cut {channels} channels into {len(layer.tops)} tops; expected them to add up")
    return [(size, *shapes[0][1:]) for size in sizes]


SHAPE_RULES = {  # the exporter writes no Input shape: then it is the toolkit's image
    "Input": lambda layer, _, where: [tuple(layer.params.get(k, d) for k, d in ((2, CHANNELS), (1, IMAGE_SIZE), (0, IMAGE_SIZE)))],
    "Convolution": _window_shape, "ConvolutionDepthWise": _window_shape, "Pooling": _window_shape,
    "InnerProduct": _inner_product_shape, "Slice": _channel_shapes, "Concat": _channel_shapes,
    "Flatten": lambda layer, shapes, where: [(math.prod(shapes[0]),)],
    "Split": lambda layer, shapes, where: shapes * len(layer.tops),
    **{kind: (lambda layer, shapes, where: shapes) for kind in ("LRN", "ReLU", "Dropout", "Softmax")},
}


def _bin_plan(layer: NcnnLayer) -> list[tuple[str, int]]:
    """The blobs this layer's load_model reads, in order: weights (tagged), bias, int8 scales."""
    if layer.type not in ("Convolution", "ConvolutionDepthWise", "InnerProduct"):
        return []
    p, dense = layer.params, layer.type == "InnerProduct"
    plan = [("weights", p[2 if dense else 6])] + ([("bias", p[0])] if p.get(1 if dense else 5) else [])
    if p.get(8):  # a scale per output; ConvolutionDepthWise: one per group (8=1) or one in all (8=2)
        per = p.get(7, 1) if p[8] == 1 else 1 if layer.type == "ConvolutionDepthWise" else p[0]
        plan += [("weight scales", per), ("input scale", 1)]
    return plan


def _walk_bin(layers: list[NcnnLayer], file: BinaryIO, size: int, name: str, param_name: str) -> set[str]:
    """Walk the .bin as ncnn's ModelBin would, reading only tags and scales; returns the words the tags claim."""
    offset, unread, words = 0, False, set()
    for layer in layers:
        for kind, count in _bin_plan(layer):
            where, length, data = f"{name} byte {offset} ({kind} of layer {layer.name} in {param_name})", 4 * count, b""
            if kind != "bias" and offset + (4 if kind == "weights" else length) <= size:
                file.seek(offset)
                data = file.read(4 if kind == "weights" else length)
            if kind == "weights":  # past the end, the narrowest width makes the need a lower bound
                word, width = _tag(data, layer.params.get(8, 0), where) if data else ("", 1)
                words, unread = words | {word}, unread or not data
                offset += 4 + -(-count * width // 4) * 4  # every blob is padded to 4 bytes
                continue
            bad = [value for value in struct.unpack(f"<{len(data) // 4}f", data) if not (math.isfinite(value) and value > 0)]
            _expect(not bad, f"{where}: scale {bad[:1]} is not finite and positive; expected 127/absmax from calibration")
            offset += length
    _expect(offset == size, f"{name} has {size} bytes but {param_name}'s layers need {'at least ' if unread else ''}{offset};"
            " the two are not one export (expected the .bin written with it)")
    return words


def _tag(data: bytes, term: int, where: str) -> tuple[str, int]:
    tag = struct.unpack("<I", data)[0]
    _expect(tag in TAGS, f"{where}: weight tag 0x{tag:08X} is unknown; expected 0 (fp32), 0x01306B47 (fp16) or 0x000D4B38 (int8)")
    word = TAGS[tag][0]  # ncnn reads int8 bytes as floats on a layer without scales
    _expect(word != "int8" or term, f"{where}: int8 weights on a layer without int8 scales (8=0); expected 8=1 or 8=2")
    _expect(word != "fp16" or not term, f"{where}: fp16 weights on a layer with int8 scales (8={term}); expected int8 or fp32")
    return TAGS[tag]
