"""`alexnet-export executorch` as data (exporter/commands.py): the CLI and `optimize` are made from it."""

from alexnet_export.exporter.commands import ExportCommand, SizeOption

DEFAULT_MAX_BATCH = 32
MAX_BATCH_LIMIT = 1024  # memory is planned for the largest batch: about 4 MB of activations per image
COMMAND = ExportCommand(
    name="executorch", extension="pte",
    call="alexnet_export.exporter.executorch.command:export_executorch",
    summary="alexnet_export.exporter.executorch.command:summary",
    help="""Make an ExecuTorch program (.pte) for the XNNPACK delegate: phones, boards and CPUs.

    The whole network runs in XNNPACK (the command reports any operator that does not). The
    .pte carries no labels or preprocessing, so they go to NAME.pte.json beside it, which
    `predict`, `verify`, `bench` and `serve` read. Both files are written only after ExecuTorch
    has run the program against eager PyTorch on the exporter's images (INT8: on held-out
    calibration-folder images, the ones the ONNX INT8 files use) and it passed its precision's
    gate. LRN is rewritten for the export in operators XNNPACK has (docs/executorch.md). Needs
    `pip install 'alexnet-export[executorch]'`.

    \b
    Examples:
      alexnet-export executorch --weights checkpoint.pt                       # alexnet.pte + alexnet.pte.json
      alexnet-export executorch --weights checkpoint.pt --precision int8 --calib-dir photos/   # alexnet.int8.pte
      alexnet-export executorch --weights checkpoint.pt --max-batch 1 -o phone.pte
      alexnet-export predict alexnet.int8.pte cat.jpg
      alexnet-export bench alexnet.pte alexnet.int8.pte alexnet.onnx alexnet.int8-cpu.onnx --batch-sizes 1
    """,
    output_help="The .pte to write; its sidecar JSON goes beside it as NAME.pte.json [default: alexnet.pte or "
                "alexnet.int8.pte by --precision].",
    precision_help="fp32; int8: PyTorch's PT2E quantization with XNNPACK's quantizer (symmetric INT8, per-channel "
                   "weights), calibrated on --calib-dir.",
    options=(SizeOption("max_batch", DEFAULT_MAX_BATCH, MAX_BATCH_LIMIT, "The largest batch the program takes (1..N); memory is planned for it,"
                        " about 4 MB per image.", "max_batch"),),
    needs=("executorch",),
)
