"""ONNX Runtime: .onnx and .ort files (runtime.py: OnnxRuntime; reader.py: what a file's graph says about
itself, read without the onnx package; arrays.py: IO binding and DLPack; providers.py: execution providers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.runtimes.onnx.reader import read_graph_facts
    from alexnet_export.runtimes.onnx.runtime import OnnxRuntime

__all__ = ["OnnxRuntime", "read_graph_facts"]
__getattr__ = lazy_names(__name__, {
    "OnnxRuntime": "runtime",
    "read_graph_facts": "reader",
})
