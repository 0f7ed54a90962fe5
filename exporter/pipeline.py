"""The toolkit's commands as library calls: one function per command, plain arguments, a result.

    export_onnx_file(...)      what `alexnet-export onnx` does: a verified .onnx in any precision
    make_precision_file(...)   an FP32 .onnx you have -> a verified FP16 or INT8 .onnx
    build_tensorrt_engine(...) what `alexnet-export trt` does: FP32 ONNX, precision ONNX, engine
    export_openvino_ir(...)    what `alexnet-export openvino` does: an IR in FP32, BF16 or INT8
    export_ort_file(...)       what `alexnet-export ort` does: a .onnx -> ONNX Runtime's mobile format
    export_executorch(...)     what `alexnet-export executorch` does: a .pte for XNNPACK, FP32 or INT8
    export_litert(...)         what `alexnet-export litert` does: a .tflite for LiteRT, FP32, FP16 or INT8

This module is the one place to import them from; each command's steps live in its own module
(exporter/command_*.py), the checks they share in exporter/arguments.py. Each step verifies its
file before it is put in place, so a failure leaves what was there before. Progress goes to
`on_event` (alexnet_export.events); nothing here prints.
"""

from alexnet_export.exporter.arguments import DEFAULT_STEM, PipelineError
from alexnet_export.exporter.command_litert import export_litert
from alexnet_export.exporter.command_mobile import export_executorch, export_ort_file
from alexnet_export.exporter.command_onnx import OnnxFile, export_onnx_file, make_precision_file
from alexnet_export.exporter.command_openvino import IrFile, export_openvino_ir
from alexnet_export.exporter.command_tensorrt import DEFAULT_ENGINE, EngineBuild, build_tensorrt_engine
from alexnet_export.exporter.source import ModelSource, load_model
from alexnet_export.exporter.variants import CalibrationOptions

__all__ = ["DEFAULT_ENGINE", "DEFAULT_STEM", "CalibrationOptions", "EngineBuild", "IrFile", "ModelSource", "OnnxFile",
           "PipelineError", "build_tensorrt_engine", "export_executorch", "export_litert", "export_onnx_file",
           "export_openvino_ir", "export_ort_file", "load_model", "make_precision_file"]
