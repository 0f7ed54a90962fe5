"""`alexnet-export inspect`: a thin client of exporter.inspect_engine.inspect_model."""

from __future__ import annotations

import json
from pathlib import Path

import click

from alexnet_export.cli.options import TerminalReporter


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--builder", type=click.Choice(["tensorrt", "tensorrt-rtx"]),
              help="For an .onnx: whose parser reads it [default: the one `trt` uses: TensorRT if installed, "
                   "else TensorRT for RTX]. An engine is read with the builder that made it.")
def inspect_command(model, as_json, builder):
    """Show what TensorRT will compute each layer in, before any GPU.

    MODEL is an .onnx (the profile and targets shown are `trt`'s defaults) or an engine (its
    sidecar's, and its source ONNX, which must be unchanged since the build). The file is parsed
    into TensorRT's strongly typed network and read per layer by the toolkit's names: a Conv or
    Gemm fed through INT8 Q/DQ runs in INT8, every other layer in the type it reads (the FP16
    file's LRN in FP32, an INT8 file's pools, LRN and --keep-float layers in FP32). Needs a
    builder (`pip install 'alexnet-export[tensorrt-rtx]'` works on any machine), no GPU.

    \b
    Examples:
      alexnet-export inspect alexnet.int8-tensorrt.onnx
      alexnet-export inspect alexnet.engine --json
    """
    from alexnet_export.exporter.tensorrt.inspect import inspect_model

    if not model.is_file():
        raise click.BadParameter(f"{model} does not exist or is not a file", param_hint="MODEL")
    result = inspect_model(model, builder=builder, on_event=TerminalReporter())
    click.echo(json.dumps(result.to_json(), indent=2) if as_json else result.table())
