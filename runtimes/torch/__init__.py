"""Eager PyTorch: checkpoints as models (runtime.py: TorchRuntime, the reference every export is checked
against)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.runtimes.torch.runtime import TorchRuntime

__all__ = ["TorchRuntime"]
__getattr__ = lazy_names(__name__, {
    "TorchRuntime": "runtime",
})
