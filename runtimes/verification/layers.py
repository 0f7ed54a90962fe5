"""AlexNet's layers by the names users know (the paper's conv1..conv5, fc6..fc8; pool and norm
as in Caffe's bvlc_alexnet), mapped to the seed's modules and to the nodes of any ONNX file the
toolkit writes (FP32, FP16, both INT8 formats, native or pooled LRN). Needs onnx only, imported
where a graph is read, so the CLI can list the names cheaply.

A layer's output is taken as the next layer sees it: after its ReLU, and dequantized where the
file quantizes it. So in an INT8 file the rounding of a tensor shows at the layer that writes
it, whichever node the quantizer attached the Q/DQ pair to (the CPU file quantizes Conv
outputs, the TensorRT file the inputs of the next Conv/Gemm: the same tensor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from alexnet_export.errors import AlexNetExportError


@dataclass(frozen=True)
class Layer:
    name: str  # the paper's name
    op: str  # the ONNX operator that computes it
    module: str  # the seed's module (models/alexnet.py): state-dict prefix of its weights
    output_module: str  # the module whose output is the layer's output (its ReLU, where it has one)


LAYERS = (
    Layer("conv1", "Conv", "features.0", "features.1"),
    Layer("pool1", "MaxPool", "features.2", "features.2"),
    Layer("norm1", "LRN", "features.3", "features.3"),
    Layer("conv2", "Conv", "features.4", "features.5"),
    Layer("pool2", "MaxPool", "features.6", "features.6"),
    Layer("norm2", "LRN", "features.7", "features.7"),
    Layer("conv3", "Conv", "features.8", "features.9"),
    Layer("conv4", "Conv", "features.10", "features.11"),
    Layer("conv5", "Conv", "features.12", "features.13"),
    Layer("pool5", "MaxPool", "features.14", "features.14"),
    Layer("fc6", "Gemm", "classifier.1", "classifier.2"),
    Layer("fc7", "Gemm", "classifier.4", "classifier.5"),
    Layer("fc8", "Gemm", "classifier.6", "classifier.6"),
)
BY_NAME = {layer.name: layer for layer in LAYERS}
WEIGHTED_OPS = ("Conv", "Gemm")
WEIGHTED = tuple(layer.name for layer in LAYERS if layer.op in WEIGHTED_OPS)
# Ops between a layer and the next that belong to its output: its ReLU, the FP16 file's casts,
# the INT8 files' Q/DQ pairs, pool5's flattening (the TensorRT file quantizes after it).
_PASS_THROUGH = ("Relu", "Cast", "QuantizeLinear", "DequantizeLinear", "Reshape", "Flatten")


class LayerError(AlexNetExportError, ValueError):
    """A layer name is unknown, or a graph's layers cannot be told apart."""


def weighted_layers(names: Sequence[str] | str, argument: str = "keep_float") -> tuple[str, ...]:
    """Check layer names for keeping in float: known, with weights; returned in network order.

    A string is read as comma-separated names ("conv4,fc8").
    """
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",") if part.strip()]
    for name in names:
        if name not in BY_NAME:
            raise LayerError(f"layer {name!r} is unknown; expected some of {', '.join(WEIGHTED)}", argument=argument)
        if name not in WEIGHTED:
            raise LayerError(f"layer {name!r} has no weights to keep in float; expected some of {', '.join(WEIGHTED)}",
                             argument=argument)
    return tuple(name for name in WEIGHTED if name in names)


@dataclass(frozen=True)
class GraphLayer:
    name: str
    node: str  # the name of the ONNX node that computes the layer
    output: str  # the tensor holding its output as the next layer sees it


def find_layers(model) -> dict[str, GraphLayer]:
    """Every layer of LAYERS in `model` (an onnx.ModelProto), in network order.

    Conv/Gemm nodes are matched by their weight initializer (named after the seed's module by
    the exporter, with the quantizer's `_quantized` suffix in INT8 files) and, in a graph whose
    weights carry other names, by their order; pools and norms by order (a pooled LRN is found
    by its AveragePool). Raises LayerError when the graph does not have AlexNet's layers.
    """
    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    nodes = {}
    nodes.update(_weighted_nodes(graph, producers))
    for op, found in (("MaxPool", _nodes_of(graph, "MaxPool")), ("LRN", _lrn_nodes(graph, consumers))):
        expected = [layer.name for layer in LAYERS if layer.op == op]
        if len(found) != len(expected):
            raise LayerError(f"the graph has {len(found)} {op} layers; expected {len(expected)} (AlexNet's"
                             f" {', '.join(expected)})")
        nodes.update(zip(expected, found))
    return {layer.name: GraphLayer(layer.name, nodes[layer.name].name, _seen_by_next(nodes[layer.name], consumers))
            for layer in LAYERS}


def _nodes_of(graph, op: str) -> list:
    return [node for node in graph.node if node.op_type == op]


def _weighted_nodes(graph, producers) -> dict:
    weighted = [node for node in graph.node if node.op_type in WEIGHTED_OPS]
    by_weight = {_weight_source(node, producers): node for node in weighted}
    named = {layer.name: by_weight.get(f"{layer.module}.weight") for layer in LAYERS if layer.name in WEIGHTED}
    if all(named.values()):
        return named
    # Weights named otherwise (another exporter, a renamed file): the order still tells.
    ops = [BY_NAME[name].op for name in WEIGHTED]
    if [node.op_type for node in weighted] != ops:
        found = " ".join(node.op_type for node in weighted) or "none"
        raise LayerError(f"the graph's weighted layers are {found}; expected AlexNet's {' '.join(ops)}")
    return dict(zip(WEIGHTED, weighted))


def _weight_source(node, producers) -> str:
    """The initializer a Conv/Gemm weight comes from, through DequantizeLinear or Cast."""
    name = node.input[1]
    while name in producers and producers[name].op_type in ("DequantizeLinear", "Cast"):
        name = producers[name].input[0]
    return name.removesuffix("_quantized")


def _lrn_nodes(graph, consumers) -> list:
    native = _nodes_of(graph, "LRN")
    if native:
        return native
    # The pooled form (exporter/rewrites/lrn_pooled.py): AveragePool -> Squeeze -> Mul -> Add -> Pow -> Div,
    # and the Div writes the tensor the LRN node wrote.
    found = []
    for pool in _nodes_of(graph, "AveragePool"):
        node = pool
        while node.op_type != "Div" and len(consumers.get(node.output[0], ())) == 1:
            node = consumers[node.output[0]][0]
        if node.op_type == "Div":
            found.append(node)
    return found


def _seen_by_next(node, consumers) -> str:
    tensor = node.output[0]
    while len(consumers.get(tensor, ())) == 1 and consumers[tensor][0].op_type in _PASS_THROUGH:
        tensor = consumers[tensor][0].output[0]
    return tensor
