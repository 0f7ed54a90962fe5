"""The mobile formats as library calls: `alexnet-export ort` (ONNX Runtime's own format, from an
.onnx) and `alexnet-export executorch` (a .pte for XNNPACK, from the checkpoint)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from alexnet_export.events import Listener, ignore
from alexnet_export.exporter.arguments import DEFAULT_STEM, PipelineError, check_arguments, output_folder
from alexnet_export.exporter.source import ModelSource, load_model, torch_reference
from alexnet_export.exporter.variants import CalibrationOptions, held_out_inputs, images_for
from alexnet_export.models.precisions import EXECUTORCH, FP16, FP32
from alexnet_export.models.spec import FLOAT_INPUT, precision_file_name
from alexnet_export.runtimes.signing import SigningKey, signs_outputs


@signs_outputs(lambda arguments: output_folder(arguments["output"] if arguments.get("output") is not None
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


@signs_outputs(lambda arguments: output_folder(arguments["output"]))
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
    row, _ = check_arguments(EXECUTORCH, precision, calibration, output, FLOAT_INPUT, (), False)
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
