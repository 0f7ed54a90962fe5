"""The toolkit's commands as library calls: one function per command, plain arguments, a result.

    export_onnx_file(...)      what `alexnet-export onnx` does: a verified .onnx in any precision
    make_precision_file(...)   an FP32 .onnx you have -> a verified FP16 or INT8 .onnx
    build_tensorrt_engine(...) what `alexnet-export trt` does: FP32 ONNX, precision ONNX, engine
    export_openvino_ir(...)    what `alexnet-export openvino` does: an IR in FP32, BF16 or INT8
    export_ort_file(...)       what `alexnet-export ort` does: a .onnx -> ONNX Runtime's mobile format
    export_executorch(...)     what `alexnet-export executorch` does: a .pte for XNNPACK, FP32 or INT8
    export_litert(...)         what `alexnet-export litert` does: a .tflite for LiteRT, FP32, FP16 or INT8
    export_ncnn(...)           what `alexnet-export ncnn` does: an ncnn pair for ARM boards, FP32, FP16 or INT8

The one place to import them from: each is found in its backend's package (exporter/<backend>/command.py)
when first asked for, so importing this module imports no backend's library. Each step verifies its file
before it is put in place, so a failure leaves what was there before. Progress goes to `on_event`
(alexnet_export.events); nothing here prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alexnet_export.extras import require_export
from alexnet_export.lazy import lazy_names

if TYPE_CHECKING:
    from alexnet_export.exporter.arguments import DEFAULT_STEM, PipelineError
    from alexnet_export.exporter.calibration.images import CalibrationOptions
    from alexnet_export.exporter.executorch.command import export_executorch
    from alexnet_export.exporter.litert.command import export_litert
    from alexnet_export.exporter.ncnn.command import export_ncnn
    from alexnet_export.exporter.onnx.command import OnnxFile, export_onnx_file, make_precision_file
    from alexnet_export.exporter.onnx.ort_format import export_ort_file
    from alexnet_export.exporter.openvino.command import IrFile, export_openvino_ir
    from alexnet_export.exporter.source import ModelSource, load_model
    from alexnet_export.exporter.tensorrt.command import DEFAULT_ENGINE, EngineBuild, build_tensorrt_engine

_HOMES = {
    "DEFAULT_STEM": "arguments", "PipelineError": "arguments", "CalibrationOptions": "calibration.images",
    "ModelSource": "source", "load_model": "source",
    "OnnxFile": "onnx.command", "export_onnx_file": "onnx.command", "make_precision_file": "onnx.command",
    "export_ort_file": "onnx.ort_format", "IrFile": "openvino.command", "export_openvino_ir": "openvino.command",
    "DEFAULT_ENGINE": "tensorrt.command", "EngineBuild": "tensorrt.command", "build_tensorrt_engine": "tensorrt.command",
    "export_executorch": "executorch.command", "export_litert": "litert.command", "export_ncnn": "ncnn.command",
}
__all__ = ["DEFAULT_ENGINE", "DEFAULT_STEM", "CalibrationOptions", "EngineBuild", "IrFile", "ModelSource", "OnnxFile",
           "PipelineError", "build_tensorrt_engine", "export_executorch", "export_litert", "export_ncnn", "export_onnx_file",
           "export_openvino_ir", "export_ort_file", "load_model", "make_precision_file"]
__getattr__ = lazy_names(__name__, _HOMES, base="alexnet_export.exporter", before=require_export)
