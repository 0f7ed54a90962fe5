"""INT8 for ncnn: per-output-channel symmetric weights and one scale per layer input, the scheme of
ncnn's own tools (tools/quantize/ncnn2table.cpp: scale = 127 / absmax; src/layer/quantize.cpp:
q = clamp(round(x * scale), -127, 127) with C's round, half away from zero).

The input ranges are the ones every other INT8 file of the toolkit is made from: ONNX Runtime's
calibration of the FP32 .onnx on the calibration images, cached (exporter/calibration/ranges.py), so
re-exporting reuses them. Each weighted layer's input is found in the FP32 graph by the layer table
(runtimes/verification/layers.py), so a layer is scaled by what its Conv or Gemm node saw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alexnet_export.errors import ExportError
from alexnet_export.exporter.calibration.ranges import Ranges
from alexnet_export.runtimes.verification.layers import WEIGHTED, find_layers

INT8_LIMIT = 127.0


def quantize_rows(weight: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """`weight` viewed as (rows, -1), one symmetric scale per row: (INT8 weights, float32 scales)."""
    flat = weight.reshape(rows, -1).astype(np.float32)
    absmax = np.abs(flat).max(axis=1)
    scales = np.where(absmax > 0, INT8_LIMIT / np.maximum(absmax, 1e-30), 1.0).astype(np.float32)
    scaled = flat * scales[:, None]
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)  # C's round(): half away from zero
    return np.clip(rounded, -INT8_LIMIT, INT8_LIMIT).astype(np.int8).reshape(weight.shape), scales


def input_scale(absmax: float, layer: str) -> np.ndarray:
    """ncnn's bottom_blob_int8_scales for a layer whose input reached `absmax`."""
    if not np.isfinite(absmax) or absmax <= 0:
        raise ExportError(f"the calibration range of {layer}'s input is {absmax!r}; expected a positive finite"
                          " value (are the calibration images all black?)")
    return np.array([INT8_LIMIT / absmax], dtype=np.float32)


def input_ranges(fp32_onnx: str | Path, ranges: Ranges) -> dict[str, float]:
    """{weighted layer (conv1..fc8): max |value| its input took} from the calibration cache of `fp32_onnx`."""
    import onnx
    from onnxruntime.quantization.calibrate import load_tensors_data

    model = onnx.load(str(fp32_onnx), load_external_data=False)
    inputs = {node.name: node.input[0] for node in model.graph.node}
    layers = find_layers(model)
    data = load_tensors_data(ranges.path).data
    found = {}
    for name in WEIGHTED:
        tensor = inputs[layers[name].node]
        if tensor not in data:
            raise ExportError(f"the calibration cache {ranges.path.name} has no range for {name}'s input {tensor!r};"
                              " expected ranges of every float tensor (delete the file to calibrate again)")
        lowest, highest = data[tensor].range_value
        found[name] = float(max(abs(float(lowest)), abs(float(highest))))
    return found
