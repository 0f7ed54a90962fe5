"""`alexnet-export ncnn` as data (exporter/commands.py): the CLI and `optimize` are made from it."""

from alexnet_export.exporter.commands import ExportCommand

COMMAND = ExportCommand(
    name="ncnn", extension="ncnn.param",
    call="alexnet_export.exporter.ncnn.command:export_ncnn",
    summary="alexnet_export.exporter.ncnn.command:summary",
    help="""Make an ncnn model (.ncnn.param + .ncnn.bin) for ARM boards and Android apps.

    The toolkit writes ncnn's format itself (no pnnx, no C++ tools): both LRNs are ncnn's own LRN
    layer, the grouped convolutions ncnn's ConvolutionDepthWise. Labels and preprocessing go to
    NAME.ncnn.param.json beside it, which `predict`, `verify`, `bench` and `serve` read. The three
    files are written only after ncnn has run the model against eager PyTorch on the exporter's
    images (INT8: on held-out calibration-folder images, the ones the ONNX INT8 files use) and it
    passed its precision's gate. Running the files needs `pip install 'alexnet-export[ncnn]'`
    (numpy and ncnn, no torch); an app needs only ncnn itself (docs/ncnn.md).

    \b
    Examples:
      alexnet-export ncnn --weights checkpoint.pt                                 # alexnet.ncnn.param + .bin + .json
      alexnet-export ncnn --weights checkpoint.pt --precision int8 --calib-dir photos/   # alexnet.int8.ncnn.param
      alexnet-export predict alexnet.int8.ncnn.param cat.jpg
      alexnet-export verify alexnet.int8.ncnn.param --images photos/ --on aarch64
    """,
    output_help="The .ncnn.param to write; the weights go beside it as NAME.ncnn.bin, the sidecar JSON as "
                "NAME.ncnn.param.json [default: alexnet.ncnn.param, alexnet.fp16.ncnn.param or "
                "alexnet.int8.ncnn.param by --precision].",
    precision_help="fp32; fp16: FP16 weights (half the size); int8: INT8 weights with per-channel scales and "
                   "input scales calibrated on --calib-dir (the ranges the ONNX INT8 files use), run by ncnn's "
                   "INT8 kernels.",
    needs=("ncnn",),
)
