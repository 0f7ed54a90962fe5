"""`alexnet-export onnx` and `alexnet-export trt`: thin clients of the exporter functions."""

from __future__ import annotations

from pathlib import Path

import click

from alexnet_export.cli.options import (
    TerminalReporter,
    calibration_from,
    calibration_options,
    float_layer_options,
    int8_gate_in_flags,
    model_options,
    model_source,
    print_layer_search,
    sign_key_option,
)
from alexnet_export.runtimes.table import ENGINE, ONNX

# Each command's precision words -> the library's (models/precisions.py).
ONNX_PRECISIONS = ONNX.command_words()
TRT_PRECISIONS = ENGINE.command_words()


class _BatchType(click.ParamType):
    name = "dynamic|N"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int) or value == "dynamic":
            return value
        try:
            size = int(value)
        except ValueError:
            size = 0
        if size < 1:
            self.fail(f"{value!r} is neither 'dynamic' nor a positive integer", param, ctx)
        return size


input_format_option = click.option(
    "--input-format", type=click.Choice(["float32", "uint8"]), default="float32", show_default=True,
    help="float32: normalised float32 N x 3 x 224 x 224, the app preprocesses. uint8: decoded RGB pixels "
         "N x 224 x 224 x 3 after the app's resize and centre crop; the graph scales and normalises them "
         "(the ONNX is named alexnet[.PRECISION].uint8.onnx; works with every precision).")


@click.command("onnx")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the .onnx file (replaced atomically) [default: alexnet.onnx, alexnet.fp16.onnx, "
                   "alexnet.int8-cpu.onnx, alexnet.int8-tensorrt.onnx or alexnet.int4.onnx by --precision].")
@model_options
@click.option("--batch", type=_BatchType(), default="dynamic", show_default=True,
              help="'dynamic' batch dimension, or a fixed batch size N.")
@click.option("--precision", type=click.Choice(list(ONNX_PRECISIONS)), default="fp32", show_default=True,
              help="fp16: FP16 with FP32 I/O and LRN; int8: the INT8 file ONNX Runtime runs fastest on CPUs; "
                   "int8-tensorrt: the Q/DQ file TensorRT builds INT8 engines from (what `trt --int8` builds; "
                   "made here without TensorRT). Both INT8 need --calib-dir. int4: fc6-fc8 weights in 4 bits, blocks "
                   "of 16 (ONNX Runtime's MatMulNBits, CPU), convolutions FP32; nothing to calibrate: with --calib-dir its "
                   "gate runs on those images (top-1 on clear margins), else on generated ones.")
@calibration_options
@float_layer_options
@click.option("--lrn", type=click.Choice(["native", "pooled"]), default="native", show_default=True,
              help="FP32 only. native: one ONNX LRN node each (TensorRT maps it). pooled: the same formula "
                   "in plain ops, about 15% faster on ONNX Runtime's CPU provider at batch 16.")
@input_format_option
@click.option("--no-verify", is_flag=True, help="Skip the FP32 eager-vs-ONNX Runtime parity check.")
@sign_key_option
def onnx_command(output, weights, num_classes, seed, opset, labels, batch, precision, calib_dir, calib_count,
                 calib_method, cache_dir, keep_float, auto_keep_float, lrn, input_format, no_verify, sign_key):
    """Export the seed AlexNet to one self-contained, self-describing ONNX file.

    The file has input `images` (float32, N x 3 x 224 x 224, normalised RGB) and output
    `logits`, each LRN as one native ONNX node, and carries its preprocessing, labels, weights
    hash and tool versions. Unless --no-verify, ONNX Runtime's logits are compared with eager
    PyTorch's before the file is put in place; a failed check leaves no file. FP16 and INT8
    files are always checked against the FP32 model (INT8 on held-out calibration images).

    \b
    Examples:
      alexnet-export onnx --weights checkpoint.pt -o alexnet.onnx
      alexnet-export onnx --weights model.safetensors --labels classes.txt --batch 8
      alexnet-export onnx --weights checkpoint.pt --precision int8 --calib-dir photos/     # alexnet.int8-cpu.onnx
      alexnet-export onnx --weights checkpoint.pt --precision int8-tensorrt --calib-dir photos/
      alexnet-export onnx --weights checkpoint.pt --precision int8 --calib-dir photos/ --keep-float conv4,fc8
      alexnet-export onnx --weights checkpoint.pt --precision int8 --calib-dir photos/ --auto-keep-float
      alexnet-export onnx --weights checkpoint.pt --lrn pooled -o alexnet.cpu.onnx
      alexnet-export onnx --weights checkpoint.pt --input-format uint8    # alexnet.uint8.onnx: pixels in
      alexnet-export onnx --num-classes 10 --seed 3 -o random10.onnx
      alexnet-export onnx --weights checkpoint.pt --sign-key private.pem          # + alexnet.onnx.sig
    """
    from alexnet_export.exporter.pipeline import export_onnx_file

    with int8_gate_in_flags():
        result = export_onnx_file(output, model_source(weights, num_classes, seed, labels),
                                  precision=ONNX_PRECISIONS[precision],
                                  calibration=calibration_from(calib_dir, calib_count, calib_method, cache_dir),
                                  opset=opset, batch=None if batch == "dynamic" else batch, lrn=lrn,
                                  verify=not no_verify, keep_float=keep_float, auto_keep_float=auto_keep_float,
                                  input_format=input_format, sign_key=sign_key, on_event=TerminalReporter())
    print_layer_search(result.variant)
    click.echo(f"wrote {result.path} ({precision}, {result.size_bytes / 1e6:.1f} MB, {result.num_classes} classes) "
               f"in {result.seconds:.1f}s")


