"""OpenVINO: IRs (.xml beside its .bin; runtime.py: OpenVinoRuntime, the IR's metadata and precision)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.runtimes.openvino.runtime import OpenVinoRuntime

__all__ = ["OpenVinoRuntime"]
__getattr__ = lazy_names(__name__, {
    "OpenVinoRuntime": "runtime",
})
