"""OpenVINO: the ONNX file -> a verified IR in FP32, BF16 or INT8 (command.py: the library call;
convert.py: the IR written as a pair and verified)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.extras import require_export
from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.exporter.openvino.command import IrFile, export_openvino_ir

__all__ = ["IrFile", "export_openvino_ir"]
__getattr__ = lazy_names(__name__, {
    "IrFile": "command",
    "export_openvino_ir": "command",
}, before=require_export)
