"""`alexnet-export onnx` and `alexnet-export trt`: thin clients of the exporter functions."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

from alexnet_export.cli_options import ProgressLine, calibration_options, model_options, say, warn

# --precision choice -> the precision make_variant writes.
ONNX_PRECISIONS = {"fp32": "fp32", "fp16": "fp16", "int8": "int8-cpu", "int8-tensorrt": "int8-tensorrt"}


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


def _load_model(weights, num_classes, seed, labels):
    """The eager model and the metadata its files will carry."""
    from alexnet_export.exporter.onnx import tool_versions
    from alexnet_export.models.labels import read_labels_file
    from alexnet_export.models.spec import ArtifactMetadata, default_labels
    from alexnet_export.models.weights import load_alexnet

    say(f"loading {'weights from ' + str(weights) if weights else 'random weights'}")
    loaded = load_alexnet(weights, num_classes=num_classes, seed=seed)
    if loaded.random_init:
        warn(f"warning: no --weights given: this AlexNet has random weights (seed {seed}); "
             "its predictions are meaningless.")
    classes = loaded.model.num_classes
    try:
        names = read_labels_file(labels, classes) if labels else default_labels(classes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--labels") from None
    return loaded.model, ArtifactMetadata(classes, names, loaded.source, tool_versions=tool_versions())


def _export_fp32(model, metadata, output: Path, opset: int, batch, verify: bool, lrn: str = "native"):
    from alexnet_export.exporter.onnx import export_onnx

    result = export_onnx(model, output, metadata, opset=opset, batch=batch, verify=verify, lrn=lrn, progress=say)
    if result.report is not None:
        click.echo("parity, eager PyTorch vs ONNX Runtime FP32 (CPU):")
        click.echo(result.report.table())
    else:
        warn("warning: --no-verify: the file was not compared with PyTorch.")
    return result


def _make_variant(fp32_path: Path, precision: str, output: Path, reference, preprocessing,
                  calib_dir, calib_count, calib_method, cache_dir):
    from alexnet_export.exporter.variants import CalibrationOptions, make_variant

    options = CalibrationOptions(calib_dir, calib_count, calib_method, cache_dir)
    result = make_variant(fp32_path, precision, output, reference, options, preprocessing, say=say, progress=ProgressLine)
    for note in result.notes:
        warn(note)
    click.echo(f"parity, FP32 reference vs {precision} ONNX Runtime (CPU), on {result.verified_on}:")
    click.echo(result.report.table())
    return result


@click.command("onnx")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default="alexnet.onnx",
              show_default=True, help="Where to write the .onnx file (replaced atomically).")
@model_options
@click.option("--batch", type=_BatchType(), default="dynamic", show_default=True,
              help="'dynamic' batch dimension, or a fixed batch size N.")
@click.option("--precision", type=click.Choice(list(ONNX_PRECISIONS)), default="fp32", show_default=True,
              help="fp16: FP16 with FP32 I/O and LRN; int8: the INT8 file ONNX Runtime runs fastest on CPUs; "
                   "int8-tensorrt: the Q/DQ file TensorRT builds INT8 engines from (what `trt --int8` builds; "
                   "made here without TensorRT). Both INT8 need --calib-dir.")
@calibration_options
@click.option("--lrn", type=click.Choice(["native", "pooled"]), default="native", show_default=True,
              help="FP32 only. native: one ONNX LRN node each (TensorRT maps it). pooled: the same formula "
                   "in plain ops, about 15% faster on ONNX Runtime's CPU provider at batch 16.")
@click.option("--no-verify", is_flag=True, help="Skip the FP32 eager-vs-ONNX Runtime parity check.")
def onnx_command(output, weights, num_classes, seed, opset, labels, batch, precision,
                 calib_dir, calib_count, calib_method, cache_dir, lrn, no_verify):
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
      alexnet-export onnx --weights checkpoint.pt --precision int8 --calib-dir photos/ -o alexnet.int8.onnx
      alexnet-export onnx --weights checkpoint.pt --precision int8-tensorrt --calib-dir photos/ -o alexnet.trt-int8.onnx
      alexnet-export onnx --weights checkpoint.pt --lrn pooled -o alexnet.cpu.onnx
      alexnet-export onnx --num-classes 10 --seed 3 -o random10.onnx
    """
    from alexnet_export.runtimes.torch import TorchRuntime

    started = time.perf_counter()
    if precision.startswith("int8") and calib_dir is None:
        raise click.UsageError(f"--precision {precision} needs --calib-dir DIR (a folder of 64 or more images)")
    if lrn == "pooled" and precision != "fp32":
        raise click.UsageError("--lrn pooled applies to FP32 only: FP16 keeps each LRN native and in FP32,"
                               " and the INT8 CPU file always uses the pooled form")
    model, metadata = _load_model(weights, num_classes, seed, labels)
    fixed_batch = None if batch == "dynamic" else batch
    if precision == "fp32":
        result = _export_fp32(model, metadata, output, opset, fixed_batch, not no_verify, lrn)
        path, size = result.path, result.size_bytes
    else:
        # The FP32 file is a step on the way; export is deterministic, so the calibration
        # cache (keyed by its hash) still hits on a re-run.
        with tempfile.TemporaryDirectory(prefix=".alexnet-export-", dir=output.parent if output.parent.is_dir() else None) as scratch:
            fp32 = _export_fp32(model, metadata, Path(scratch) / "fp32.onnx", opset, fixed_batch, not no_verify).path
            variant = _make_variant(fp32, ONNX_PRECISIONS[precision], output, TorchRuntime(model),
                                    metadata.preprocessing, calib_dir, calib_count, calib_method, cache_dir)
        path, size = variant.path, variant.path.stat().st_size
    click.echo(f"wrote {path} ({precision}, {size / 1e6:.1f} MB, {metadata.num_classes} classes) "
               f"in {time.perf_counter() - started:.1f}s")


