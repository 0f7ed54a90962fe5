"""The toolkit's commands as library calls: one function per command, plain arguments, a result.

    export_onnx_file(...)      what `alexnet-export onnx` does: a verified .onnx in any precision
    make_precision_file(...)   an FP32 .onnx you have -> a verified FP16 or INT8 .onnx
    build_tensorrt_engine(...) what `alexnet-export trt` does: FP32 ONNX, precision ONNX, engine
    export_openvino_ir(...)    what `alexnet-export openvino` does: an IR in FP32, BF16 or INT8

Each step verifies its file before it is put in place, so a failure leaves what was there
before. Progress goes to `on_event` (alexnet_export.events); nothing here prints.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from alexnet_export.errors import AlexNetExportError
from alexnet_export.events import Listener, Note, Step, Verified, ignore
from alexnet_export.exporter.onnx import DEFAULT_OPSET, ExportResult, export_onnx
from alexnet_export.exporter.pixels import write_pixel_file
from alexnet_export.exporter.tensorrt import BuildSettings, EngineResult, build_engine
from alexnet_export.exporter.variants import (
    CalibrationOptions,
    VariantResult,
    check_float_layers,
    compare_in_batches,
    held_out_inputs,
    make_variant,
)
from alexnet_export.exporter.verify import GATES, ParityReport, enforce
from alexnet_export.models.spec import (
    BF16,
    FLOAT_INPUT,
    FP16,
    FP32,
    INPUT_FORMATS,
    INT8_CPU,
    INT8_OPENVINO,
    INT8_TENSORRT,
    OPENVINO_PRECISIONS,
    PIXEL_INPUT,
    PRECISIONS,
    ArtifactMetadata,
    default_labels,
    precision_file_name,
)
from alexnet_export.runtimes.base import Runtime
from alexnet_export.runtimes.signing import SigningKey, signs_outputs
from alexnet_export.runtimes.tensorrt_support import ENGINE_PRECISIONS, TensorRTUnavailable, import_tensorrt

DEFAULT_STEM = "alexnet"
DEFAULT_ENGINE = Path(f"{DEFAULT_STEM}.engine")


class PipelineError(AlexNetExportError, ValueError):
    """The arguments of a pipeline call do not fit together."""


@dataclass(frozen=True)
class ModelSource:
    """Where the model comes from: a checkpoint, or seeded random weights when `weights` is None.

    num_classes: None reads it from the checkpoint (1000 for random weights).
    labels: class names, or a file with one per line (default: ImageNet's names at 1000 classes).
    """

    weights: Path | None = None
    num_classes: int | None = None
    seed: int = 0
    labels: Path | Sequence[str] | None = None


@dataclass(frozen=True)
class LoadedModel:
    model: object  # the eager AlexNet (torch.nn.Module)
    metadata: ArtifactMetadata  # what its exported files will carry
    random_init: bool


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


def load_model(source: ModelSource = ModelSource(), *, on_event: Listener = ignore) -> LoadedModel:
    """The eager model and the metadata its files will carry."""
    from alexnet_export.exporter.onnx import tool_versions
    from alexnet_export.models.labels import read_labels_file
    from alexnet_export.models.weights import load_alexnet

    on_event(Step(f"loading {'weights from ' + str(source.weights) if source.weights else 'random weights'}"))
    loaded = load_alexnet(source.weights, num_classes=source.num_classes, seed=source.seed)
    if loaded.random_init:
        on_event(Note(f"no weights given: this AlexNet has random weights (seed {source.seed}); "
                      "its predictions are meaningless.", warning=True))
    classes = loaded.model.num_classes
    if source.labels is None:
        names = default_labels(classes)
    elif isinstance(source.labels, (str, Path)):
        names = read_labels_file(source.labels, classes)
    else:
        names = tuple(source.labels)
    metadata = ArtifactMetadata(classes, names, loaded.source, tool_versions=tool_versions())
    return LoadedModel(loaded.model, metadata, loaded.random_init)


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
    """Export the model to one verified ONNX file in `precision` (one of PRECISIONS).

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
    _check_precision(precision, PRECISIONS)
    _check_input_format(input_format)
    keep_float = check_float_layers(precision, keep_float, auto_keep_float)  # before any work
    output = Path(output) if output is not None else Path(precision_file_name(DEFAULT_STEM, precision,
                                                                              input_format=input_format))
    _require_calibration(precision, calibration, precision)
    if lrn != "native" and precision != FP32:
        raise PipelineError(f"lrn={lrn!r} applies to FP32 only: FP16 keeps each LRN native and in FP32,"
                            " and the INT8 CPU file always uses the pooled form")
    loaded = load_model(source, on_event=on_event)
    pixels = input_format == PIXEL_INPUT
    if precision == FP32 and not pixels:
        fp32 = export_onnx(loaded.model, output, loaded.metadata, opset=opset, batch=batch, verify=verify, lrn=lrn,
                           on_event=on_event)
        return OnnxFile(output, FP32, fp32.size_bytes, loaded.metadata.num_classes, fp32, None,
                        time.perf_counter() - started)
    # The FP32 file is a step on the way; export is deterministic, so the calibration cache
    # (keyed by its hash) still hits on a re-run. A pixel file is made from the verified float file.
    scratch_parent = output.parent if output.parent.is_dir() else None
    with tempfile.TemporaryDirectory(prefix=".alexnet-export-", dir=scratch_parent) as scratch:
        fp32 = export_onnx(loaded.model, Path(scratch) / "fp32.onnx", loaded.metadata, opset=opset, batch=batch,
                           verify=verify, lrn=lrn, on_event=on_event)
        variant = None
        float_file = Path(scratch) / "variant.onnx" if pixels else output
        if precision != FP32:
            variant = make_variant(fp32.path, precision, float_file, _torch_reference(loaded.model), calibration,
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
    _check_precision(precision, (FP16, INT8_CPU, INT8_TENSORRT))
    keep_float = check_float_layers(precision, keep_float, auto_keep_float)  # before any work
    reference = _fp32_reference(fp32_onnx)
    output = Path(output) if output is not None else fp32_onnx.with_name(precision_file_name(_stem(fp32_onnx), precision))
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
    alexnet.fp16.onnx, alexnet.int8-tensorrt.onnx for alexnet.engine). Without TensorRT or a
    GPU this raises TensorRTUnavailable after the verified ONNX is written, naming its path.
    timing_cache: None keeps it beside the engine (alexnet.timing.cache).
    input_format: PIXEL_INPUT builds the engine from the pixel version of the precision ONNX
    (alexnet.uint8.onnx, alexnet.fp16.uint8.onnx ...; exporter/pixels.py), kept beside it too.
    sign_key: signs the engine (with its sidecar) and every ONNX file written beside it.
    """
    started = time.perf_counter()
    output = Path(output)
    _check_precision(precision, ENGINE_PRECISIONS)
    _check_input_format(input_format)
    keep_float = check_float_layers(precision, keep_float, auto_keep_float)  # before any work
    _require_calibration(precision, calibration, "an INT8 engine")
    if not output.parent.is_dir():
        raise PipelineError(f"output folder {output.parent} does not exist; create it first")
    _check_one_source(fp32_onnx, source)
    fp32_path, reference, fp32_result = _fp32_start(fp32_onnx, source, output.with_name(precision_file_name(output.stem, FP32)),
                                                    opset, on_event)
    if reference.bounds.maximum is not None:
        raise PipelineError(f"{fp32_path} has a fixed batch of {reference.bounds.maximum}; an engine with a"
                            " batch range needs an FP32 export with a dynamic batch")
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
        import_tensorrt()
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
    from alexnet_export.exporter.openvino import staged_ir, write_ir
    from alexnet_export.runtimes.openvino import OpenVinoRuntime, OpenVinoUnavailable, cpu_supports, import_openvino

    started = time.perf_counter()
    _check_precision(precision, OPENVINO_PRECISIONS)
    output = Path(output) if output is not None else Path(precision_file_name(DEFAULT_STEM, precision, "xml"))
    _require_calibration(precision, calibration, "an INT8 IR")
    _check_one_source(fp32_onnx, source)
    ov = import_openvino()
    if not cpu_supports(ov.Core(), "CPU", precision):
        raise OpenVinoUnavailable("this CPU has no BF16 instructions (AVX512_BF16 or AMX), so a BF16 IR could"
                                  " neither be verified nor run here; make the FP32 or INT8 IR")
    scratch_parent = output.parent if output.parent.is_dir() else None
    with tempfile.TemporaryDirectory(prefix=".alexnet-export-", dir=scratch_parent) as scratch:
        fp32_path, reference, fp32_result = _fp32_start(fp32_onnx, source, Path(scratch) / "fp32.onnx", opset, on_event)
        preprocessing = reference.metadata.preprocessing
        variant, onnx_for_ir = None, fp32_path
        if precision == INT8_OPENVINO:
            variant = make_variant(fp32_path, INT8_TENSORRT, Path(scratch) / "int8.onnx", reference, calibration,
                                   preprocessing, on_event=on_event)
            onnx_for_ir = variant.path
        # The INT8 step already decoded the held-out images: verify the IR on the same ones.
        inputs, verified_on = ((variant.inputs, variant.verified_on) if variant is not None
                               else held_out_inputs(calibration, preprocessing))
        with staged_ir(output) as staged:
            on_event(Step(f"converting {'the Q/DQ file' if variant else 'the FP32 file'} to an OpenVINO IR"))
            write_ir(onnx_for_ir, staged, precision)
            on_event(Step(f"verifying {output.name} under OpenVINO against the reference on {verified_on}"))
            candidate = OpenVinoRuntime(staged, threads=threads)
            report = compare_in_batches(reference, candidate, inputs)
            enforce(report, GATES[precision], f"{output.name} ({precision})")
            candidate.close()
    on_event(Verified(f"parity, reference vs {precision} OpenVINO IR ({candidate.device}), on {verified_on}", report))
    return IrFile(output, precision, report, verified_on, fp32_result, variant, time.perf_counter() - started)


def _fp32_start(fp32_onnx, source: ModelSource | None, export_path: Path, opset: int,
                on_event: Listener) -> tuple[Path, Runtime, ExportResult | None]:
    """The FP32 .onnx to convert from, the runtime to verify against, and the export's result:
    the given FP32 file as its own reference, or a fresh export to `export_path` and eager PyTorch."""
    if fp32_onnx is not None:
        return Path(fp32_onnx), _fp32_reference(Path(fp32_onnx)), None
    loaded = load_model(source or ModelSource(), on_event=on_event)
    result = export_onnx(loaded.model, export_path, loaded.metadata, opset=opset, on_event=on_event)
    return export_path, _torch_reference(loaded.model), result


def _check_precision(precision: str, allowed: Sequence[str]) -> None:
    if precision not in allowed:
        raise PipelineError(f"precision {precision!r} is not one of {', '.join(allowed)}")


def _require_calibration(precision: str, calibration: CalibrationOptions, what: str) -> None:
    """INT8 (any format) is calibrated on images: refuse before any work when there are none."""
    if precision in (INT8_CPU, INT8_TENSORRT, INT8_OPENVINO) and calibration.folder is None:
        raise PipelineError(f"{what} needs calibration images: CalibrationOptions(folder=...) with 64 or more")


def _check_one_source(fp32_onnx, source: ModelSource | None) -> None:
    if fp32_onnx is not None and source is not None:
        raise PipelineError("give fp32_onnx or a model source, not both: the FP32 .onnx already holds the model")


def _check_input_format(input_format: str) -> None:
    if input_format not in INPUT_FORMATS:
        raise PipelineError(f"input_format {input_format!r} is unknown; expected one of {', '.join(INPUT_FORMATS)}")


def _fp32_reference(path: Path) -> Runtime:
    """The FP32 .onnx as the reference runtime (CPU, the verification setting), refusing other precisions."""
    from alexnet_export.runtimes.onnx import OnnxRuntime

    reference = OnnxRuntime(path, providers=["CPUExecutionProvider"])
    if reference.metadata.preprocessing.takes_pixels:
        raise PipelineError(f"{path} takes uint8 pixels; give the float32 FP32 export (precision files are made"
                            " from it, and export_onnx_file(input_format=...) makes their pixel versions)")
    if reference.precision != FP32:
        raise PipelineError(f"{path} is a {reference.precision} file; give the FP32 export, the precision"
                            " file is made from it")
    return reference


def _torch_reference(model) -> Runtime:
    from alexnet_export.runtimes.torch import TorchRuntime

    return TorchRuntime(model)


def _folder(path: str | Path | None) -> Path:
    """The folder an output path names (a bare or missing name: the working folder)."""
    return Path(path).parent if path is not None else Path(".")


def _stem(path: Path) -> str:
    """alexnet.onnx -> alexnet; the stem the precision files are named after."""
    return path.name[: -len(".onnx")] if path.name.endswith(".onnx") else path.stem