def _compute_capabilities(ctx, param, value) -> tuple[str, ...]:
    """Click callback: "8.6,8.9,12.0" -> ("8.6", "8.9", "12.0")."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@click.command("trt")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default="alexnet.engine",
              show_default=True, help="Engine to write; its sidecar JSON and precision ONNX go beside it.")
@click.option("--fp16", "precision", flag_value="fp16", help="FP16 engine (from an FP16 ONNX).")
@click.option("--int8", "precision", flag_value="int8", help="INT8 engine (from a calibrated Q/DQ ONNX; needs --calib-dir).")
@click.option("--onnx", "fp32_onnx", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Start from this FP32 ONNX (made by `alexnet-export onnx`) instead of exporting one.")
@model_options
@calibration_options
@float_layer_options
@click.option("--min-batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--opt-batch", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--max-batch", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--workspace", type=click.IntRange(min=16), default=1024, show_default=True, help="Builder workspace, MiB.")
@click.option("--timing-cache", type=click.Path(dir_okay=False, path_type=Path),
              help="TensorRT timing cache, reused and updated (default: beside the engine). TensorRT for RTX has "
                   "none: NVIDIA made its timing-cache calls no-ops.")
@click.option("--builder", type=click.Choice(["tensorrt", "tensorrt-rtx"]),
              help="tensorrt: builds on and for the NVIDIA GPU here. tensorrt-rtx: TensorRT for RTX, builds ahead "
                   "of time on any machine, no GPU needed, for --compute-capability [default: tensorrt if "
                   "installed, else tensorrt-rtx].")
@click.option("--compute-capability", "compute_capabilities", callback=_compute_capabilities, metavar="LIST",
              help="TensorRT for RTX: the GPUs the engine runs on, e.g. 8.6,8.9,12.0 (RTX 30, 40, 50 series) "
                   "[default: the builder's own set, every compute capability it knows but Turing's 7.5].")
@click.option("--hardware-compatibility", type=click.Choice(["none", "ampere+", "same-compute-capability"]),
              default="none", show_default=True,
              help="TensorRT: none runs on the GPU model it was built on; ampere+ on every Ampere or newer GPU; "
                   "same-compute-capability on GPUs of the build GPU's compute capability. Wider is slower.")
@click.option("--version-compatible", is_flag=True,
              help="TensorRT: the engine also runs with later TensorRT releases of the same major version "
                   "(and 10's with 11); it carries TensorRT's lean runtime.")
@input_format_option
@sign_key_option
def trt_command(output, precision, fp32_onnx, weights, num_classes, seed, opset, labels, calib_dir, calib_count,
                calib_method, cache_dir, keep_float, auto_keep_float, min_batch, opt_batch, max_batch, workspace,
                timing_cache, builder, compute_capabilities, hardware_compatibility, version_compatible, input_format,
                sign_key):
    """Build a TensorRT engine: export, make the precision ONNX, verify it on the CPU, build.

    TensorRT 10 and 11 and TensorRT for RTX build strongly typed networks: the precision is in
    the ONNX (FP16 tensors, or INT8 QuantizeLinear/DequantizeLinear with TensorRT's rules), so
    the file that decides the numbers is made and checked here with ONNX Runtime, and kept beside
    the engine (alexnet.fp16.onnx / alexnet.int8-tensorrt.onnx for -o alexnet.engine).

    TensorRT for RTX (`pip install 'alexnet-export[tensorrt-rtx]'`) builds on any machine, no GPU
    and no cuda-python needed, an engine for the compute capabilities it targets (not 9.0: H100
    and H200 need TensorRT). TensorRT (`pip install 'alexnet-export[trt]'`) builds on the NVIDIA
    GPU here. Without either, the command stops after the verified ONNX with an error that says
    so. The sidecar (alexnet.engine.json) records the builder, the GPUs the engine targets, the
    batch profile, input and source ONNX; engines refuse, before loading, a GPU or builder release
    they were not made for. `alexnet-export inspect` shows each layer's precision.

    \b
    Examples:
      alexnet-export trt --int8 --weights checkpoint.pt --calib-dir photos/ -o alexnet.engine
      alexnet-export trt --int8 --weights checkpoint.pt --calib-dir photos/ --keep-float conv4
      alexnet-export trt --fp16 --onnx alexnet.onnx --max-batch 64
      alexnet-export trt --fp16 --onnx alexnet.onnx --input-format uint8     # the engine takes uint8 pixels
      alexnet-export trt --onnx alexnet.onnx --builder tensorrt-rtx --compute-capability 8.6,8.9
      alexnet-export trt --onnx alexnet.onnx --builder tensorrt --hardware-compatibility ampere+
      alexnet-export trt --weights checkpoint.pt --min-batch 1 --opt-batch 16 --max-batch 16
      alexnet-export trt --fp16 --onnx alexnet.onnx --sign-key private.pem   # signs the engine and its ONNX
    """
    from alexnet_export.exporter.pipeline import build_tensorrt_engine
    from alexnet_export.exporter.tensorrt.settings import BuildSettings

    precision = precision or "fp32"
    settings = BuildSettings(min_batch, opt_batch, max_batch, workspace, builder, compute_capabilities,
                             hardware_compatibility, version_compatible)
    with int8_gate_in_flags():
        result = build_tensorrt_engine(output, model_source(weights, num_classes, seed, labels, fp32_onnx),
                                       fp32_onnx=fp32_onnx, precision=TRT_PRECISIONS[precision],
                                       calibration=calibration_from(calib_dir, calib_count, calib_method, cache_dir),
                                       settings=settings, timing_cache=timing_cache, opset=opset,
                                       keep_float=keep_float, auto_keep_float=auto_keep_float,
                                       input_format=input_format, sign_key=sign_key,
                                       on_event=TerminalReporter())
    print_layer_search(result.variant)
    engine = result.engine
    where = f"on {engine.built_on.name}" if engine.built_on else "ahead of time"
    click.echo(f"wrote {engine.path} ({precision}, batch {min_batch}..{max_batch}, {engine.size_bytes / 1e6:.1f} MB)"
               f" for {engine.targets.describe()}, built {where} by {engine.builder} in {result.seconds:.1f}s")


@click.command("ort")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The .ort to write (replaced atomically) [default: beside SOURCE, alexnet.onnx -> alexnet.ort].")
@sign_key_option
def ort_command(source, output, sign_key):
    """Convert a .onnx of any precision to ONNX Runtime's format (.ort), for ONNX Runtime Mobile.

    Phones and minimal ONNX Runtime builds load .ort files, not .onnx. The converter is
    onnxruntime's own (the graph optimized once, for any CPU); beside the .ort it writes
    NAME.required_operators.config, the operators a reduced-size ONNX Runtime build must
    include (build.py --include_ops_by_config). The .ort is checked against SOURCE on
    photo-like images before either file is put in place, and keeps its labels and
    preprocessing, so predict, verify, bench and serve open it like any model file.

    \b
    Examples:
      alexnet-export ort alexnet.onnx                       # alexnet.ort + alexnet.required_operators.config
      alexnet-export ort alexnet.int8-cpu.onnx -o app/model.ort
    """
    from alexnet_export.exporter.pipeline import export_ort_file

    result = export_ort_file(source, output, sign_key=sign_key, on_event=TerminalReporter())
    click.echo(f"wrote {result.path} ({result.precision}, {result.size_bytes / 1e6:.1f} MB; the .onnx was"
               f" {result.source_bytes / 1e6:.1f} MB) and {result.config.name}")