def _precision_onnx_path(engine: Path, precision: str) -> Path:
    """alexnet.engine -> alexnet.onnx (fp32), alexnet.fp16.onnx, alexnet.int8.onnx."""
    suffix = "" if precision == "fp32" else f".{precision}"
    return engine.with_name(f"{engine.stem}{suffix}.onnx")


@click.command("trt")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default="alexnet.engine",
              show_default=True, help="Engine to write; its sidecar JSON and precision ONNX go beside it.")
@click.option("--fp16", "precision", flag_value="fp16", help="FP16 engine (from an FP16 ONNX).")
@click.option("--int8", "precision", flag_value="int8", help="INT8 engine (from a calibrated Q/DQ ONNX; needs --calib-dir).")
@click.option("--onnx", "fp32_onnx", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Start from this FP32 ONNX (made by `alexnet-export onnx`) instead of exporting one.")
@model_options
@calibration_options
@click.option("--min-batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--opt-batch", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--max-batch", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--workspace", type=click.IntRange(min=16), default=1024, show_default=True, help="Builder workspace, MiB.")
@click.option("--timing-cache", type=click.Path(dir_okay=False, path_type=Path),
              help="TensorRT timing cache, reused and updated (default: beside the engine).")
def trt_command(output, precision, fp32_onnx, weights, num_classes, seed, opset, labels,
                calib_dir, calib_count, calib_method, cache_dir, min_batch, opt_batch, max_batch, workspace, timing_cache):
    """Build a TensorRT engine: export, make the precision ONNX, verify it on the CPU, build.

    TensorRT 10 and 11 build strongly typed networks: the precision is in the ONNX (FP16
    tensors, or INT8 QuantizeLinear/DequantizeLinear with TensorRT's rules), so the file that
    decides the numbers is made and checked here with ONNX Runtime, and kept beside the engine
    (alexnet.fp16.onnx / alexnet.int8.onnx for -o alexnet.engine). The build itself needs
    TensorRT and an NVIDIA GPU (`pip install 'alexnet-export[trt]'`); without them the command
    stops after the verified ONNX with an error that says so.

    \b
    Examples:
      alexnet-export trt --int8 --weights checkpoint.pt --calib-dir photos/ -o alexnet.engine
      alexnet-export trt --fp16 --onnx alexnet.onnx --max-batch 64
      alexnet-export trt --weights checkpoint.pt --min-batch 1 --opt-batch 16 --max-batch 16
    """
    from alexnet_export.exporter.tensorrt import BuildSettings, build_engine
    from alexnet_export.runtimes.tensorrt_support import TensorRTUnavailable, import_tensorrt

    started = time.perf_counter()
    precision = precision or "fp32"
    if precision == "int8" and calib_dir is None:
        raise click.UsageError("--int8 needs --calib-dir DIR (a folder of 64 or more images)")
    try:
        settings = BuildSettings(min_batch, opt_batch, max_batch, workspace)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not output.parent.is_dir():
        raise click.UsageError(f"output folder {output.parent} does not exist")
    fp32_path, reference, preprocessing = _fp32_source(output, fp32_onnx, weights, num_classes, seed, opset, labels)
    precision_path = fp32_path
    if precision != "fp32":
        precision_path = _precision_onnx_path(output, precision)
        onnx_precision = "int8-tensorrt" if precision == "int8" else "fp16"
        _make_variant(fp32_path, onnx_precision, precision_path, reference, preprocessing,
                      calib_dir, calib_count, calib_method, cache_dir)
    say(f"{precision.upper()} ONNX for TensorRT, verified: {precision_path}")
    try:
        import_tensorrt()
    except TensorRTUnavailable as exc:
        raise click.ClickException(f"{exc}; the verified {precision.upper()} ONNX is at {precision_path}") from None
    engine = build_engine(precision_path, output, precision="int8-tensorrt" if precision == "int8" else precision,
                          settings=settings,
                          timing_cache_path=timing_cache or output.with_suffix(".timing.cache"),
                          metadata_props=_metadata_props(precision_path), progress=say)
    click.echo(f"wrote {engine} ({precision}, batch {min_batch}..{max_batch}) in {time.perf_counter() - started:.1f}s")


def _fp32_source(output, fp32_onnx, weights, num_classes, seed, opset, labels):
    """The FP32 ONNX to start from, the reference to verify against, and the preprocessing."""
    from alexnet_export.runtimes.onnx import OnnxRuntime
    from alexnet_export.runtimes.torch import TorchRuntime

    if fp32_onnx is not None:
        if weights is not None or num_classes is not None or labels is not None:
            raise click.UsageError("--onnx already holds the model: leave out --weights, --num-classes and --labels")
        _require_fp32(fp32_onnx)
        reference = OnnxRuntime(fp32_onnx, providers=["CPUExecutionProvider"])
        if reference.bounds.maximum is not None:
            raise click.UsageError(f"{fp32_onnx} has a fixed batch of {reference.bounds.maximum}; "
                                   "export it with --batch dynamic for an engine with a batch range")
        return fp32_onnx, reference, reference.metadata.preprocessing
    model, metadata = _load_model(weights, num_classes, seed, labels)
    path = _precision_onnx_path(output, "fp32")
    _export_fp32(model, metadata, path, opset, None, True)
    return path, TorchRuntime(model), metadata.preprocessing


def _require_fp32(path: Path) -> None:
    import onnx

    from alexnet_export.exporter.precision import precision_of

    found = precision_of(onnx.load(str(path), load_external_data=False))
    if found != "fp32":
        raise click.UsageError(f"--onnx {path} is a {found} file; give the FP32 export, the precision is made from it")


def _metadata_props(path: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
