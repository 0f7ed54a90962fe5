"""ONNX -> ONNX Runtime's own format (.ort), which ONNX Runtime Mobile and minimal builds load.

Written with onnxruntime's converter (onnxruntime.tools.convert_onnx_models_to_ort, the
"Fixed" style: the graph optimized once, here, for any CPU, NCHWc layouts left out), with the
required-operators configuration that a reduced-size ONNX Runtime build takes
(`build.py --include_ops_by_config`) beside it. The .ort carries the .onnx's metadata (labels,
preprocessing, precision), so OnnxRuntime opens it like any file of the toolkit.

https://onnxruntime.ai/docs/performance/model-optimizations/ort-format-models.html
https://onnxruntime.ai/docs/build/custom.html
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from alexnet_export.quiet import quiet
from alexnet_export.exporter.arguments import PipelineError, output_folder
from alexnet_export.exporter.calibration.images import CalibrationOptions, held_out_inputs
from alexnet_export.runtimes.signing import SigningKey, signs_outputs
from alexnet_export.atomic import check_output_path
from alexnet_export.errors import ArgumentError, ExportError, one_line
from alexnet_export.events import Listener, Step, ignore
from alexnet_export.models.precisions import FP16, FP32_GATE
from alexnet_export.exporter.verified import Gate, write_verified
from alexnet_export.runtimes.onnx.runtime import OnnxRuntime
from alexnet_export.runtimes.verification.parity import ParityReport
from alexnet_export.runtimes.table import ONNX, ORT_FORMAT

CONFIG_SUFFIX = ".required_operators.config"  # the converter's name for it, beside the model


@dataclass(frozen=True)
class OrtFile:
    path: Path
    config: Path  # the operators (and opsets) a reduced-size ONNX Runtime build must include
    precision: str
    size_bytes: int
    source_bytes: int
    parity: ParityReport  # the .ort against its .onnx, on ONNX Runtime's CPU provider
    verified_on: str



def config_path(ort_path: str | Path) -> Path:
    ort_path = Path(ort_path)
    return ort_path.with_name(ort_path.stem + CONFIG_SUFFIX)


def check_ort_arguments(source: str | Path, output: str | Path | None) -> tuple[Path, Path]:
    """The .onnx to convert and the .ort to write (default: beside it), before any work."""
    source = Path(source)
    if source.suffix.lower() not in ONNX.suffixes:
        raise ArgumentError(f"{source.name} is not an ONNX file; expected a .onnx to convert", argument="source")
    if not source.is_file():
        raise ArgumentError(f"{source} does not exist or is not a file; expected a .onnx to convert", argument="source")
    output = check_output_path(output if output is not None else source.with_suffix(".ort"))
    if output.suffix.lower() not in ORT_FORMAT.suffixes:
        raise ArgumentError(f"an ONNX Runtime format model is a .ort file; got {output.name}", argument="output")
    return source, output


def write_verified_ort(source: Path, output: Path, inputs, verified_on: str, *,
                       on_event: Listener = ignore) -> OrtFile:
    """Convert `source` to `output` and its operator config, and put both in place once the .ort
    agrees with the .onnx on `inputs` (exporter/verified.py) within the FP32 gate whatever the
    precision: the same graph, run by the same kernels, must give the same answers."""

    def convert(staged: Path) -> None:
        from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

        on_event(Step(f"converting {source.name} to ONNX Runtime's format"))
        # The converter prints and logs its progress; the toolkit reports through events instead.
        try:
            with contextlib.redirect_stdout(io.StringIO()), quiet("ort_format_model.utils"):
                convert_onnx_models_to_ort(source.resolve(), output_dir=staged.parent,
                                           optimization_styles=[OptimizationStyle.Fixed])
        except Exception as exc:  # the converter raises whatever ONNX Runtime raised
            raise ExportError(f"ONNX Runtime cannot convert {source.name}: {one_line(exc, 400)}") from None
        # The converter's names: the (resolved) source's, with new suffixes.
        written = staged.with_name(source.resolve().stem + ".ort")
        if not (written.is_file() and config_path(written).is_file()):
            raise ExportError(f"ONNX Runtime's converter wrote no {written.name} and {config_path(written).name}")
        os.replace(config_path(written), config_path(staged))
        os.replace(written, staged)
        # The config's header names the model it was made from: the file users get, not the staged copy.
        config = config_path(staged)
        config.write_text(config.read_text().replace(str(written), output.name))

    reference = OnnxRuntime(source, "CPUExecutionProvider")
    try:
        written = write_verified(output, convert, lambda staged: OnnxRuntime(staged, "CPUExecutionProvider"),
                                 Gate(reference, inputs, FP32_GATE, verified_on, reference_name=source.name),
                                 what="ONNX Runtime format", on_event=on_event,
                                 failing=f"{output.name} (ONNX Runtime format of {source.name})")
    finally:
        reference.close()
    return OrtFile(output, config_path(output), written.precision, written.size, source.stat().st_size,
                   written.report, verified_on)


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
    photo-like images before either is put in place (exporter/onnx/ort_format.py). FP16 files are
    refused: the converter's CPU optimizer folds their weights back to FP32.

    output: None writes the .ort beside `source` (alexnet.onnx -> alexnet.ort).
    """
    from alexnet_export.models.spec import ArtifactMetadata
    from alexnet_export.runtimes.onnx.reader import read_graph_facts

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
