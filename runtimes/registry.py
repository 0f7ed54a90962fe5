"""Pick the runtime for a model file by its suffix."""

from __future__ import annotations

from pathlib import Path

from alexnet_export.errors import ModelLoadError
from alexnet_export.runtimes.base import Runtime

ONNX_SUFFIXES = (".onnx",)
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")
ENGINE_SUFFIXES = (".engine", ".plan")


def open_runtime(path: str | Path, **options) -> Runtime:
    """OnnxRuntime for .onnx, TorchRuntime for checkpoints, TensorRTRuntime for engines."""
    suffix = Path(path).suffix.lower()
    if suffix in ONNX_SUFFIXES:
        from alexnet_export.runtimes.onnx import OnnxRuntime

        return OnnxRuntime(path, **options)
    if suffix in CHECKPOINT_SUFFIXES:
        from alexnet_export.runtimes.torch import TorchRuntime

        return TorchRuntime(path, **options)
    if suffix in ENGINE_SUFFIXES:
        from alexnet_export.runtimes.tensorrt import TensorRTRuntime

        return TensorRTRuntime(path, **options)
    raise ModelLoadError(
        f"don't know how to run {path}: suffix {suffix or '(none)'!r}; expected one of"
        f" {', '.join(ONNX_SUFFIXES + CHECKPOINT_SUFFIXES + ENGINE_SUFFIXES)}"
    )
