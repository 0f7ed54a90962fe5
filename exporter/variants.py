"""From a verified FP32 ONNX to a verified FP16 or INT8 ONNX: the steps `onnx --precision` and
`trt` share, each a function the CLI calls in order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from alexnet_export.errors import AlexNetExportError
from alexnet_export.exporter.calibration import (
    DEFAULT_METHOD,
    RECOMMENDED_IMAGES,
    CalibrationSet,
    calibration_ranges,
    load_calibration_set,
)
from alexnet_export.exporter.precision import to_fp16, to_int8_cpu, to_int8_tensorrt
from alexnet_export.exporter.samples import synthetic_images
from alexnet_export.exporter.verify import FP16_GATE, INT8_GATE, ParityReport, compare_runtimes, enforce
from alexnet_export.models.spec import Preprocessing
from alexnet_export.runtimes.preprocess import preprocess_batch

Say = Callable[[str], None]
Tick = Callable[[int], None]
VERIFY_BATCH = 16
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
    notes: tuple[str, ...]  # things the user should know (clamped weights, cache hit, ...)


def make_variant(
    fp32_onnx: Path,
    precision: str,
    output: Path,
    reference,
    calibration: CalibrationOptions,
    preprocessing: Preprocessing,
    *,
    say: Say = lambda message: None,
    progress: Callable[[str, int], Tick] = lambda label, total: (lambda n: None),
) -> VariantResult:
    """Write `output` in `precision` ("fp16", "int8-tensorrt", "int8-cpu") and gate it.

    reference: a runtime with `predict` (eager PyTorch when the model is at hand, else the
    FP32 ONNX). The gate failing raises ParityError with the figures; the file is then removed.
    progress(label, total) returns a tick function for a progress bar.
    """
    notes = []
    calibration_set = None
    if calibration.folder is not None:
        calibration_set = _load_images(calibration, preprocessing, say, progress)
        notes.extend(_image_notes(calibration_set, calibrating=precision != "fp16"))
    if precision == "fp16":
        say("converting to FP16 (LRN stays FP32)")
        clamped = to_fp16(fp32_onnx, output)
        if clamped:
            notes.append(f"{clamped} weights smaller than FP16 can hold were clamped to +-1e-7")
    elif precision in ("int8-tensorrt", "int8-cpu"):
        if calibration_set is None:
            raise AlexNetExportError("INT8 needs calibration images: pass --calib-dir DIR (64 images or more)")
        ranges = calibration_ranges(fp32_onnx, calibration_set, calibration.method, calibration.cache_dir,
                                    tick=_lazy_tick(progress, f"calibrating ({calibration.method})", len(calibration_set.images)))
        notes.append(f"calibration ranges {'reused from' if ranges.cache_hit else 'cached in'} {ranges.path}")
        say(f"quantizing to {precision} Q/DQ")
        (to_int8_tensorrt if precision == "int8-tensorrt" else to_int8_cpu)(fp32_onnx, ranges, output)
    else:
        raise AlexNetExportError(f"precision {precision!r} is unknown; expected fp16, int8-tensorrt or int8-cpu")
    inputs, verified_on = _verification_inputs(calibration_set, preprocessing)
    say(f"verifying {output.name} against the FP32 reference on {verified_on}")
    try:
        report = _compare(reference, output, inputs)
        enforce(report, FP16_GATE if precision == "fp16" else INT8_GATE, f"{output.name} ({precision})")
    except BaseException:
        output.unlink(missing_ok=True)
        raise
    return VariantResult(output, precision, report, verified_on, tuple(notes))


def _load_images(calibration: CalibrationOptions, preprocessing, say: Say, progress) -> CalibrationSet:
    from alexnet_export.exporter.calibration import VERIFY_HOLDOUT, find_images

    available = len(find_images(calibration.folder))
    wanted = min(available, calibration.count + VERIFY_HOLDOUT)
    tick = _lazy_tick(progress, "reading calibration images", wanted) if available else (lambda n: None)
    return load_calibration_set(calibration.folder, calibration.count, preprocessing, tick)


def _image_notes(calibration_set: CalibrationSet, calibrating: bool) -> list[str]:
    notes = []
    used = len(calibration_set.images)
    if calibrating and used < RECOMMENDED_IMAGES:
        notes.append(f"warning: calibrating on {used} images; {RECOMMENDED_IMAGES} or more are recommended")
    if calibration_set.skipped:
        notes.append(f"skipped {len(calibration_set.skipped)} unreadable images, e.g. {calibration_set.skipped[0]}")
    return notes


def _verification_inputs(calibration_set: CalibrationSet | None, preprocessing) -> tuple[np.ndarray, str]:
    """Held-out real images when there are enough, else the calibration images, else made ones."""
    if calibration_set is not None and len(calibration_set.holdout) >= VERIFY_BATCH:
        return calibration_set.holdout, f"{len(calibration_set.holdout)} held-out calibration-folder images"
    if calibration_set is not None:
        return calibration_set.images, f"the {len(calibration_set.images)} calibration images (no images left to hold out)"
    images = synthetic_images(SYNTHETIC_VERIFY_IMAGES, seed=4321)
    return preprocess_batch(images, preprocessing), f"{SYNTHETIC_VERIFY_IMAGES} generated photo-like images (pass --calib-dir to use real ones)"


def _compare(reference, candidate_path: Path, inputs: np.ndarray) -> ParityReport:
    from alexnet_export.runtimes.onnx import OnnxRuntime

    candidate = OnnxRuntime(candidate_path, providers=["CPUExecutionProvider"])
    batches = [inputs[i : i + VERIFY_BATCH] for i in range(0, len(inputs), VERIFY_BATCH)]
    return compare_runtimes(reference, candidate, batches)


def _lazy_tick(progress, label: str, total: int) -> Tick:
    """Open the progress bar on the first tick, so a cache hit shows none."""
    state = {}

    def tick(n: int) -> None:
        if "tick" not in state:
            state["tick"] = progress(label, total)
        state["tick"](n)

    return tick
