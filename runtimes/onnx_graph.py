"""What an ONNX file's graph says about itself: its precision and its metadata.

The one place that decides a file's precision. The graph wins over the label the exporter
wrote, because a file converted or quantized by another tool keeps the FP32 file's label.
Imports onnx when called (a dependency of the package, not of the graph's runtime); weights
kept in external files are not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alexnet_export.models.spec import FOREIGN_INT8, FP16, FP32, PRECISION_KEY

# Operators that only a quantized graph holds: QDQ form, QOperator form, integer matmuls.
QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm",
                           "MatMulInteger", "ConvInteger"})


@dataclass(frozen=True)
class GraphFacts:
    precision: str  # FP32, FP16, INT8_CPU, INT8_TENSORRT, or FOREIGN_INT8 for INT8 made elsewhere
    metadata_props: dict[str, str]


def read_graph_facts(path: str | Path) -> GraphFacts:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return GraphFacts(graph_precision(model), {p.key: p.value for p in model.metadata_props})


def graph_precision(model) -> str:
    """The precision an `onnx.ModelProto` holds: our label when the graph agrees with it."""
    import onnx

    labelled = next((p.value for p in model.metadata_props if p.key == PRECISION_KEY), FP32)
    if any(node.op_type in QUANTIZED_OPS for node in model.graph.node):
        return labelled if labelled.startswith("int8-") else FOREIGN_INT8
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer):
        return FP16
    return FP32
