"""From a verified FP32 ONNX to a verified FP16 or INT8 ONNX: the step that the `onnx`,
`trt` and `openvino` pipelines (exporter/<kind>/command.py) share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from alexnet_export.errors import ArgumentError
from alexnet_export.events import Listener, Note, Step, Verified, counter, ignore
from alexnet_export.atomic import atomic_output
from alexnet_export.exporter.onnx.auto_keep import Accept, Int8GateError, KeepFloatSearch, layer_analysis, search_float_layers
from alexnet_export.exporter.calibration.images import CalibrationOptions, images_for
from alexnet_export.exporter.calibration.ranges import (
    calibration_ranges,
)
from alexnet_export.exporter.onnx.keep_float import describe
from alexnet_export.runtimes.verification.layers import weighted_layers
from alexnet_export.exporter.onnx.quantize import QUANTIZERS, to_fp16
from alexnet_export.models.precisions import INT8_GATE, precision as precision_row
from alexnet_export.models.spec import Preprocessing
from alexnet_export.models.precisions import FP16, INT4
from alexnet_export.runtimes.verification.parity import ParityReport, compare_in_batches, enforce
from alexnet_export.runtimes.base import Runtime

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

    A pipeline's step (exporter/<kind>/command.py), which has checked the arguments: the precision
    one the ONNX exporter writes, calibration images for INT8, keep_float from check_float_layers.

    keep_float: INT8 only, layer names (runtimes/verification/layers.py: conv1..conv5, fc6..fc8) whose weights
    and input activations stay float. auto_keep_float: when the INT8 file fails its gate, keep the
    fewest more layers in float that make it pass (exporter/onnx/auto_keep.py). A failed INT8 gate
    raises Int8GateError, which names the layer where the noise enters. INT4 is gated on every image
    read from the calibration folder (it calibrates on none), else on generated ones, its top-1 counted
    over clear margins (exporter/onnx/int4.py `gate_inputs`, `check_gate`). accept: with
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
            from alexnet_export.exporter.onnx.int4 import BLOCK_SIZE, gate_inputs, to_int4

            inputs, verified_on = gate_inputs(calibration_set, preprocessing)
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
        if precision == INT4:
            from alexnet_export.exporter.onnx.int4 import check_gate

            notes.extend(check_gate(report, what, generated=calibration_set is None))
        elif not row.is_int8:
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


def _compare(reference, candidate_path: Path, inputs: np.ndarray) -> ParityReport:
    from alexnet_export.runtimes.onnx.runtime import OnnxRuntime

    return compare_in_batches(reference, OnnxRuntime(candidate_path, providers=["CPUExecutionProvider"]), inputs)


