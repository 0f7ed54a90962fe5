"""ExecuTorch: checkpoint -> a verified .pte for XNNPACK, FP32 or INT8 (command.py: the library call;
convert.py: lowering, quantizing, verifying)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.exporter.executorch.spec import COMMAND, DEFAULT_MAX_BATCH, MAX_BATCH_LIMIT
from alexnet_export.extras import require_export
from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.exporter.executorch.command import export_executorch

__all__ = ["COMMAND", "DEFAULT_MAX_BATCH", "MAX_BATCH_LIMIT", "export_executorch"]
__getattr__ = lazy_names(__name__, {
    "export_executorch": "command",
}, before=require_export)
