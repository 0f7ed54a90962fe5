"""FP32 ONNX -> FP16 ONNX and the two INT8 ONNX flavours. Precision lives in the file.

TensorRT 11 dropped the FP16/INT8 builder flags: the ONNX must carry FP16 tensors or explicit
QuantizeLinear/DequantizeLinear nodes, which TensorRT 10 also builds with STRONGLY_TYPED.

- fp16: Conv/Gemm weights and activations in FP16, FP32 inputs and outputs, LRN kept in FP32
  (it sums squares, which can overflow FP16).
- int8-tensorrt: TensorRT's Q/DQ rules: INT8, symmetric, zero points 0, per-tensor activation
  scales, per-channel weight scales on the output-channel axis, Q/DQ only on the inputs of
  Conv and Gemm, biases and LRN in float.
- int8-cpu: asymmetric UINT8 activations with INT8 per-channel weights in QDQ form, LRN as
  pooled plain ops (exporter/rewrites/lrn_pooled.py). On x86
  without VNNI, U8S8 ran fastest and closest to FP32; QOperator form ran no faster and
  reduce_range lost accuracy for no speed (benchmarks/int8_formats.py measures all of them).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import onnx

from alexnet_export.atomic import atomic_output
from alexnet_export.exporter.calibration.ranges import Ranges, ort_method, quiet_onnxruntime_quantization
from alexnet_export.exporter.onnx.keep_float import bypass_input_qdq, plan_float_layers
from alexnet_export.exporter.rewrites.lrn_pooled import pool_lrn_nodes
from alexnet_export.models.spec import CALIBRATION_KEY, FLOAT_LAYERS_KEY, PRECISION_KEY
from alexnet_export.models.precisions import FP16, INT8_CPU, INT8_TENSORRT


def to_fp16(fp32_onnx: str | Path, output: str | Path) -> int:
    """Write the FP16 model; returns how many tiny weights FP16 could not hold and were clamped."""
    from onnxconverter_common import float16

    model = onnx.load(str(fp32_onnx))
    with warnings.catch_warnings(record=True) as clamped:
        warnings.simplefilter("always")
        converted = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=["LRN"])
    _label(converted, FP16, "")
    with atomic_output(output) as temporary:
        onnx.save_model(converted, str(temporary))
    return sum(1 for w in clamped if "truncated" in str(w.message))


def _int8_settings(precision: str) -> dict:
    """quantize_static settings per INT8 flavour (see the module docstring for the why)."""
    from onnxruntime.quantization import QuantFormat, QuantType

    common = {"quant_format": QuantFormat.QDQ, "weight_type": QuantType.QInt8, "per_channel": True}
    if precision == INT8_TENSORRT:
        return {**common, "activation_type": QuantType.QInt8, "op_types_to_quantize": ["Conv", "Gemm"],
                "extra_options": {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                                  # TensorRT places Q/DQ on the inputs of weighted layers only; an
                                  # output Q/DQ would also round the logits to 8 bits.
                                  "OpTypesToExcludeOutputQuantization": ["Conv", "Gemm"]}}
    # int8-cpu: fully connected outputs stay float (same speed, and the logits keep full
    # precision); LRN stays float, and as pooled plain ops runs 1.4x faster here.
    return {**common, "activation_type": QuantType.QUInt8,
            "extra_options": {"OpTypesToExcludeOutputQuantization": ["Gemm"]}, "rewrite": pool_lrn_nodes}


def to_int8_tensorrt(fp32_onnx: str | Path, ranges: Ranges, output: str | Path, keep_float: Sequence[str] = ()) -> None:
    """keep_float: layer names (runtimes/verification/layers.py) whose weights and inputs stay float."""
    _quantize(fp32_onnx, ranges, output, INT8_TENSORRT, keep_float, **_int8_settings(INT8_TENSORRT))


def to_int8_cpu(fp32_onnx: str | Path, ranges: Ranges, output: str | Path, keep_float: Sequence[str] = ()) -> None:
    """keep_float: layer names (runtimes/verification/layers.py) whose weights and inputs stay float."""
    _quantize(fp32_onnx, ranges, output, INT8_CPU, keep_float, **_int8_settings(INT8_CPU))


# The quantizer of each INT8 precision the ONNX exporter writes (models/precisions.py).
QUANTIZERS = {INT8_TENSORRT: to_int8_tensorrt, INT8_CPU: to_int8_cpu}


def _quantize(fp32_onnx, ranges: Ranges, output, precision: str, keep_float: Sequence[str], rewrite=None,
              **settings) -> None:
    from onnxruntime.quantization import quantize_static

    model = onnx.load(str(fp32_onnx))
    plan = plan_float_layers(model, keep_float)
    with atomic_output(output) as temporary, quiet_onnxruntime_quantization():
        # The cache already holds the ranges, so no calibration data is needed here.
        quantize_static(model, str(temporary), None, calibrate_method=ort_method(ranges.method),
                        calibration_cache_path=str(ranges.path), nodes_to_exclude=sorted(plan.nodes), **settings)
        model = onnx.load(str(temporary))
        bypass_input_qdq(model, plan)
        if rewrite is not None:
            rewrite(model)
        _label(model, precision, f"{ranges.method}, ranges {ranges.path.name}", plan.layers)
        onnx.save_model(model, str(temporary))


def _label(model: onnx.ModelProto, precision: str, calibration: str, float_layers: Sequence[str] = ()) -> None:
    props = {p.key: p.value for p in model.metadata_props}
    props[PRECISION_KEY] = precision
    if calibration:
        props[CALIBRATION_KEY] = calibration
    if float_layers:
        props[FLOAT_LAYERS_KEY] = ",".join(float_layers)
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
