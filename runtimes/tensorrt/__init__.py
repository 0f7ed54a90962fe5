"""TensorRT: engines (runtime.py: TensorRTRuntime on a GPU the engine targets; sidecar.py: the JSON beside
every engine, what built it and for which GPUs; support.py: the builder's import, the GPU's identity, logging)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.runtimes.tensorrt.runtime import TensorRTRuntime

__all__ = ["TensorRTRuntime"]
__getattr__ = lazy_names(__name__, {
    "TensorRTRuntime": "runtime",
})
