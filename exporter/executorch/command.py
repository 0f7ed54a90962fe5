"""`alexnet-export executorch` as a library call: a .pte for XNNPACK, from the checkpoint."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from alexnet_export.events import Listener, ignore
from alexnet_export.exporter.arguments import DEFAULT_STEM, PipelineError, check_arguments, output_folder
from alexnet_export.exporter.source import ModelSource, load_model, torch_reference
from alexnet_export.exporter.calibration.images import CalibrationOptions, images_for
from alexnet_export.models.precisions import FP32
from alexnet_export.runtimes.table import EXECUTORCH
from alexnet_export.models.spec import FLOAT_INPUT, precision_file_name
from alexnet_export.runtimes.signing import SigningKey, signs_outputs


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
    before the pair is put in place (exporter/executorch/convert.py).

    precision: FP32, or INT8_EXECUTORCH (PT2E with XNNPACK's quantizer; needs calibration.folder,
    the images the ONNX INT8 files calibrate on). output: None writes alexnet.pte / alexnet.int8.pte
    in the working folder. max_batch: the largest batch the program takes (memory is planned for
    it, about 4 MB per image; None: 32). threads: XNNPACK's thread pool while verifying (None: one
    per core). Returns exporter.executorch.PteResult, with the report of which operators XNNPACK
    runs (`delegation`). Needs `pip install 'alexnet-export[executorch]'`, checked before any work.
    """
    from alexnet_export.exporter.executorch.spec import DEFAULT_MAX_BATCH, MAX_BATCH_LIMIT
    from alexnet_export.exporter.executorch.convert import export_verified_pte
    from alexnet_export.runtimes.executorch.runtime import import_executorch

    output = Path(output) if output is not None else Path(precision_file_name(DEFAULT_STEM, precision, "pte"))
    row, _ = check_arguments(EXECUTORCH.name, precision, calibration, output, FLOAT_INPUT, (), False)
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


def summary(result, precision_word: str) -> list[str]:
    """What `alexnet-export executorch` prints after the export (exporter/commands.py)."""
    return [f"{result.path.name}: {result.delegation.describe()}",
            f"wrote {result.path} and {result.sidecar.name} ({precision_word}, batch {result.batch[0]}..{result.batch[1]},"
            f" {result.size_bytes / 1e6:.1f} MB) in {result.seconds:.1f}s"]
