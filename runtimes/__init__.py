"""One interface, several backends: `predict(batch) -> logits`, `classify(images) -> top-k`.

Importing this package imports neither torch nor onnxruntime; each backend loads its
framework when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.lazy import lazy_names

__all__ = ["ExecuTorchRuntime", "LiteRtRuntime", "NcnnRuntime", "OnnxRuntime", "OpenVinoRuntime", "TorchRuntime", "TensorRTRuntime",
           "Runtime", "open_runtime"]

if TYPE_CHECKING:
    from alexnet_export.runtimes.base import Runtime
    from alexnet_export.runtimes.executorch.runtime import ExecuTorchRuntime
    from alexnet_export.runtimes.litert.runtime import LiteRtRuntime
    from alexnet_export.runtimes.ncnn.runtime import NcnnRuntime
    from alexnet_export.runtimes.onnx.runtime import OnnxRuntime
    from alexnet_export.runtimes.openvino.runtime import OpenVinoRuntime
    from alexnet_export.runtimes.registry import open_runtime
    from alexnet_export.runtimes.tensorrt.runtime import TensorRTRuntime
    from alexnet_export.runtimes.torch.runtime import TorchRuntime

__getattr__ = lazy_names(__name__, {
    "ExecuTorchRuntime": "executorch.runtime",
    "LiteRtRuntime": "litert.runtime",
    "NcnnRuntime": "ncnn.runtime",
    "OnnxRuntime": "onnx.runtime",
    "OpenVinoRuntime": "openvino.runtime",
    "TorchRuntime": "torch.runtime",
    "TensorRTRuntime": "tensorrt.runtime",
    "Runtime": "base",
    "open_runtime": "registry",
})
