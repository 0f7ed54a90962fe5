"""From a verified FP32 ONNX to a verified FP16 or INT8 ONNX: the step that the `onnx` and
`trt` pipelines (exporter/pipeline.py) share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from alexnet_export.errors import ArgumentError
from alexnet_export.events import Listener, Note, Step, Verified, counter, ignore
from alexnet_export.atomic import atomic_output
from alexnet_export.exporter.auto_keep import Accept, Int8GateError, KeepFloatSearch, layer_analysis, search_float_layers
from alexnet_export.exporter.calibration import (
    DEFAULT_METHOD,
    RECOMMENDED_IMAGES,
    CalibrationSet,
    calibration_ranges,
    load_calibration_set,
)
from alexnet_export.exporter.keep_float import describe
from alexnet_export.runtimes.layers import weighted_layers
from alexnet_export.exporter.precision import QUANTIZERS, to_fp16
from alexnet_export.runtimes.samples import synthetic_images
from alexnet_export.models.precisions import INT8_GATE, precision as precision_row
from alexnet_export.models.spec import Preprocessing
from alexnet_export.models.precisions import FP16, INT4
from alexnet_export.runtimes.parity import ParityReport, compare_in_batches, enforce
from alexnet_export.runtimes.base import Runtime
from alexnet_export.runtimes.preprocess import preprocess_batch

MIN_HOLDOUT = 16  # the fewest held-out images verified on instead of the calibration images
SYNTHETIC_VERIFY_IMAGES = 32


@dataclass(frozen=True)
class CalibrationOptions:
    folder: Path | None = None
    count: int = RECOMMENDED_IMAGES
    method: str = DEFAULT_METHOD
    cache_dir: Path | None = None


@dataclass(frozen=True)
class VariantResult:
    path: Path
    precision: str
    report: ParityReport
    verified_on: str  # which images the report is about
    notes: tuple[Note, ...]  # things the user should know (clamped weights, cache hit, ...)
    float_layers: tuple[str, ...] = ()  # INT8 layers kept in float, asked for or found
    search: KeepFloatSearch | None = None  # auto_keep_float's search: before/after figures, speed
    # The preprocessed images the report is about, so a step after this one verifies on the same
    # images without decoding them again.
    inputs: np.ndarray | None = field(default=None, repr=False, compare=False)


def make_variant(
    fp32_onnx: Path,
    precision: str,
    output: Path,
    reference: Runtime,
    calibration: CalibrationOptions,
    preprocessing: Preprocessing,
    *,
    keep_float: Sequence[str] = (),
    auto_keep_float: bool = False,
    accept: Accept | None = None,
    on_event: Listener = ignore,
) -> VariantResult:
    """Write `output` in `precision` (FP16, INT4, INT8_TENSORRT or INT8_CPU) and gate it.

    The pipeline's step (exporter/pipeline.py), which has checked the arguments: the precision
    one the ONNX exporter writes, calibration images for INT8, keep_float from check_float_layers.

    keep_float: INT8 only, layer names (runtimes/layers.py: conv1..conv5, fc6..fc8) whose weights
    and input activations stay float. auto_keep_float: when the INT8 file fails its gate, keep the
    fewest more layers in float that make it pass (exporter/auto_keep.py). A failed INT8 gate
    raises Int8GateError, which names the layer where the noise enters. accept: with
    auto_keep_float, a check beyond the gate that the file, or each try, must pass (why it is
    refused, or None): `optimize`'s top-1 budget.

    reference: a runtime with `predict` (eager PyTorch when the model is at hand, else the
    FP32 ONNX). The new file is verified under a temporary name beside `output` and renamed
    into place only when it passes: a failed gate raises ParityError with the figures and
    leaves `output` as it was, a good file from an earlier run included.
    """
    row = precision_row(precision)
    search = None
    calibration_set, inputs, verified_on, notes = images_for(calibration, preprocessing, row.calibrated, on_event)
    with atomic_output(output) as staged:
        if precision == FP16:
            on_event(Step("converting to FP16 (LRN stays FP32)"))
            clamped = to_fp16(fp32_onnx, staged)
            if clamped:
                notes.append(Note(f"{clamped} weights smaller than FP16 can hold were clamped to +-1e-7", warning=True))
        elif precision == INT4:
            from alexnet_export.exporter.int4 import BLOCK_SIZE, to_int4

            on_event(Step(f"quantizing fc6-fc8 weights to INT4 in blocks of {BLOCK_SIZE} (MatMulNBits)"))
            to_int4(fp32_onnx, staged)
        else:
            task = f"calibrating ({calibration.method})"
            ranges = calibration_ranges(fp32_onnx, calibration_set, calibration.method, calibration.cache_dir,
                                        tick=counter(on_event, task, len(calibration_set.images)))
            notes.append(Note(f"calibration ranges {'reused from' if ranges.cache_hit else 'cached in'} {ranges.path}"))
            in_float = f", {', '.join(keep_float)} in float" if keep_float else ""
            on_event(Step(f"quantizing to {precision} Q/DQ{in_float}"))
            quantize = QUANTIZERS[precision]
            quantize(fp32_onnx, ranges, staged, keep_float)
        on_event(Step(f"verifying {output.name} against the FP32 reference on {verified_on}"))
        report = _compare(reference, staged, inputs)
        what = f"{output.name} ({precision})"
        if not row.is_int8:
            enforce(report, row.gate, what)
        elif report.failures(INT8_GATE) or (auto_keep_float and accept is not None and accept(staged) is not None):
            if not auto_keep_float:
                raise Int8GateError(f"{what} fails the int8 parity gate: {'; '.join(report.failures(INT8_GATE))}",
                                    report, layer_analysis(fp32_onnx, staged, inputs))
            search = search_float_layers(
                fp32_onnx, staged, report, inputs,
                lambda path, layers: quantize(fp32_onnx, ranges, path, [*keep_float, *layers]),
                lambda path: _compare(reference, path, inputs), what, already_float=keep_float, accept=accept,
                on_event=on_event)
            keep_float, report = weighted_layers([*keep_float, *search.layers]), search.after
            notes.append(Note(search.summary()))
        if keep_float:
            notes.append(Note(f"kept in float: {describe(keep_float)}"))
    for note in notes:
        on_event(note)
    on_event(Verified(f"parity, FP32 reference vs {precision} ONNX Runtime (CPU), on {verified_on}", report))
    return VariantResult(Path(output), precision, report, verified_on, tuple(notes), keep_float, search, inputs)


def check_float_layers(precision: str, keep_float: Sequence[str], auto_keep_float: bool) -> tuple[str, ...]:
    """keep_float checked (known layers with weights, an INT8 precision), in network order."""
    layers = weighted_layers(keep_float)
    if (layers or auto_keep_float) and not precision_row(precision).is_int8:
        raise ArgumentError(f"keep_float and auto_keep_float apply to INT8 files; precision {precision!r} has no"
                                 " INT8 layers", argument="keep_float" if layers else "auto_keep_float")
    return layers


def images_for(calibration: CalibrationOptions, preprocessing: Preprocessing, calibrating: bool,
               on_event: Listener = ignore) -> tuple[CalibrationSet | None, np.ndarray, str, list[Note]]:
    """What a new precision file is made and checked with: the calibration set (None without a
    folder), the inputs it is verified on and what they are, and notes about the images. The ONNX
    INT8 files and the ExecuTorch programs take the same images from the same folder."""
    calibration_set, notes = None, []
    if calibration.folder is not None:
        calibration_set = _load_images(calibration, preprocessing, on_event)
        notes.extend(_image_notes(calibration_set, calibrating=calibrating))
    inputs, verified_on = _verification_inputs(calibration_set, preprocessing)
    return calibration_set, inputs, verified_on, notes


def _load_images(calibration: CalibrationOptions, preprocessing, on_event: Listener) -> CalibrationSet:
    return load_calibration_set(calibration.folder, calibration.count, preprocessing,
                                lambda total: counter(on_event, "reading calibration images", total))


def _image_notes(calibration_set: CalibrationSet, calibrating: bool) -> list[Note]:
    notes = []
    used = len(calibration_set.images)
    if calibrating and used < RECOMMENDED_IMAGES:
        notes.append(Note(f"calibrating on {used} images; {RECOMMENDED_IMAGES} or more are recommended", warning=True))
    if calibration_set.skipped:
        skipped = calibration_set.skipped
        notes.append(Note(f"skipped {len(skipped)} unreadable images, e.g. {skipped[0]}", warning=True))
    return notes


def _verification_inputs(calibration_set: CalibrationSet | None, preprocessing) -> tuple[np.ndarray, str]:
    """Held-out real images when there are enough, else the calibration images, else made ones."""
    if calibration_set is not None and len(calibration_set.holdout) >= MIN_HOLDOUT:
        return calibration_set.holdout, f"{len(calibration_set.holdout)} held-out calibration-folder images"
    if calibration_set is not None:
        return calibration_set.images, f"the {len(calibration_set.images)} calibration images (no images left to hold out)"
    images = synthetic_images(SYNTHETIC_VERIFY_IMAGES, seed=4321)
    return preprocess_batch(images, preprocessing), f"{SYNTHETIC_VERIFY_IMAGES} generated photo-like images (calibration images would be real ones)"


def _compare(reference, candidate_path: Path, inputs: np.ndarray) -> ParityReport:
    from alexnet_export.runtimes.onnx import OnnxRuntime

    return compare_in_batches(reference, OnnxRuntime(candidate_path, providers=["CPUExecutionProvider"]), inputs)


def held_out_inputs(calibration: CalibrationOptions, preprocessing: Preprocessing,
                    on_event: Listener = ignore) -> tuple[np.ndarray, str]:
    """The inputs a converted file is verified on, and what they are: held-out calibration
    images when a folder is given, else generated photo-like ones (as for every precision file)."""
    calibration_set = _load_images(calibration, preprocessing, on_event) if calibration.folder is not None else None
    return _verification_inputs(calibration_set, preprocessing)
