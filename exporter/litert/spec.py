"""`alexnet-export litert` as data (exporter/commands.py): the CLI and `optimize` are made from it."""

from alexnet_export.exporter.commands import ExportCommand, SizeOption

MAX_BATCH_LIMIT = 64  # the largest fixed batch a .tflite is made at (export_litert checks it)
COMMAND = ExportCommand(
    name="litert", extension="tflite",
    call="alexnet_export.exporter.litert.command:export_litert",
    summary="alexnet_export.exporter.litert.command:summary",
    help="""Make a LiteRT model (.tflite) for Android apps and ARM boards, with Google's litert-torch.

    The file holds LiteRT builtin operators only (no StableHLO, custom or Flex ops: LRN is
    rewritten for the export, docs/litert.md) and takes NHWC input. Labels and preprocessing go
    to NAME.tflite.json beside it, which `predict`, `verify`, `bench` and `serve` read. Both
    files are written only after LiteRT's interpreter has run the file against eager PyTorch on
    the exporter's images (INT8: on held-out calibration-folder images, the ones the ONNX INT8
    files use) and it passed its precision's gate. Needs `pip install 'alexnet-export[litert-export]'`
    (running the file needs the `litert` extra only).

    \b
    Examples:
      alexnet-export litert --weights checkpoint.pt                                # alexnet.tflite + .json
      alexnet-export litert --weights checkpoint.pt --precision int8 --calib-dir photos/   # alexnet.int8.tflite
      alexnet-export predict alexnet.int8.tflite cat.jpg
      alexnet-export verify alexnet.int8.tflite --images photos/ --on aarch64
    """,
    output_help="The .tflite to write; its sidecar JSON goes beside it as NAME.tflite.json [default: "
                "alexnet.tflite, alexnet.fp16.tflite or alexnet.int8.tflite by --precision].",
    precision_help="fp32; fp16: FP16 weights (half the size; LiteRT's CPU kernels compute in FP32); int8: PyTorch's "
                   "PT2E quantization with litert-torch's quantizer (INT8 weights and activations), calibrated on "
                   "--calib-dir.",
    options=(SizeOption("batch", 1, MAX_BATCH_LIMIT, "The file's fixed batch (a phone app runs 1).", "batch"),),
    needs=("litert_torch", "ai_edge_litert"),
)
