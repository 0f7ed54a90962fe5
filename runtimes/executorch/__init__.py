"""ExecuTorch: .pte programs with their sidecar (runtime.py: ExecuTorchRuntime through ExecuTorch's Python
bindings, which import torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.runtimes.executorch.runtime import ExecuTorchRuntime

__all__ = ["ExecuTorchRuntime"]
__getattr__ = lazy_names(__name__, {
    "ExecuTorchRuntime": "runtime",
})
