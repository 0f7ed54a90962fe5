"""Layers kept in float inside an INT8 file: their weights and their input activations carry no
Q/DQ, whichever node the quantizer would have put it on.

Excluding the layer's node from ONNX Runtime's quantizer keeps its weights float, but not its
input: in the CPU file the previous Conv quantizes its own output, which is this layer's input
(on the hard case of tests/conftest.py, excluding conv4 alone left the min cosine at 0.70). So
the nodes between the previous weighted layer and the kept one (ReLU, pooling, LRN, flattening)
are excluded too, which also stops the quantizer from folding that ReLU into the previous
Conv's output quantization, and after quantizing, the Q/DQ pairs left on that path are bypassed:
the kept layer reads the previous layer's float output. Everything else keeps the file's rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from alexnet_export.runtimes.verification.layers import BY_NAME, WEIGHTED_OPS, find_layers, weighted_layers


@dataclass(frozen=True)
class FloatPlan:
    layers: tuple[str, ...]  # the kept layers, in network order
    nodes: frozenset[str]  # the nodes the quantizer must leave alone: kept layers and their input paths


def plan_float_layers(model, keep: Sequence[str]) -> FloatPlan:
    """Which nodes of the FP32 `model` (onnx.ModelProto) stay float for the layers `keep`.

    Unnamed nodes get names here (the quantizer excludes nodes by name), so pass the same
    `model` to the quantizer.
    """
    keep = weighted_layers(keep)
    if not keep:
        return FloatPlan((), frozenset())
    for index, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"alexnet_export_node_{index}"
    layers = find_layers(model)
    producers = {output: node for node in model.graph.node for output in node.output}
    initializers = {tensor.name for tensor in model.graph.initializer}
    nodes = set()
    for name in keep:
        (node,) = [n for n in model.graph.node if n.name == layers[name].node]
        nodes.add(node.name)
        # Everything on the way back to the previous weighted layer (or the graph input).
        pending = [node.input[0]]
        while pending:
            producer = producers.get(pending.pop())
            if producer is None or producer.op_type in WEIGHTED_OPS or producer.name in nodes:
                continue
            nodes.add(producer.name)
            pending.extend(t for t in producer.input if t and t not in initializers)
    return FloatPlan(keep, frozenset(nodes))


def bypass_input_qdq(model, plan: FloatPlan) -> int:
    """Rewire the plan's nodes in the quantized `model` to read float tensors instead of
    Q/DQ'd activations; drop the pairs nothing reads any more. Returns the inputs rewired."""
    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    initializers = {tensor.name for tensor in graph.initializer}
    rewired = 0
    for node in graph.node:
        if node.name not in plan.nodes:
            continue
        for index, tensor in enumerate(node.input):
            dequantize = producers.get(tensor)
            if dequantize is None or dequantize.op_type != "DequantizeLinear" or dequantize.input[0] in initializers:
                continue  # not an activation's Q/DQ (a weight's DQ stays: the plan's weights are float anyway)
            quantize = producers.get(dequantize.input[0])
            if quantize is not None and quantize.op_type == "QuantizeLinear":
                node.input[index] = quantize.input[0]
                rewired += 1
    _drop_unread(graph)
    return rewired


def _drop_unread(graph) -> None:
    """Remove Q/DQ nodes whose outputs nothing reads, then the scales and zero points left unused."""
    outputs = {o.name for o in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        dead = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.output[0] not in read]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {name for node in graph.node for name in node.input}
    unused = [tensor for tensor in graph.initializer if tensor.name not in read]
    for tensor in unused:
        graph.initializer.remove(tensor)


def describe(layers: Sequence[str]) -> str:
    """"conv4 (features.10), fc8 (classifier.6)": the names and the modules they are."""
    return ", ".join(f"{name} ({BY_NAME[name].module})" for name in layers)
