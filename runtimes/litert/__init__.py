"""LiteRT: .tflite models with their sidecar (runtime.py: LiteRtRuntime through ai-edge-litert's interpreter;
reader.py: what the flatbuffer holds, read without running it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.runtimes.litert.reader import read_tflite_facts
    from alexnet_export.runtimes.litert.runtime import LiteRtRuntime

__all__ = ["LiteRtRuntime", "read_tflite_facts"]
__getattr__ = lazy_names(__name__, {
    "LiteRtRuntime": "runtime",
    "read_tflite_facts": "reader",
})
