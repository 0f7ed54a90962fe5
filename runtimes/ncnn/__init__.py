"""ncnn: `.ncnn.param` / `.ncnn.bin` pairs with their sidecar (runtime.py: NcnnRuntime through ncnn's
Python wheel; reader.py: what the pair holds, checked in full before ncnn reads it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.runtimes.ncnn.reader import read_ncnn_facts
    from alexnet_export.runtimes.ncnn.runtime import NcnnRuntime

__all__ = ["NcnnRuntime", "read_ncnn_facts"]
__getattr__ = lazy_names(__name__, {
    "NcnnRuntime": "runtime",
    "read_ncnn_facts": "reader",
})
