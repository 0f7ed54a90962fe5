"""LiteRT: checkpoint -> a verified .tflite, FP32, FP16 or INT8, builtin operators only (command.py: the
library call; convert.py: converting, quantizing, verifying)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.exporter.litert.spec import COMMAND, MAX_BATCH_LIMIT
from alexnet_export.extras import require_export
from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.exporter.litert.command import export_litert

__all__ = ["COMMAND", "MAX_BATCH_LIMIT", "export_litert"]
__getattr__ = lazy_names(__name__, {
    "export_litert": "command",
}, before=require_export)
