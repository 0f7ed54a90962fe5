"""`alexnet-export executorch`: a thin client of exporter.pipeline.export_executorch."""

from __future__ import annotations

from pathlib import Path

import click

from alexnet_export.cli.options import (
    TerminalReporter,
    calibration_image_options,
    sign_key_option,
    source_options,
)
from alexnet_export.models.precisions import EXECUTORCH_FORMAT, command_words

# The command's precision words -> the library's (models/precisions.py).
PTE_PRECISIONS = command_words(EXECUTORCH_FORMAT)


@click.command("executorch")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The .pte to write; its sidecar JSON goes beside it as NAME.pte.json [default: alexnet.pte or "
                   "alexnet.int8.pte by --precision].")
@click.option("--precision", type=click.Choice(list(PTE_PRECISIONS)), default="fp32", show_default=True,
              help="fp32; int8: PyTorch's PT2E quantization with XNNPACK's quantizer (symmetric INT8, per-channel "
                   "weights), calibrated on --calib-dir.")
@source_options
@calibration_image_options
@click.option("--max-batch", type=click.IntRange(min=1), default=32, show_default=True,
              help="The largest batch the program takes (1..N); memory is planned for it, about 4 MB per image.")
@sign_key_option
def executorch_command(output, precision, weights, num_classes, seed, labels, calib_dir, calib_count, max_batch,
                       sign_key):
    """Make an ExecuTorch program (.pte) for the XNNPACK delegate: phones, boards and CPUs.

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
    """
    from alexnet_export.exporter.pipeline import CalibrationOptions, ModelSource, export_executorch

    result = export_executorch(output, ModelSource(weights, num_classes, seed, labels),
                               precision=PTE_PRECISIONS[precision],
                               calibration=CalibrationOptions(calib_dir, calib_count),
                               max_batch=max_batch, sign_key=sign_key, on_event=TerminalReporter())
    click.echo(f"{result.path.name}: {result.delegation.describe()}")
    click.echo(f"wrote {result.path} and {result.sidecar.name} ({precision}, batch 1..{max_batch},"
               f" {result.size_bytes / 1e6:.1f} MB) in {result.seconds:.1f}s")
