"""`alexnet-export openvino`: a thin client of exporter.pipeline.export_openvino_ir."""

from __future__ import annotations

from pathlib import Path

import click

from alexnet_export.cli.options import (
    TerminalReporter,
    calibration_from,
    calibration_options,
    model_options,
    model_source,
    sign_key_option,
)
from alexnet_export.runtimes.table import OPENVINO

# The command's precision words -> the library's (models/precisions.py).
IR_PRECISIONS = OPENVINO.command_words()


@click.command("openvino")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The .xml to write; its weights go to the .bin beside it [default: alexnet.xml, alexnet.bf16.xml "
                   "or alexnet.int8.xml by --precision].")
@click.option("--precision", type=click.Choice(list(IR_PRECISIONS)), default="fp32", show_default=True,
              help="fp32; bf16: the IR says to run in BF16 and this toolkit's runtime does (needs a CPU with AVX512_BF16 or AMX); "
                   "int8: TensorRT-rule Q/DQ that OpenVINO's CPU plugin runs as INT8 (needs --calib-dir).")
@click.option("--onnx", "fp32_onnx", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Start from this FP32 ONNX (made by `alexnet-export onnx`) instead of exporting one.")
@model_options
@calibration_options
@sign_key_option
def openvino_command(output, precision, fp32_onnx, weights, num_classes, seed, opset, labels,
                     calib_dir, calib_count, calib_method, cache_dir, sign_key):
    """Make an OpenVINO IR (.xml + .bin) of the model, verified under OpenVINO before it is put in place.

    The IR carries the same metadata as the ONNX (labels, preprocessing, weights hash,
    precision). FP32 and INT8 IRs run in FP32 for their float parts on every CPU (OpenVINO would
    otherwise pick BF16 where the CPU has it); a BF16 IR runs in BF16 and refuses CPUs without it.
    Gates: FP32 as the ONNX export; BF16 cosine >= 0.9999 per image and top-1 agreement >= 99.5%;
    INT8 as every INT8 file. Needs `pip install 'alexnet-export[openvino]'`.

    \b
    Examples:
      alexnet-export openvino --weights checkpoint.pt                    # alexnet.xml + alexnet.bin
      alexnet-export openvino --onnx alexnet.onnx --precision bf16
      alexnet-export openvino --weights checkpoint.pt --precision int8 --calib-dir photos/
      alexnet-export openvino --onnx alexnet.onnx --sign-key private.pem     # + alexnet.xml.sig (covers the .bin)
    """
    from alexnet_export.exporter.pipeline import export_openvino_ir

    result = export_openvino_ir(output, model_source(weights, num_classes, seed, labels, fp32_onnx),
                                fp32_onnx=fp32_onnx, precision=IR_PRECISIONS[precision],
                                calibration=calibration_from(calib_dir, calib_count, calib_method, cache_dir),
                                opset=opset, sign_key=sign_key, on_event=TerminalReporter())
    size = result.path.stat().st_size + result.path.with_suffix(".bin").stat().st_size
    click.echo(f"wrote {result.path} and its .bin ({precision}, {size / 1e6:.1f} MB) in {result.seconds:.1f}s")
