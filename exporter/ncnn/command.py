"""`alexnet-export ncnn` as a library call: the checkpoint -> a verified ncnn pair for ARM boards and Android."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

from alexnet_export.events import Listener, Note, counter, ignore
from alexnet_export.exporter.arguments import DEFAULT_STEM, PipelineError, check_arguments, output_folder
from alexnet_export.exporter.calibration.images import CalibrationOptions, images_for
from alexnet_export.exporter.source import ModelSource, load_model, torch_reference
from alexnet_export.models.precisions import FP32
from alexnet_export.models.spec import FLOAT_INPUT, precision_file_name
from alexnet_export.runtimes.signing import SigningKey, signs_outputs
from alexnet_export.runtimes.table import NCNN

SUFFIX = ".ncnn.param"


@signs_outputs(lambda arguments: output_folder(arguments["output"]))
def export_ncnn(
    output: str | Path | None = None,
    source: ModelSource | None = None,
    *,
    precision: str = FP32,
    calibration: CalibrationOptions = CalibrationOptions(),
    threads: int | None = None,
    sign_key: SigningKey | str | Path | None = None,
    on_event: Listener = ignore,
):
    """An ncnn model: NAME.ncnn.param (the layers), NAME.ncnn.bin (the weights) and NAME.ncnn.param.json
    (labels, preprocessing, precision), verified under ncnn against eager PyTorch before the three are
    put in place (exporter/ncnn/convert.py).

    precision: FP32, FP16 (FP16 weights) or "int8-ncnn" (INT8 weights with per-channel scales and
    calibrated input scales; needs calibration.folder: the images, and the cached ranges, the ONNX
    INT8 files use). output: None writes alexnet.ncnn.param / alexnet.fp16.ncnn.param /
    alexnet.int8.ncnn.param in the working folder. threads: ncnn's threads while verifying (None:
    ncnn's default). Returns exporter.ncnn.NcnnResult. Needs `pip install 'alexnet-export[ncnn]'`
    beside the export extra, checked before any work.
    """
    from alexnet_export.extras import require

    output = Path(output) if output is not None else Path(precision_file_name(DEFAULT_STEM, precision, "ncnn.param"))
    row, _ = check_arguments(NCNN.name, precision, calibration, output, FLOAT_INPUT, (), False)
    if not output.name.lower().endswith(SUFFIX):
        raise PipelineError(f"an ncnn model is a {SUFFIX} file (its weights go beside it as NAME.ncnn.bin); got"
                            f" {output.name}", argument="output")
    require("ncnn", purpose="exporting an ncnn model")
    from alexnet_export.exporter.ncnn.convert import write_verified_ncnn

    started = time.perf_counter()
    loaded = load_model(source or ModelSource(), on_event=on_event)
    calibration_set, inputs, verified_on, notes = images_for(calibration, loaded.metadata.preprocessing,
                                                             row.calibrated, on_event)
    for note in notes:
        on_event(note)
    ranges = _input_ranges(loaded, calibration, calibration_set, output.parent, on_event) if row.calibrated else None
    result = write_verified_ncnn(loaded.model, output, precision, loaded.metadata, torch_reference(loaded.model),
                                 inputs, verified_on, input_ranges=ranges, threads=threads, on_event=on_event)
    return dataclasses.replace(result, seconds=time.perf_counter() - started)


def _input_ranges(loaded, calibration: CalibrationOptions, calibration_set, folder: Path,
                  on_event: Listener) -> dict[str, float]:
    """The calibrated input range of each weighted layer, from the FP32 .onnx's calibration: the cache
    the ONNX INT8 files fill, so making one after the other calibrates once."""
    from alexnet_export.exporter.calibration.ranges import calibration_ranges
    from alexnet_export.exporter.ncnn.quantize import input_ranges
    from alexnet_export.exporter.onnx.convert import DEFAULT_OPSET, export_onnx

    with tempfile.TemporaryDirectory(prefix=".alexnet-export-", dir=folder) as scratch:
        fp32_onnx = Path(scratch) / "fp32.onnx"
        export_onnx(loaded.model, fp32_onnx, loaded.metadata, opset=DEFAULT_OPSET, on_event=on_event)
        ranges = calibration_ranges(fp32_onnx, calibration_set, calibration.method, calibration.cache_dir,
                                    tick=counter(on_event, f"calibrating ({calibration.method})",
                                                 len(calibration_set.images)))
        on_event(Note(f"calibration ranges {'reused from' if ranges.cache_hit else 'cached in'} {ranges.path}"))
        return input_ranges(fp32_onnx, ranges)


def summary(result, precision_word: str) -> list[str]:
    """What `alexnet-export ncnn` prints after the export (exporter/commands.py)."""
    return [f"wrote {result.path}, {result.bin.name} and {result.sidecar.name} ({precision_word},"
            f" {(result.param_bytes + result.bin_bytes) / 1e6:.1f} MB) in {result.seconds:.1f}s"]
