"""FP32 ONNX -> INT4 block-wise weights for the fully connected layers (fc6-fc8), with ONNX
Runtime's MatMulNBits operator.

At batch 1 a CPU spends AlexNet's time reading weights, and fc6-fc8 hold 47 of its 49 million
parameters: in 4 bits with one FP32 scale per block of BLOCK_SIZE weights they take about an
eighth of their FP32 bytes. The convolutions, LRN and biases stay FP32 (LRN in the pooled form
ONNX Runtime's CPU provider runs faster, exporter/rewrites/lrn_pooled.py). No calibration images: the
weights alone decide the scales.

The exporter writes each Linear as Gemm(x, W, b, transB=1), and ONNX Runtime's
MatMulNBitsQuantizer (onnxruntime.quantization.matmul_nbits_quantizer) takes MatMul nodes only
(its default `op_types_to_quantize` is {"MatMul"}, and it quantizes input B of a MatMul): so each
Gemm with a constant weight first becomes MatMul(x, W^T) + Add(b), the same arithmetic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from alexnet_export.atomic import atomic_output
from alexnet_export.exporter.rewrites.lrn_pooled import pool_lrn_nodes
from alexnet_export.models.precisions import INT4
from alexnet_export.models.spec import LRN_KEY, PRECISION_KEY

# Weights per scale (and zero point), along the input axis (K). Measured on the seeded 1000-class
# model (docs/precision.md): blocks of 16 with zero points kept the logits closest to FP32 (mean
# cosine 0.9926, against 0.9885 for symmetric blocks of 32 and 0.985 for 128) at 23% of the FP32
# file's bytes, and ran no slower at batch 1.
BLOCK_SIZE = 16
# MatMulNBits' accuracy_level 4: the activations are quantized to INT8 per block and the products
# summed in integers (ONNX Runtime's contrib operator docs); 0 would dequantize to FP32 and multiply
# in FP32. Measured faster at batch 1 with the same gate figures (docs/precision.md).
ACCURACY_LEVEL = 4


def gemms_to_matmuls(model: onnx.ModelProto) -> int:
    """Rewrite, in place, each Gemm(x, W, b) with a constant W (alpha = beta = 1, transA = 0) as
    MatMul(x, W') + b, W' laid out [K, N]; returns how many were rewritten."""
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    nodes, rewritten = [], 0
    for node in graph.node:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = initializers.get(node.input[1]) if node.op_type == "Gemm" and len(node.input) > 1 else None
        plain = attributes.get("alpha", 1.0) == 1.0 and attributes.get("beta", 1.0) == 1.0 and not attributes.get("transA", 0)
        if weight is None or not plain:
            nodes.append(node)
            continue
        array = numpy_helper.to_array(weight)
        if attributes.get("transB", 0):
            array = np.ascontiguousarray(array.T)
        name = f"{weight.name}_kn"
        graph.initializer.append(numpy_helper.from_array(array, name))
        product = f"{node.output[0]}_matmul" if len(node.input) > 2 and node.input[2] else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product], name=f"{node.name}_matmul"))
        if product != node.output[0]:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_bias"))
        rewritten += 1
    used = {name for node in nodes for name in node.input}
    kept = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return rewritten


def to_int4(fp32_onnx: str | Path, output: str | Path, *, block_size: int = BLOCK_SIZE,
            accuracy_level: int = ACCURACY_LEVEL) -> int:
    """Write the INT4-weight file of `fp32_onnx` to `output` (atomically); returns how many fully
    connected layers it quantized."""
    from onnxruntime.quantization import matmul_nbits_quantizer as nbits

    from alexnet_export.exporter.calibration.ranges import quiet_onnxruntime_quantization

    model = onnx.load(str(fp32_onnx))
    count = gemms_to_matmuls(model)
    pool_lrn_nodes(model)
    config = nbits.DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=False,
                                                accuracy_level=accuracy_level, bits=4)
    with quiet_onnxruntime_quantization():
        quantizer = nbits.MatMulNBitsQuantizer(model, algo_config=config)
        quantizer.process()
    quantized = quantizer.model.model
    found = sum(node.op_type == "MatMulNBits" for node in quantized.graph.node)
    if found != count:
        raise RuntimeError(f"ONNX Runtime's MatMulNBits quantizer took {found} of the {count} fully connected layers")
    props = {p.key: p.value for p in quantized.metadata_props}
    props.update({PRECISION_KEY: INT4, LRN_KEY: "pooled"})
    del quantized.metadata_props[:]
    for key, value in props.items():
        quantized.metadata_props.add(key=key, value=value)
    with atomic_output(output) as temporary:
        onnx.save_model(quantized, str(temporary))
    return count
