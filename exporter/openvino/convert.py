"""ONNX -> OpenVINO IR (.xml + .bin) carrying the toolkit's metadata, written as a pair.

The IR is converted from a verified ONNX file (FP32, or for INT8 the TensorRT-rule Q/DQ file,
whose QuantizeLinear/DequantizeLinear pairs OpenVINO turns into FakeQuantize and its CPU plugin
runs as INT8: all five convolutions in u8 and the three fully connected layers in i8, read from
the compiled model's runtime graph). The precision to run in is stored in rt_info, where
runtimes/openvino/runtime.py reads it. Weights stay FP32 in the .bin (`compress_to_fp16=False`): IR
storage precision is not inference precision, and FP16 storage would change FP32 results.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alexnet_export.atomic import check_output_path, staged_with_companions
from alexnet_export.errors import ArgumentError, ExportError, one_line
from alexnet_export.events import Listener, Step, ignore
from alexnet_export.models.precisions import precision as precision_row
from alexnet_export.models.spec import PRECISION_KEY
from alexnet_export.exporter.verified import Gate, write_verified
from alexnet_export.runtimes.base import Runtime
from alexnet_export.runtimes.table import OPENVINO
from alexnet_export.runtimes.onnx.reader import read_graph_facts
from alexnet_export.runtimes.openvino.runtime import RT_INFO_SECTION, OpenVinoRuntime, import_openvino
from alexnet_export.runtimes.verification.parity import ParityReport

_PREFIX = RT_INFO_SECTION + "."


def write_ir(onnx_path: str | Path, xml_path: str | Path, precision: str) -> None:
    """Convert `onnx_path` and save `xml_path` (+ .bin beside it), labelled `precision`. Not atomic:
    callers write into `staged_ir`."""
    ov = import_openvino()
    props = dict(read_graph_facts(onnx_path).metadata_props)
    props[PRECISION_KEY] = precision
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as exc:  # the converter raises its own types with paragraphs of text
        raise ExportError(f"OpenVINO cannot convert {Path(onnx_path).name}: {one_line(exc, 400)}") from None
    for key, value in props.items():
        if key.startswith(_PREFIX):
            model.set_rt_info(value, [RT_INFO_SECTION, key[len(_PREFIX):]])
    ov.save_model(model, str(xml_path), compress_to_fp16=False)


def write_verified_ir(onnx_path: Path, output: Path, precision: str, reference: Runtime, inputs: np.ndarray,
                      verified_on: str, *, threads: int | None = None,
                      on_event: Listener = ignore) -> ParityReport:
    """Convert `onnx_path` to the IR at `output` (and the .bin beside it), and put the pair in place
    once OpenVINO's logits pass `precision`'s gate against `reference` on `inputs` (exporter/verified.py)."""

    def convert(staged: Path) -> None:
        on_event(Step(f"converting {onnx_path.name} to an OpenVINO IR"))
        write_ir(onnx_path, staged, precision)

    gate = Gate(reference, inputs, precision_row(precision).gate, verified_on, reference_name="reference")
    return write_verified(check_ir_path(output), convert, lambda staged: OpenVinoRuntime(staged, threads=threads),
                          gate, what=f"{precision} OpenVINO IR", failing=f"{output.name} ({precision})",
                          on_event=on_event).report


def check_ir_path(xml_path: str | Path, argument: str = "output") -> Path:
    """An IR is written as NAME.xml with NAME.bin beside it: refuse any other name before any work."""
    xml_path = check_output_path(xml_path, argument)
    if xml_path.suffix.lower() != ".xml":
        raise ArgumentError(f"an OpenVINO IR is an .xml file (its weights go to the .bin beside it); got"
                            f" {xml_path.name}", argument=argument)
    return xml_path


def staged_ir(xml_path: str | Path):
    """Yield an .xml path in a hidden folder beside `xml_path`; on success the .bin (the table's companion
    rule, runtimes/table.py), then the .xml replace the targets. On any exception the folder goes and the
    targets keep what they held (core/atomic.py's staged_with_companions)."""
    return staged_with_companions(check_ir_path(xml_path), OPENVINO.companion_paths)
