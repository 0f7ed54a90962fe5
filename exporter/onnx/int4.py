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
from alexnet_export.errors import ParityError
from alexnet_export.events import Note
from alexnet_export.exporter.rewrites.lrn_pooled import pool_lrn_nodes
from alexnet_export.models.precisions import CLEAR_MARGIN, INT4, INT4_GATE
from alexnet_export.models.spec import LRN_KEY, PRECISION_KEY, Preprocessing

# Weights per scale (and zero point), along the input axis (K). Measured on the seeded 1000-class
# model (docs/precision.md): blocks of 16 with zero points kept the logits closest to FP32 (mean
# cosine 0.9926, against 0.9885 for symmetric blocks of 32 and 0.985 for 128) at 23% of the FP32
# file's bytes, and ran no slower at batch 1.
BLOCK_SIZE = 16
# MatMulNBits' accuracy_level 4: the activations are quantized to INT8 per block and the products
# summed in integers (ONNX Runtime's contrib operator docs); 0 would dequantize to FP32 and multiply
# in FP32. Measured faster at batch 1 with the same gate figures (docs/precision.md).
ACCURACY_LEVEL = 4
# The gate's inputs without a calibration folder: the 32 generated images every precision file is
# verified on and 64 more of the same seed (the first 32 are the same images). About 60 of 96 have a
# clear margin on the seeded models, so one changed answer moves top-1 agreement by under 2 points
# (by 4.5 on 32). With a folder, every image read from it: INT4 is calibrated on none.
GENERATED_IMAGES, GENERATED_SEED = 96, 4321
# Fewer clear-margin inputs than this and the command says the top-1 figure rests on few answers.
MIN_CLEAR_INPUTS = 16
ADVICE = ("fc6-fc8 lose answers in 4 bits: try INT8 calibrated on your images (`onnx --precision int8 --calib-dir DIR`,"
          " precision int8-cpu) or FP16 (`--precision fp16`)")


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


def gate_inputs(calibration_set, preprocessing: Preprocessing) -> tuple[np.ndarray, str]:
    """What the INT4 file is gated on, and what those inputs are: every image read from the calibration
    folder (calibration and held-out ones: INT4 is calibrated on none), else GENERATED_IMAGES photo-like ones."""
    if calibration_set is not None:
        images = np.concatenate([calibration_set.images, calibration_set.holdout]) if len(calibration_set.holdout) \
            else calibration_set.images
        return images, f"the {len(images)} calibration-folder images (INT4 is calibrated on none of them)"
    from alexnet_export.runtimes.preprocess import preprocess_batch
    from alexnet_export.runtimes.verification.samples import synthetic_images

    images = preprocess_batch(synthetic_images(GENERATED_IMAGES, seed=GENERATED_SEED), preprocessing)
    return images, f"{GENERATED_IMAGES} generated photo-like images (no calibration folder: not real images)"


def check_gate(report, what: str, *, generated: bool) -> list[Note]:
    """Hold the INT4 file to its gate (models/precisions.py INT4_GATE: cosine, and top-1 agreement over
    the inputs whose FP32 margin is clear): a ParityError in one line with the figures and what to try, or
    a note of how far top-1 moved, a warning where the gate's inputs were generated images, few had a
    clear margin, or more answers changed overall than the gate allows among the clear ones."""
    problems = report.failures(INT4_GATE)
    if problems:
        raise ParityError(f"{what} fails the {INT4_GATE.name} parity gate: {'; '.join(problems)}; {ADVICE}", report)
    changed = round((1 - report.top1_agreement) * report.samples)
    kept = round(report.clear_top1_agreement * report.clear)
    moved = (f"{kept} of the {report.clear} answers with a clear FP32 margin (>= {CLEAR_MARGIN} std of the logits)"
             f" kept, {changed} of all {report.samples} changed ({1 - report.top1_agreement:.1%}),"
             f" {changed - (report.clear - kept)} of them near ties")
    if generated:
        return [Note(f"top-1 was gated on generated images, not real ones: {moved}; give calibration images"
                     " (--calib-dir DIR) to gate INT4 on yours", warning=True)]
    if report.clear < MIN_CLEAR_INPUTS:
        return [Note(f"top-1 rests on only {report.clear} inputs with a clear FP32 margin, too few to say much:"
                     f" {moved}", warning=True)]
    if 1 - report.top1_agreement > 1 - INT4_GATE.min_top1:
        return [Note(f"top-1: {moved}; measure accuracy on labelled images before deploying"
                     " (`verify FILE --images DIR --labels-from-folders --reference MODEL`)", warning=True)]
    return [Note(f"top-1: {moved}")]
