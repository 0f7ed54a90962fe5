"""The toolkit's commands as library calls: one function per command, plain arguments, a result.

    export_onnx_file(...)      what `alexnet-export onnx` does: a verified .onnx in any precision
    make_precision_file(...)   an FP32 .onnx you have -> a verified FP16 or INT8 .onnx
    build_tensorrt_engine(...) what `alexnet-export trt` does: FP32 ONNX, precision ONNX, engine
    export_openvino_ir(...)    what `alexnet-export openvino` does: an IR in FP32, BF16 or INT8
    export_ort_file(...)       what `alexnet-export ort` does: a .onnx -> ONNX Runtime's mobile format
    export_executorch(...)     what `alexnet-export executorch` does: a .pte for XNNPACK, FP32 or INT8

Each step verifies its file before it is put in place, so a failure leaves what was there
before. Progress goes to `on_event` (alexnet_export.events); nothing here prints.
"""

from __future__ import annotations

from alexnet_export.extras import EXPORT_MODULES, require

# Every function here exports: on an install without the export extra, say so in one line
# before an import below fails deep inside torch or onnx.
require(*EXPORT_MODULES, purpose="exporting a model")


import contextlib  # noqa: E402 (after the check above)
import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from alexnet_export.atomic import check_output_path
from alexnet_export.errors import ArgumentError
from alexnet_export.events import Listener, Step, ignore
from alexnet_export.exporter.calibration import MIN_IMAGES
from alexnet_export.exporter.onnx import DEFAULT_OPSET, ExportResult, export_onnx
from alexnet_export.exporter.pixels import write_pixel_file
from alexnet_export.exporter.source import ModelSource, fp32_reference, fp32_start, load_model, torch_reference
from alexnet_export.exporter.tensorrt import BuildSettings, EngineResult, build_engine, check_build_settings
from alexnet_export.exporter.variants import (
    CalibrationOptions,
    VariantResult,
    check_float_layers,
    held_out_inputs,
    images_for,
    make_variant,
)
from alexnet_export.models.precisions import ENGINE, EXECUTORCH, FP16, FP32, INT8_TENSORRT, IR, ONNX, Precision
from alexnet_export.models.precisions import precision as precision_row
from alexnet_export.models.spec import FLOAT_INPUT, INPUT_FORMATS, PIXEL_INPUT, precision_file_name
from alexnet_export.runtimes.parity import ParityReport
from alexnet_export.runtimes.signing import SigningKey, signs_outputs
from alexnet_export.runtimes.tensorrt_support import TensorRTUnavailable, import_tensorrt

__all__ = ["CalibrationOptions", "ModelSource", "PipelineError", "build_tensorrt_engine", "export_executorch",
           "export_onnx_file", "export_openvino_ir", "load_model", "make_precision_file"]

DEFAULT_STEM = "alexnet"
DEFAULT_ENGINE = Path(f"{DEFAULT_STEM}.engine")


class PipelineError(ArgumentError):
    """The arguments of a pipeline call do not fit together (found before any work)."""


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
    pixels: ParityReport | None = None  # a uint8 pixel file against its float file (exporter/pixels.py)


@dataclass(frozen=True)
class IrFile:
    """The result of `export_openvino_ir`."""

    path: Path  # the .xml; the .bin is beside it
    precision: str
    report: ParityReport  # the IR under OpenVINO against the reference
    verified_on: str
    fp32: ExportResult | None
    variant: VariantResult | None  # the Q/DQ ONNX an INT8 IR is converted from
    seconds: float


@dataclass(frozen=True)
class EngineBuild:
    """The result of `build_tensorrt_engine`."""

    engine: EngineResult
    onnx_path: Path  # the verified ONNX the engine was built from, kept beside it
    precision: str
    fp32: ExportResult | None  # None when the build started from an existing FP32 .onnx
    variant: VariantResult | None
    seconds: float


