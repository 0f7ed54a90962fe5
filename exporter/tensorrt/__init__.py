"""TensorRT: the ONNX file -> an engine with its sidecar (command.py: `alexnet-export trt` as a library
call; settings.py: what a build is asked; convert.py: the build; inspect.py: per-layer precision
before any GPU)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.extras import require_export
from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.exporter.tensorrt.inspect import inspect_model
    from alexnet_export.exporter.tensorrt.command import DEFAULT_ENGINE, EngineBuild, build_tensorrt_engine

__all__ = ["inspect_model", "DEFAULT_ENGINE", "EngineBuild", "build_tensorrt_engine"]
__getattr__ = lazy_names(__name__, {
    "inspect_model": "inspect",
    "DEFAULT_ENGINE": "command",
    "EngineBuild": "command",
    "build_tensorrt_engine": "command",
}, before=require_export)
