"""ncnn: checkpoint -> a verified .ncnn.param + .ncnn.bin pair, FP32, FP16 or INT8 (command.py: the library
call; convert.py: writing and verifying; layers.py: the model as ncnn layers; format.py: ncnn's two
files; quantize.py: INT8 weights and scales)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.exporter.ncnn.spec import COMMAND
from alexnet_export.extras import require_export
from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.exporter.ncnn.command import export_ncnn
    from alexnet_export.exporter.ncnn.convert import NcnnResult

__all__ = ["COMMAND", "NcnnResult", "export_ncnn"]
__getattr__ = lazy_names(__name__, {
    "NcnnResult": "convert",
    "export_ncnn": "command",
}, before=require_export)
