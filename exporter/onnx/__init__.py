"""ONNX: checkpoint -> a verified .onnx in FP32, FP16, INT8 or INT4, and its .ort form (command.py: the
commands as library calls; convert.py: the FP32 export; quantize.py, variants.py, keep_float.py,
auto_keep.py, int4.py: the precision files; pixels.py: the uint8-input file; ort_format.py: .ort)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.extras import require_export
from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.exporter.onnx.command import OnnxFile, export_onnx_file, make_precision_file
    from alexnet_export.exporter.onnx.ort_format import OrtFile, export_ort_file

__all__ = ["OnnxFile", "OrtFile", "export_onnx_file", "export_ort_file", "make_precision_file"]
__getattr__ = lazy_names(__name__, {
    "OnnxFile": "command",
    "OrtFile": "ort_format",
    "export_onnx_file": "command",
    "export_ort_file": "ort_format",
    "make_precision_file": "command",
}, before=require_export)
