"""`alexnet-export onnx` as library calls: a verified .onnx in any precision the ONNX format
carries, and an FP16 or INT8 file made from an FP32 .onnx you have."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from alexnet_export.events import Listener, ignore
from alexnet_export.exporter.arguments import DEFAULT_STEM, PipelineError, check_arguments, onnx_stem, output_folder
from alexnet_export.exporter.onnx.convert import DEFAULT_OPSET, ExportResult, export_onnx
from alexnet_export.exporter.onnx.pixels import write_pixel_file
from alexnet_export.exporter.source import ModelSource, fp32_reference, load_model, torch_reference
from alexnet_export.exporter.onnx.variants import VariantResult, make_variant
from alexnet_export.exporter.calibration.images import CalibrationOptions
from alexnet_export.models.precisions import FP32
from alexnet_export.runtimes.table import ONNX
from alexnet_export.models.spec import FLOAT_INPUT, PIXEL_INPUT, precision_file_name
from alexnet_export.runtimes.verification.parity import ParityReport
from alexnet_export.runtimes.signing import SigningKey, signs_outputs


@dataclass(frozen=True)
class OnnxFile:
    """The result of `export_onnx_file`."""

    path: Path
    precision: str
    size_bytes: int
    num_classes: int
    fp32: ExportResult  # the FP32 export and its parity with eager PyTorch (report None if not verified)
    variant: VariantResult | None  # the FP16/INT8 step and its gate, for those precisions
    seconds: float
    pixels: ParityReport | None = None  # a uint8 pixel file against its float file (exporter/onnx/pixels.py)



@signs_outputs(lambda arguments: output_folder(arguments["output"]))
def export_onnx_file(
    output: str | Path | None = None,
    source: ModelSource = ModelSource(),
    *,
    precision: str = FP32,
    calibration: CalibrationOptions = CalibrationOptions(),
    opset: int = DEFAULT_OPSET,
    batch: int | None = None,
    lrn: str = "native",
    verify: bool = True,
    keep_float: Sequence[str] = (),
    auto_keep_float: bool = False,
    input_format: str = FLOAT_INPUT,
    sign_key: SigningKey | str | Path | None = None,
    on_event: Listener = ignore,
) -> OnnxFile:
    """Export the model to one verified ONNX file in `precision` (a precision the ONNX format carries:
    models/precisions.py).

    output: None writes `precision_file_name("alexnet", precision)` in the working folder.
    batch: None for a dynamic batch, else the fixed batch size. lrn: "native" or "pooled"
    (FP32 only). verify: False skips the FP32 parity check against eager PyTorch; FP16 and INT8
    files are always gated against the FP32 model (INT8 needs `calibration.folder`).
    keep_float, auto_keep_float: INT8 layers kept in float, named or searched for (make_variant).
    input_format: FLOAT_INPUT, or PIXEL_INPUT for a file that takes uint8 RGB pixels (batch, 224,
    224, 3) after the app's resize and crop and normalises them inside (exporter/onnx/pixels.py).
    sign_key: a private key (path, or SigningKey for a certificate) that signs the file as it is
    put in place: `<output>.sig` (runtimes/signing/sign.py). The same in every function here.
    """
    started = time.perf_counter()
    output = Path(output) if output is not None else Path(precision_file_name(DEFAULT_STEM, precision, input_format=input_format))
    _, keep_float = check_arguments(ONNX.name, precision, calibration, output, input_format, keep_float, auto_keep_float,
                                     batch=batch)
    _check_onnx_name(output)
    if lrn != "native" and precision != FP32:
        raise PipelineError(f"lrn={lrn!r} applies to FP32 only: FP16 keeps each LRN native and in FP32,"
                            " and the INT8 CPU file always uses the pooled form", argument="lrn")
    loaded = load_model(source, on_event=on_event)
    pixels = input_format == PIXEL_INPUT
    if precision == FP32 and not pixels:
        fp32 = export_onnx(loaded.model, output, loaded.metadata, opset=opset, batch=batch, verify=verify, lrn=lrn,
                           on_event=on_event)
        return OnnxFile(output, FP32, fp32.size_bytes, loaded.metadata.num_classes, fp32, None,
                        time.perf_counter() - started)
    # The FP32 file is a step on the way; export is deterministic, so the calibration cache
    # (keyed by its graph and weights, not its labels) still hits on a re-run. A pixel file is made from the verified
    # float file.
    with tempfile.TemporaryDirectory(prefix=".alexnet-export-", dir=output.parent) as scratch:
        fp32 = export_onnx(loaded.model, Path(scratch) / "fp32.onnx", loaded.metadata, opset=opset, batch=batch,
                           verify=verify, lrn=lrn, on_event=on_event)
        variant = None
        float_file = Path(scratch) / "variant.onnx" if pixels else output
        if precision != FP32:
            variant = make_variant(fp32.path, precision, float_file, torch_reference(loaded.model), calibration,
                                   loaded.metadata.preprocessing, keep_float=keep_float,
                                   auto_keep_float=auto_keep_float, on_event=on_event)
        pixel_report = write_pixel_file(variant.path if variant else fp32.path, output, on_event=on_event) if pixels else None
    return OnnxFile(output, precision, output.stat().st_size, loaded.metadata.num_classes, fp32, variant,
                    time.perf_counter() - started, pixel_report)


@signs_outputs(lambda arguments: output_folder(arguments["output"] or arguments["fp32_onnx"]))
def make_precision_file(
    fp32_onnx: str | Path,
    precision: str,
    output: str | Path | None = None,
    *,
    calibration: CalibrationOptions = CalibrationOptions(),
    keep_float: Sequence[str] = (),
    auto_keep_float: bool = False,
    accept=None,
    sign_key: SigningKey | str | Path | None = None,
    on_event: Listener = ignore,
) -> VariantResult:
    """From an FP32 .onnx made by `export_onnx_file`, a verified FP16 or INT8 file.

    The FP32 file is the reference the gate compares against, and its metadata (labels,
    preprocessing) carries over. output: None writes beside it, named by precision_file_name.
    accept: with auto_keep_float, a check beyond the gate the file must pass (make_variant).
    """
    fp32_onnx = Path(fp32_onnx)
    output = Path(output) if output is not None else fp32_onnx.with_name(precision_file_name(onnx_stem(fp32_onnx), precision))
    _, keep_float = check_arguments(ONNX.name, precision, calibration, output, FLOAT_INPUT, keep_float, auto_keep_float,
                                     fp32_onnx=fp32_onnx)
    _check_onnx_name(output)
    if precision == FP32:
        raise PipelineError(f"{fp32_onnx} is the FP32 file already; ask for a precision it is converted to",
                            argument="precision")
    reference = fp32_reference(fp32_onnx)
    return make_variant(fp32_onnx, precision, output, reference, calibration, reference.metadata.preprocessing,
                        keep_float=keep_float, auto_keep_float=auto_keep_float, accept=accept, on_event=on_event)


def _check_onnx_name(output: Path) -> None:
    """An ONNX file is written as NAME.onnx, the name every command opens it by: refuse any other before any work."""
    if output.suffix.lower() not in ONNX.suffixes:
        raise PipelineError(f"an ONNX model is an .onnx file; got {output.name}", argument="output")
