"""`alexnet-export trt` as a library call: the FP32 ONNX, the verified precision ONNX, the engine."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from alexnet_export.events import Listener, Step, ignore
from alexnet_export.exporter.arguments import DEFAULT_STEM, PipelineError, check_arguments, output_folder
from alexnet_export.exporter.onnx.convert import DEFAULT_OPSET, ExportResult
from alexnet_export.exporter.onnx.pixels import write_pixel_file
from alexnet_export.exporter.source import ModelSource, fp32_start
from alexnet_export.exporter.tensorrt.convert import EngineResult, build_engine
from alexnet_export.exporter.tensorrt.settings import BuildSettings, check_build_settings
from alexnet_export.exporter.onnx.variants import VariantResult, make_variant
from alexnet_export.exporter.calibration.images import CalibrationOptions
from alexnet_export.models.precisions import FP32
from alexnet_export.runtimes.table import ENGINE
from alexnet_export.models.spec import FLOAT_INPUT, PIXEL_INPUT, precision_file_name
from alexnet_export.runtimes.signing import SigningKey, signs_outputs
from alexnet_export.runtimes.tensorrt.support import TensorRTUnavailable, import_tensorrt

DEFAULT_ENGINE = Path(f"{DEFAULT_STEM}.engine")


@dataclass(frozen=True)
class EngineBuild:
    """The result of `build_tensorrt_engine`."""

    engine: EngineResult
    onnx_path: Path  # the verified ONNX the engine was built from, kept beside it
    precision: str
    fp32: ExportResult | None  # None when the build started from an existing FP32 .onnx
    variant: VariantResult | None
    seconds: float



@signs_outputs(lambda arguments: output_folder(arguments["output"]))
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
    (settings.builder; TensorRT for RTX needs no GPU, TensorRT does) this raises TensorRTNotInstalled
    (a MissingDependencyError, and a TensorRTUnavailable) after the verified ONNX is written, naming its path.
    timing_cache: None keeps it beside the engine (alexnet.timing.cache), for TensorRT; TensorRT for RTX has none.
    input_format: PIXEL_INPUT builds the engine from the pixel version of the precision ONNX
    (alexnet.uint8.onnx, alexnet.fp16.uint8.onnx ...; exporter/onnx/pixels.py), kept beside it too.
    sign_key: signs the engine (with its sidecar) and every ONNX file written beside it.
    """
    started = time.perf_counter()
    output = Path(output)
    fp32_onnx = Path(fp32_onnx) if fp32_onnx is not None else None
    _, keep_float = check_arguments(ENGINE.name, precision, calibration, output, input_format, keep_float, auto_keep_float,
                                     fp32_onnx=fp32_onnx, source=source)
    if output.suffix.lower() not in ENGINE.suffixes:
        raise PipelineError(f"a TensorRT engine is an {' or '.join(ENGINE.suffixes)} file; got {output.name}",
                            argument="output")
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
    except TensorRTUnavailable as exc:  # TensorRTNotInstalled (an ImportError) stays one
        raise type(exc)(f"{exc}; the verified {precision} ONNX is at {onnx_path}") from None
    engine = build_engine(onnx_path, output, settings=settings,
                          timing_cache_path=timing_cache or output.with_suffix(".timing.cache"), on_event=on_event)
    return EngineBuild(engine, onnx_path, precision, fp32_result, variant, time.perf_counter() - started)
