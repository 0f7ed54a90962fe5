"""`alexnet-export openvino` as a library call: an IR in FP32, BF16 or INT8, verified under OpenVINO."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from alexnet_export.events import Listener, ignore
from alexnet_export.exporter.arguments import DEFAULT_STEM, check_arguments, output_folder
from alexnet_export.exporter.onnx.convert import DEFAULT_OPSET, ExportResult
from alexnet_export.exporter.source import ModelSource, fp32_start
from alexnet_export.exporter.onnx.variants import VariantResult, make_variant
from alexnet_export.exporter.calibration.images import CalibrationOptions, held_out_inputs
from alexnet_export.models.precisions import FP32, INT8_TENSORRT
from alexnet_export.runtimes.table import OPENVINO
from alexnet_export.models.spec import FLOAT_INPUT, precision_file_name
from alexnet_export.runtimes.verification.parity import ParityReport
from alexnet_export.runtimes.signing import SigningKey, signs_outputs


@dataclass(frozen=True)
class IrFile:
    """The result of `export_openvino_ir`."""

    path: Path  # the .xml; the .bin is beside it
    precision: str
    report: ParityReport  # the IR under OpenVINO against the reference
    verified_on: str
    fp32: ExportResult | None
    variant: VariantResult | None  # the Q/DQ ONNX an INT8 IR is converted from
    seconds: float



@signs_outputs(lambda arguments: output_folder(arguments["output"]))
def export_openvino_ir(
    output: str | Path | None = None,
    source: ModelSource | None = None,
    *,
    fp32_onnx: str | Path | None = None,
    precision: str = FP32,
    calibration: CalibrationOptions = CalibrationOptions(),
    opset: int = DEFAULT_OPSET,
    threads: int | None = None,
    sign_key: SigningKey | str | Path | None = None,
    on_event: Listener = ignore,
) -> IrFile:
    """An OpenVINO IR (.xml + .bin) of the model, verified under OpenVINO before it is put in place.

    precision: FP32, BF16 (an FP32 IR that runs in BF16; needs a CPU with BF16, checked before any
    work) or INT8_OPENVINO (from the TensorRT-rule Q/DQ file; needs calibration.folder).
    output: None writes alexnet.xml / alexnet.bf16.xml / alexnet.int8.xml in the working folder.
    The FP32 ONNX on the way is a temporary file unless `fp32_onnx` is given.
    sign_key: signs the IR (.xml with its .bin) as the pair is put in place.
    """
    from alexnet_export.exporter.openvino.convert import check_ir_path, write_verified_ir
    from alexnet_export.runtimes.openvino.runtime import check_cpu_runs

    started = time.perf_counter()
    output = check_ir_path(output if output is not None else precision_file_name(DEFAULT_STEM, precision, "xml"))
    fp32_onnx = Path(fp32_onnx) if fp32_onnx is not None else None
    row, _ = check_arguments(OPENVINO.name, precision, calibration, output, FLOAT_INPUT, (), False, fp32_onnx=fp32_onnx,
                              source=source)
    check_cpu_runs(precision)
    with tempfile.TemporaryDirectory(prefix=".alexnet-export-", dir=output.parent) as scratch:
        fp32_path, reference, fp32_result = fp32_start(fp32_onnx, source, Path(scratch) / "fp32.onnx", opset, on_event)
        preprocessing = reference.metadata.preprocessing
        variant, onnx_for_ir = None, fp32_path
        if row.calibrated:  # the INT8 IR is converted from the TensorRT-rule Q/DQ file
            variant = make_variant(fp32_path, INT8_TENSORRT, Path(scratch) / "int8.onnx", reference, calibration,
                                   preprocessing, on_event=on_event)
            onnx_for_ir = variant.path
        # The INT8 step already decoded the held-out images: verify the IR on the same ones.
        inputs, verified_on = ((variant.inputs, variant.verified_on) if variant is not None
                               else held_out_inputs(calibration, preprocessing))
        report = write_verified_ir(onnx_for_ir, output, precision, reference, inputs, verified_on, threads=threads,
                                   on_event=on_event)
    return IrFile(output, precision, report, verified_on, fp32_result, variant, time.perf_counter() - started)
