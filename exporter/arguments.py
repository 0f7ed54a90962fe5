"""What the export commands share: the arguments checked once before any work (a PipelineError naming
the one at fault) and the default names. The export extra is checked before this is imported, where
an export is first asked for (the exporter's package faces, core/extras.py `require_export`)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

from alexnet_export.atomic import check_output_path
from alexnet_export.errors import ArgumentError
from alexnet_export.exporter.calibration.checks import check_calibration_images
from alexnet_export.exporter.calibration.ranges import MIN_IMAGES
from alexnet_export.exporter.source import ModelSource
from alexnet_export.exporter.onnx.variants import check_float_layers
from alexnet_export.exporter.calibration.images import CalibrationOptions
from alexnet_export.models.precisions import Precision
from alexnet_export.runtimes.table import ONNX, backend_named
from alexnet_export.models.spec import INPUT_FORMATS

DEFAULT_STEM = "alexnet"


class PipelineError(ArgumentError):
    """The arguments of a pipeline call do not fit together (found before any work)."""


def check_arguments(kind: str, precision: str, calibration: CalibrationOptions, output: Path, input_format: str,
                    keep_float: Sequence[str], auto_keep_float: bool, *, fp32_onnx: Path | None = None,
                    source: ModelSource | None = None, batch: int | None = None) -> tuple[Precision, tuple[str, ...]]:
    """Every argument the commands share, checked once and before any work: the precision's row
    (a precision the backend table's `kind` row writes) and the kept-float layers in network order, or a PipelineError
    naming the argument. The output's folder must exist and take a file; a fixed `batch` must be a positive
    integer; a calibration folder, when given, is checked as far as it can be without reading its images
    (exporter/calibration/checks.py: enough image files with readable headers), in milliseconds."""
    row = backend_named(kind).precision(precision)
    if input_format not in INPUT_FORMATS:
        raise PipelineError(f"input_format {input_format!r} is unknown; expected one of {', '.join(INPUT_FORMATS)}",
                            argument="input_format")
    layers = check_float_layers(precision, keep_float, auto_keep_float)
    if row.calibrated and calibration.folder is None:
        raise PipelineError(f"{precision} needs calibration images: a folder of {MIN_IMAGES} or more",
                            argument="calibration")
    check_output_path(output)
    _check_writable(output.parent)
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise PipelineError(f"batch {batch!r} is invalid; expected a positive integer, or None for a dynamic batch",
                            argument="batch")
    if fp32_onnx is not None and source is not None:
        raise PipelineError("give an FP32 .onnx or a model source, not both: the FP32 .onnx already holds the model",
                            argument="fp32_onnx")
    if fp32_onnx is not None and fp32_onnx.suffix.lower() not in ONNX.suffixes:
        raise PipelineError(f"{fp32_onnx.name} is not an ONNX file; expected the FP32 .onnx", argument="fp32_onnx")
    if fp32_onnx is not None and not fp32_onnx.is_file():
        raise PipelineError(f"FP32 .onnx {fp32_onnx} does not exist or is not a file", argument="fp32_onnx")
    if calibration.folder is not None:  # last: it lists the folder and reads image headers
        check_calibration_images(calibration.folder, calibration.count)
    return row, layers


def _check_writable(folder: Path) -> None:
    """A file can be made in `folder` (the outputs are staged beside their targets): found before any work."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".alexnet-export-"):
            pass
    except OSError as exc:
        raise PipelineError(f"cannot write in the output folder {folder}: {exc.strerror or exc}",
                            argument="output") from None


def output_folder(path: str | Path | None) -> Path:
    """The folder an output path names (a bare or missing name: the working folder)."""
    return Path(path).parent if path is not None else Path(".")


def onnx_stem(path: Path) -> str:
    """alexnet.onnx -> alexnet; the stem the precision files are named after."""
    return path.name[: -len(".onnx")] if path.name.endswith(".onnx") else path.stem
