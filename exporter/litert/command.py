"""`alexnet-export litert` as a library call: the checkpoint -> a verified LiteRT model (.tflite)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from alexnet_export.events import Listener, ignore
from alexnet_export.exporter.arguments import DEFAULT_STEM, PipelineError, check_arguments, output_folder
from alexnet_export.exporter.source import ModelSource, load_model, torch_reference
from alexnet_export.exporter.calibration.images import CalibrationOptions, images_for
from alexnet_export.models.precisions import FP32
from alexnet_export.runtimes.table import LITERT
from alexnet_export.models.spec import FLOAT_INPUT, precision_file_name
from alexnet_export.runtimes.signing import SigningKey, signs_outputs


@signs_outputs(lambda arguments: output_folder(arguments["output"]))
def export_litert(
    output: str | Path | None = None,
    source: ModelSource | None = None,
    *,
    precision: str = FP32,
    calibration: CalibrationOptions = CalibrationOptions(),
    batch: int = 1,
    threads: int | None = None,
    sign_key: SigningKey | str | Path | None = None,
    on_event: Listener = ignore,
):
    """A LiteRT model (.tflite, builtin operators only, NHWC input) with its sidecar JSON (labels,
    preprocessing, precision, layout, operators: `<output>.json`), verified under LiteRT's
    interpreter against eager PyTorch before the pair is put in place (exporter/litert/convert.py).

    precision: FP32, FP16 (FP16 weights, FP32 arithmetic on CPUs) or INT8_LITERT (PT2E with
    litert-torch's quantizer; needs calibration.folder, the images the ONNX INT8 files calibrate
    on). output: None writes alexnet.tflite / alexnet.fp16.tflite / alexnet.int8.tflite in the
    working folder. batch: the file's fixed batch (1, what a phone app runs, up to 64). threads:
    the interpreter's threads while verifying (None: LiteRT's default). Returns
    exporter.litert.TfliteResult. Needs `pip install 'alexnet-export[litert-export]'`, checked before any work.
    """
    from alexnet_export.exporter.litert.spec import MAX_BATCH_LIMIT
    from alexnet_export.exporter.litert.convert import convert, write_verified_tflite
    from alexnet_export.extras import require

    output = Path(output) if output is not None else Path(precision_file_name(DEFAULT_STEM, precision, "tflite"))
    row, _ = check_arguments(LITERT.name, precision, calibration, output, FLOAT_INPUT, (), False)
    if output.suffix.lower() != ".tflite":
        raise PipelineError(f"a LiteRT model is a .tflite file (its sidecar JSON goes beside it as NAME.tflite.json);"
                            f" got {output.name}", argument="output")
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH_LIMIT:
        raise PipelineError(f"batch {batch!r} is invalid; expected an integer from 1 to {MAX_BATCH_LIMIT}",
                            argument="batch")
    require("litert_torch", "ai_edge_litert", purpose="exporting a LiteRT model")
    started = time.perf_counter()
    loaded = load_model(source or ModelSource(), on_event=on_event)
    calibration_set, inputs, verified_on, notes = images_for(calibration, loaded.metadata.preprocessing,
                                                             row.calibrated, on_event)
    for note in notes:
        on_event(note)
    flatbuffer = convert(loaded.model, precision, batch, calibration_set.images if row.calibrated else None, on_event)
    result = write_verified_tflite(flatbuffer, output, precision, loaded.metadata, torch_reference(loaded.model),
                                   inputs, verified_on, batch=batch, threads=threads, on_event=on_event)
    return dataclasses.replace(result, seconds=time.perf_counter() - started)


def summary(result, precision_word: str) -> list[str]:
    """What `alexnet-export litert` prints after the export (exporter/commands.py)."""
    operators = sum(result.operators.values())
    return [f"{result.path.name}: {operators} builtin operators, {result.layout} input",
            f"wrote {result.path} and {result.sidecar.name} ({precision_word}, batch {result.batch},"
            f" {result.size_bytes / 1e6:.1f} MB) in {result.seconds:.1f}s"]