@signs_outputs(lambda arguments: _folder(arguments["output"]))
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
    224, 3) after the app's resize and crop and normalises them inside (exporter/pixels.py).
    sign_key: a private key (path, or SigningKey for a certificate) that signs the file as it is
    put in place: `<output>.sig` (runtimes/signing.py). The same in every function here.
    """
    started = time.perf_counter()
    output = Path(output) if output is not None else Path(precision_file_name(DEFAULT_STEM, precision, input_format=input_format))
    _, keep_float = _check_arguments(ONNX, precision, calibration, output, input_format, keep_float, auto_keep_float)
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
    # (keyed by its hash) still hits on a re-run. A pixel file is made from the verified float file.
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


@signs_outputs(lambda arguments: _folder(arguments["output"] or arguments["fp32_onnx"]))
def make_precision_file(
    fp32_onnx: str | Path,
    precision: str,
    output: str | Path | None = None,
    *,
    calibration: CalibrationOptions = CalibrationOptions(),
    keep_float: Sequence[str] = (),
    auto_keep_float: bool = False,
    sign_key: SigningKey | str | Path | None = None,
    on_event: Listener = ignore,
) -> VariantResult:
    """From an FP32 .onnx made by `export_onnx_file`, a verified FP16 or INT8 file.

    The FP32 file is the reference the gate compares against, and its metadata (labels,
    preprocessing) carries over. output: None writes beside it, named by precision_file_name.
    """
    fp32_onnx = Path(fp32_onnx)
    output = Path(output) if output is not None else fp32_onnx.with_name(precision_file_name(_stem(fp32_onnx), precision))
    _, keep_float = _check_arguments(ONNX, precision, calibration, output, FLOAT_INPUT, keep_float, auto_keep_float,
                                     fp32_onnx=fp32_onnx)
    if precision == FP32:
        raise PipelineError(f"{fp32_onnx} is the FP32 file already; ask for a precision it is converted to",
                            argument="precision")
    reference = fp32_reference(fp32_onnx)
    return make_variant(fp32_onnx, precision, output, reference, calibration, reference.metadata.preprocessing,
                        keep_float=keep_float, auto_keep_float=auto_keep_float, on_event=on_event)


@signs_outputs(lambda arguments: _folder(arguments["output"]))
def build_tensorrt_engine(
    output: str | Path = DEFAULT_ENGINE,
    source: ModelSource | None = None,
    *,
    fp32_onnx: str | Path | None = None,
    precision: str = FP32,
    calibration: CalibrationOptions = CalibrationOptions(),
    settings: BuildSettings = BuildSettings(),
    timing_cache: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    keep_float: Sequence[str] = (),
    auto_keep_float: bool = False,
    input_format: str = FLOAT_INPUT,
    sign_key: SigningKey | str | Path | None = None,
    on_event: Listener = ignore,
) -> EngineBuild:
    """Export (or take `fp32_onnx`), make and verify the precision ONNX on the CPU, build the engine.

    precision: FP32, FP16 or INT8_TENSORRT (TensorRT's Q/DQ rules; needs calibration.folder).
    The ONNX files are kept beside the engine under their default names (alexnet.onnx,
    alexnet.fp16.onnx, alexnet.int8-tensorrt.onnx for alexnet.engine). Without the builder
    (settings.builder; TensorRT for RTX needs no GPU, TensorRT does) this raises TensorRTUnavailable
    after the verified ONNX is written, naming its path.
    timing_cache: None keeps it beside the engine (alexnet.timing.cache), for TensorRT; TensorRT for RTX has none.
    input_format: PIXEL_INPUT builds the engine from the pixel version of the precision ONNX
    (alexnet.uint8.onnx, alexnet.fp16.uint8.onnx ...; exporter/pixels.py), kept beside it too.
    sign_key: signs the engine (with its sidecar) and every ONNX file written beside it.
    """
    started = time.perf_counter()
    output = Path(output)
    fp32_onnx = Path(fp32_onnx) if fp32_onnx is not None else None
    _, keep_float = _check_arguments(ENGINE, precision, calibration, output, input_format, keep_float, auto_keep_float,
                                     fp32_onnx=fp32_onnx, source=source)
    with contextlib.suppress(TensorRTUnavailable):  # without the builder the verified ONNX is still made
        check_build_settings(import_tensorrt(settings.builder), settings)
    fp32_path, reference, fp32_result = fp32_start(fp32_onnx, source, output.with_name(precision_file_name(output.stem, FP32)),
                                                   opset, on_event)
    if reference.bounds.maximum is not None:
        raise PipelineError(f"{fp32_path} has a fixed batch of {reference.bounds.maximum}; an engine with a"
                            " batch range needs an FP32 export with a dynamic batch", argument="fp32_onnx")
    variant = None
    onnx_path = fp32_path
    if precision != FP32:
        onnx_path = output.with_name(precision_file_name(output.stem, precision))
        variant = make_variant(fp32_path, precision, onnx_path, reference, calibration,
                               reference.metadata.preprocessing, keep_float=keep_float,
                               auto_keep_float=auto_keep_float, on_event=on_event)
    if input_format == PIXEL_INPUT:
        pixel_path = output.with_name(precision_file_name(output.stem, precision, input_format=PIXEL_INPUT))
        write_pixel_file(onnx_path, pixel_path, on_event=on_event)
        onnx_path = pixel_path
    on_event(Step(f"{precision} ONNX for TensorRT, verified: {onnx_path}"))
    try:
        import_tensorrt(settings.builder)
    except TensorRTUnavailable as exc:
        raise TensorRTUnavailable(f"{exc}; the verified {precision} ONNX is at {onnx_path}") from None
    engine = build_engine(onnx_path, output, settings=settings,
                          timing_cache_path=timing_cache or output.with_suffix(".timing.cache"), on_event=on_event)
    return EngineBuild(engine, onnx_path, precision, fp32_result, variant, time.perf_counter() - started)


@signs_outputs(lambda arguments: _folder(arguments["output"]))
def export_openvino_ir(
    output: str | Path | None = None,
    source: ModelSource | None = None,
    *,
    fp32_onnx: str | Path | None = None,
    precision: str = FP32,
    calibration: CalibrationOptions = CalibrationOptions(),
    opset: int = DEFAULT_OPSET,
    threads: int | None = None,
    sign_key: SigningKey | str | Path | None = None,
    on_event: Listener = ignore,
) -> IrFile:
    """An OpenVINO IR (.xml + .bin) of the model, verified under OpenVINO before it is put in place.

    precision: FP32, BF16 (an FP32 IR that runs in BF16; needs a CPU with BF16, checked before any
    work) or INT8_OPENVINO (from the TensorRT-rule Q/DQ file; needs calibration.folder).
    output: None writes alexnet.xml / alexnet.bf16.xml / alexnet.int8.xml in the working folder.
    The FP32 ONNX on the way is a temporary file unless `fp32_onnx` is given.
    sign_key: signs the IR (.xml with its .bin) as the pair is put in place.
    """
    from alexnet_export.exporter.openvino import check_ir_path, write_verified_ir
    from alexnet_export.runtimes.openvino import check_cpu_runs

    started = time.perf_counter()
    output = check_ir_path(output if output is not None else precision_file_name(DEFAULT_STEM, precision, "xml"))
    fp32_onnx = Path(fp32_onnx) if fp32_onnx is not None else None
    row, _ = _check_arguments(IR, precision, calibration, output, FLOAT_INPUT, (), False, fp32_onnx=fp32_onnx,
                              source=source)
    check_cpu_runs(precision)
    with tempfile.TemporaryDirectory(prefix=".alexnet-export-", dir=output.parent) as scratch:
        fp32_path, reference, fp32_result = fp32_start(fp32_onnx, source, Path(scratch) / "fp32.onnx", opset, on_event)
        preprocessing = reference.metadata.preprocessing
        variant, onnx_for_ir = None, fp32_path
        if row.calibrated:  # the INT8 IR is converted from the TensorRT-rule Q/DQ file
            variant = make_variant(fp32_path, INT8_TENSORRT, Path(scratch) / "int8.onnx", reference, calibration,
                                   preprocessing, on_event=on_event)
            onnx_for_ir = variant.path
        # The INT8 step already decoded the held-out images: verify the IR on the same ones.
        inputs, verified_on = ((variant.inputs, variant.verified_on) if variant is not None
                               else held_out_inputs(calibration, preprocessing))
        report = write_verified_ir(onnx_for_ir, output, precision, reference, inputs, verified_on, threads=threads,
                                   on_event=on_event)
    return IrFile(output, precision, report, verified_on, fp32_result, variant, time.perf_counter() - started)


@signs_outputs(lambda arguments: _folder(arguments["output"] if arguments.get("output") is not None
                                          else arguments["source"]))
def export_ort_file(
    source: str | Path,
    output: str | Path | None = None,
    *,
    sign_key: SigningKey | str | Path | None = None,
    on_event: Listener = ignore,
):
    """ONNX Runtime's format (.ort, what ONNX Runtime Mobile and minimal builds load) of the .onnx
    at `source`, any precision the toolkit writes, with the required-operators configuration for a
    reduced-size build beside it (NAME.required_operators.config); verified against `source` on
    photo-like images before either is put in place (exporter/ort_format.py). FP16 files are
    refused: the converter's CPU optimizer folds their weights back to FP32.

    output: None writes the .ort beside `source` (alexnet.onnx -> alexnet.ort).
    """
    from alexnet_export.exporter.ort_format import check_ort_arguments, write_verified_ort
    from alexnet_export.models.spec import ArtifactMetadata
    from alexnet_export.runtimes.onnx_graph import read_graph_facts

    source, output = check_ort_arguments(source, output)
    facts = read_graph_facts(source)
    if facts.precision == FP16:
        # Measured: the 10-class FP16 .onnx (91 MB) became a 182 MB .ort, the FP32 file's size.
        raise PipelineError(f"{source.name} is FP16, which ONNX Runtime's CPU optimizer folds back to FP32 weights"
                            " in a .ort (twice the size, the same arithmetic); expected the FP32 or an INT8 file",
                            argument="source")
    try:
        preprocessing = ArtifactMetadata.from_props(facts.metadata_props).preprocessing
    except ValueError as exc:
        raise PipelineError(f"{source}: {exc}; expected an ONNX file written by alexnet-export",
                            argument="source") from None
    inputs, verified_on = held_out_inputs(CalibrationOptions(), preprocessing)
    return write_verified_ort(source, output, inputs, verified_on, on_event=on_event)


@signs_outputs(lambda arguments: _folder(arguments["output"]))
def export_executorch(
    output: str | Path | None = None,
    source: ModelSource | None = None,
    *,
    precision: str = FP32,
    calibration: CalibrationOptions = CalibrationOptions(),
    max_batch: int | None = None,
    threads: int | None = None,
    sign_key: SigningKey | str | Path | None = None,
    on_event: Listener = ignore,
):
    """An ExecuTorch program (.pte) for the XNNPACK delegate, with its sidecar JSON (labels,
    preprocessing, precision: `<output>.json`), verified under ExecuTorch against eager PyTorch
    before the pair is put in place (exporter/executorch.py).

    precision: FP32, or INT8_EXECUTORCH (PT2E with XNNPACK's quantizer; needs calibration.folder,
    the images the ONNX INT8 files calibrate on). output: None writes alexnet.pte / alexnet.int8.pte
    in the working folder. max_batch: the largest batch the program takes (memory is planned for
    it, about 4 MB per image; None: 32). threads: XNNPACK's thread pool while verifying (None: one
    per core). Returns exporter.executorch.PteResult, with the report of which operators XNNPACK
    runs (`delegation`). Needs `pip install 'alexnet-export[executorch]'`, checked before any work.
    """
    from alexnet_export.exporter.executorch import DEFAULT_MAX_BATCH, MAX_BATCH_LIMIT, export_verified_pte
    from alexnet_export.runtimes.executorch import import_executorch

    output = Path(output) if output is not None else Path(precision_file_name(DEFAULT_STEM, precision, "pte"))
    row, _ = _check_arguments(EXECUTORCH, precision, calibration, output, FLOAT_INPUT, (), False)
    if output.suffix.lower() != ".pte":
        raise PipelineError(f"an ExecuTorch program is a .pte file (its sidecar JSON goes beside it as NAME.pte.json);"
                            f" got {output.name}", argument="output")
    max_batch = DEFAULT_MAX_BATCH if max_batch is None else max_batch
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or not 1 <= max_batch <= MAX_BATCH_LIMIT:
        raise PipelineError(f"max_batch {max_batch!r} is invalid; expected an integer from 1 to {MAX_BATCH_LIMIT}",
                            argument="max_batch")
    import_executorch()
    started = time.perf_counter()
    loaded = load_model(source or ModelSource(), on_event=on_event)
    calibration_set, inputs, verified_on, notes = images_for(calibration, loaded.metadata.preprocessing,
                                                             row.calibrated, on_event)
    for note in notes:
        on_event(note)
    result = export_verified_pte(loaded.model, output, precision, loaded.metadata, torch_reference(loaded.model),
                                 inputs, verified_on, max_batch=max_batch, threads=threads,
                                 calibration=calibration_set.images if row.calibrated else None, on_event=on_event)
    return dataclasses.replace(result, seconds=time.perf_counter() - started)


def _check_arguments(fmt: str, precision: str, calibration: CalibrationOptions, output: Path, input_format: str,
                     keep_float: Sequence[str], auto_keep_float: bool, *, fp32_onnx: Path | None = None,
                     source: ModelSource | None = None) -> tuple[Precision, tuple[str, ...]]:
    """Every argument the commands share, checked once and before any work: the precision's row
    (a precision `fmt` carries) and the kept-float layers in network order, or a PipelineError
    naming the argument."""
    row = precision_row(precision, fmt)
    if input_format not in INPUT_FORMATS:
        raise PipelineError(f"input_format {input_format!r} is unknown; expected one of {', '.join(INPUT_FORMATS)}",
                            argument="input_format")
    layers = check_float_layers(precision, keep_float, auto_keep_float)
    if row.calibrated and calibration.folder is None:
        raise PipelineError(f"{precision} needs calibration images: a folder of {MIN_IMAGES} or more",
                            argument="calibration")
    check_output_path(output)
    if fp32_onnx is not None and source is not None:
        raise PipelineError("give an FP32 .onnx or a model source, not both: the FP32 .onnx already holds the model",
                            argument="fp32_onnx")
    if fp32_onnx is not None and not fp32_onnx.is_file():
        raise PipelineError(f"FP32 .onnx {fp32_onnx} does not exist or is not a file", argument="fp32_onnx")
    return row, layers


def _folder(path: str | Path | None) -> Path:
    """The folder an output path names (a bare or missing name: the working folder)."""
    return Path(path).parent if path is not None else Path(".")


def _stem(path: Path) -> str:
    """alexnet.onnx -> alexnet; the stem the precision files are named after."""
    return path.name[: -len(".onnx")] if path.name.endswith(".onnx") else path.stem
