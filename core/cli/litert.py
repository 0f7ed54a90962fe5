"""`alexnet-export litert`: a thin client of exporter.pipeline.export_litert."""

from __future__ import annotations

from pathlib import Path

import click

from alexnet_export.cli.options import (
    TerminalReporter,
    calibration_image_options,
    sign_key_option,
    source_options,
)
from alexnet_export.models.precisions import LITERT_FORMAT, command_words

# The command's precision words -> the library's (models/precisions.py).
TFLITE_PRECISIONS = command_words(LITERT_FORMAT)


@click.command("litert")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The .tflite to write; its sidecar JSON goes beside it as NAME.tflite.json [default: "
                   "alexnet.tflite, alexnet.fp16.tflite or alexnet.int8.tflite by --precision].")
@click.option("--precision", type=click.Choice(list(TFLITE_PRECISIONS)), default="fp32", show_default=True,
              help="fp32; fp16: FP16 weights (half the size; LiteRT's CPU kernels compute in FP32); int8: PyTorch's "
                   "PT2E quantization with litert-torch's quantizer (INT8 weights and activations), calibrated on "
                   "--calib-dir.")
@source_options
@calibration_image_options
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="The file's fixed batch (a phone app runs 1).")
@sign_key_option
def litert_command(output, precision, weights, num_classes, seed, labels, calib_dir, calib_count, batch, sign_key):
    """Make a LiteRT model (.tflite) for Android apps and ARM boards, with Google's litert-torch.

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
    """
    from alexnet_export.exporter.pipeline import CalibrationOptions, ModelSource, export_litert

    result = export_litert(output, ModelSource(weights, num_classes, seed, labels),
                           precision=TFLITE_PRECISIONS[precision],
                           calibration=CalibrationOptions(calib_dir, calib_count),
                           batch=batch, sign_key=sign_key, on_event=TerminalReporter())
    operators = sum(result.operators.values())
    click.echo(f"{result.path.name}: {operators} builtin operators, {result.layout} input")
    click.echo(f"wrote {result.path} and {result.sidecar.name} ({precision}, batch {batch},"
               f" {result.size_bytes / 1e6:.1f} MB) in {result.seconds:.1f}s")
