"""One interface, several backends: `predict(batch) -> logits`, `classify(images) -> top-k`.

Importing this package imports neither torch nor onnxruntime; each backend loads its
framework when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["ExecuTorchRuntime", "LiteRtRuntime", "OnnxRuntime", "OpenVinoRuntime", "TorchRuntime", "TensorRTRuntime",
           "Runtime", "open_runtime"]

if TYPE_CHECKING:
    from alexnet_export.runtimes.base import Runtime
    from alexnet_export.runtimes.executorch import ExecuTorchRuntime
    from alexnet_export.runtimes.litert import LiteRtRuntime
    from alexnet_export.runtimes.onnx import OnnxRuntime
    from alexnet_export.runtimes.openvino import OpenVinoRuntime
    from alexnet_export.runtimes.registry import open_runtime
    from alexnet_export.runtimes.tensorrt import TensorRTRuntime
    from alexnet_export.runtimes.torch import TorchRuntime

_HOMES = {
    "ExecuTorchRuntime": "alexnet_export.runtimes.executorch",
    "LiteRtRuntime": "alexnet_export.runtimes.litert",
    "OnnxRuntime": "alexnet_export.runtimes.onnx",
    "OpenVinoRuntime": "alexnet_export.runtimes.openvino",
    "TorchRuntime": "alexnet_export.runtimes.torch",
    "TensorRTRuntime": "alexnet_export.runtimes.tensorrt",
    "Runtime": "alexnet_export.runtimes.base",
    "open_runtime": "alexnet_export.runtimes.registry",
}


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
