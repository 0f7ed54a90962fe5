"""What an ONNX file's graph says about itself: its precision and its metadata.

The one place that decides a file's precision. The graph wins over the label the exporter
wrote, because a file converted or quantized by another tool keeps the FP32 file's label:
quantize/dequantize operators mean INT8, MatMulNBits (block-wise low-bit weights) INT4, FP16
initializers mean FP16.

The file is read as raw protobuf (field numbers from onnx/onnx.proto) without the onnx package,
which the wrapper apps embed does not need. Weights are skipped, never parsed or copied, so a
1000-class export (240 MB) takes about a millisecond, where onnx.load parses every weight (0.3 s,
plus 0.3 s to import onnx). Weights kept in external files are not read either.
"""

from __future__ import annotations

import contextlib
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from alexnet_export.errors import ModelLoadError
from alexnet_export.models.spec import PRECISION_KEY
from alexnet_export.models.precisions import FOREIGN_INT8, FP16, FP32, INT4

# Operators that only a quantized graph holds: QDQ form, QOperator form, integer matmuls.
QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm",
                           "MatMulInteger", "ConvInteger"})
# ONNX Runtime's weight-only operator: N-bit block-wise weights, float activations (exporter/onnx/int4.py).
WEIGHT_ONLY_OPS = frozenset({"MatMulNBits"})
TENSOR_FLOAT16 = 10  # TensorProto.DataType.FLOAT16

# Field numbers in onnx.proto: ModelProto, GraphProto, NodeProto, TensorProto, StringStringEntryProto.
_MODEL_GRAPH, _MODEL_METADATA_PROPS = 7, 14
_GRAPH_NODE, _GRAPH_INITIALIZER = 1, 5
_NODE_OP_TYPE = 4
_TENSOR_DATA_TYPE = 2
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
# Where tensors can sit (for external data): GraphProto.sparse_initializer, NodeProto.attribute,
# AttributeProto t/g/tensors/graphs/sparse_tensor/sparse_tensors, SparseTensorProto values/indices,
# TensorProto.external_data.
_GRAPH_SPARSE_INITIALIZER, _NODE_ATTRIBUTE = 15, 5
_ATTRIBUTE_TENSOR, _ATTRIBUTE_GRAPH, _ATTRIBUTE_TENSORS, _ATTRIBUTE_GRAPHS = 5, 6, 11, 10
_ATTRIBUTE_SPARSE_TENSOR, _ATTRIBUTE_SPARSE_TENSORS = 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_EXTERNAL_DATA = 13
# Protobuf wire types.
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


@dataclass(frozen=True)
class GraphFacts:
    precision: str  # FP32, FP16, INT8_CPU, INT8_TENSORRT, INT4, or FOREIGN_INT8 for INT8 made elsewhere
    metadata_props: dict[str, str]


def read_graph_facts(path: str | Path) -> GraphFacts:
    """The precision and the metadata of the ONNX file at `path` (or of an ONNX Runtime format
    .ort file); ModelLoadError if it is neither."""
    with _mapped(path) as data:
        return _read_ort(data) if Path(path).suffix.lower() == ".ort" else _read(data)


def _read_ort(data) -> GraphFacts:
    """The same facts from the flatbuffers of a .ort, through the schema bindings onnxruntime
    ships with its converter (onnxruntime/tools/ort_format_model; importing it puts them on
    sys.path). Flatbuffers are read in place: the weights are never touched."""
    import onnxruntime.tools.ort_format_model  # noqa: F401
    import ort_flatbuffers_py.fbs as fbs

    try:
        model = fbs.InferenceSession.InferenceSession.GetRootAsInferenceSession(data, 0).Model()
        graph = model.Graph()
        op_types = {graph.Nodes(i).OpType().decode() for i in range(graph.NodesLength())}
        initializer_types = {graph.Initializers(i).DataType() for i in range(graph.InitializersLength())}
        props = {model.MetadataProps(i).Key().decode(): model.MetadataProps(i).Value().decode()
                 for i in range(model.MetadataPropsLength())}
    except Exception as exc:  # flatbuffers raises IndexError, struct.error, AttributeError on bad bytes
        raise ValueError(f"not an ONNX Runtime format model ({type(exc).__name__})") from None
    return GraphFacts(_precision(op_types, initializer_types, props.get(PRECISION_KEY, FP32)), props)


def _read(data) -> GraphFacts:
    op_types, initializer_types, props = set(), set(), {}
    for number, start, end in _fields(data, 0, len(data)):
        if number == _MODEL_GRAPH:
            for field, field_start, field_end in _fields(data, start, end):
                if field == _GRAPH_NODE:
                    op_types.update(_text(data, s, e) for s, e in _values(data, field_start, field_end, _NODE_OP_TYPE))
                elif field == _GRAPH_INITIALIZER:
                    initializer_types.update(_varint(data, s, e)[0] for s, e in
                                             _values(data, field_start, field_end, _TENSOR_DATA_TYPE, _VARINT))
        elif number == _MODEL_METADATA_PROPS:
            entry = {field: _text(data, s, e) for field, s, e in _fields(data, start, end)}
            props[entry.get(_ENTRY_KEY, "")] = entry.get(_ENTRY_VALUE, "")
    label = props.get(PRECISION_KEY, FP32)
    return GraphFacts(_precision(op_types, initializer_types, label), props)


def external_data_files(path: str | Path) -> frozenset[str]:
    """The `location` of every tensor the ONNX file at `path` keeps in an external file, in any
    graph, subgraph or attribute: the files ONNX Runtime will read beside it."""
    locations: set[str] = set()
    with _mapped(path) as data:
        for graph_start, graph_end in _values(data, 0, len(data), _MODEL_GRAPH):
            _graph_locations(data, graph_start, graph_end, locations)
    return frozenset(locations)


@contextlib.contextmanager
def _mapped(path: str | Path) -> Iterator[mmap.mmap]:
    """The file's bytes, mapped (weights are never copied); ModelLoadError if it is not protobuf."""
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield data
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the graph of {path} ({exc}); expected an ONNX protobuf file, or an ONNX Runtime format .ort") from None


def _graph_locations(data, start: int, end: int, found: set[str]) -> None:
    for field, field_start, field_end in _fields(data, start, end):
        if field == _GRAPH_INITIALIZER:
            _tensor_location(data, field_start, field_end, found)
        elif field == _GRAPH_SPARSE_INITIALIZER:
            _sparse_locations(data, field_start, field_end, found)
        elif field == _GRAPH_NODE:
            for attribute_start, attribute_end in _values(data, field_start, field_end, _NODE_ATTRIBUTE):
                _attribute_locations(data, attribute_start, attribute_end, found)


def _attribute_locations(data, start: int, end: int, found: set[str]) -> None:
    for field, field_start, field_end in _fields(data, start, end):
        if field in (_ATTRIBUTE_TENSOR, _ATTRIBUTE_TENSORS):
            _tensor_location(data, field_start, field_end, found)
        elif field in (_ATTRIBUTE_GRAPH, _ATTRIBUTE_GRAPHS):
            _graph_locations(data, field_start, field_end, found)
        elif field in (_ATTRIBUTE_SPARSE_TENSOR, _ATTRIBUTE_SPARSE_TENSORS):
            _sparse_locations(data, field_start, field_end, found)


def _sparse_locations(data, start: int, end: int, found: set[str]) -> None:
    for field, field_start, field_end in _fields(data, start, end):
        if field in (_SPARSE_VALUES, _SPARSE_INDICES):
            _tensor_location(data, field_start, field_end, found)


def _tensor_location(data, start: int, end: int, found: set[str]) -> None:
    for entry_start, entry_end in _values(data, start, end, _TENSOR_EXTERNAL_DATA):
        entry = {field: _text(data, s, e) for field, s, e in _fields(data, entry_start, entry_end)}
        if entry.get(_ENTRY_KEY) == "location":
            found.add(entry.get(_ENTRY_VALUE, ""))


def _precision(op_types: set[str], initializer_types: set[int], label: str) -> str:
    """Our INT8 or INT4 label when the graph is quantized, FOREIGN_INT8 when the label says otherwise
    (a weight-only file from another tool may hold 4 or 8 bits: reported as quantized elsewhere)."""
    if op_types & QUANTIZED_OPS:
        return label if label.startswith("int8-") else FOREIGN_INT8
    if op_types & WEIGHT_ONLY_OPS:
        return INT4 if label == INT4 else FOREIGN_INT8
    if TENSOR_FLOAT16 in initializer_types:
        return FP16
    return FP32


def _text(data, start: int, end: int) -> str:
    return bytes(data[start:end]).decode("utf-8", "replace")


def _values(data, start: int, end: int, wanted: int, wire_type: int = _LENGTH_DELIMITED):
    """(start, end) of each value of field `wanted` in the message data[start:end]."""
    for number, value_start, value_end in _fields(data, start, end, wire_type):
        if number == wanted:
            yield value_start, value_end


def _fields(data, start: int, end: int, wire_type: int = _LENGTH_DELIMITED):
    """(field number, value start, value end) of each field of `wire_type` in the message
    data[start:end]; fields of other wire types are stepped over unread."""
    position = start
    while position < end:
        key, position = _varint(data, position, end)
        number, kind = key >> 3, key & 7
        value_start = position
        if kind == _VARINT:
            position = _varint(data, position, end)[1]
        elif kind == _LENGTH_DELIMITED:
            length, value_start = _varint(data, position, end)
            position = value_start + length
        elif kind in (_FIXED64, _FIXED32):
            position += 8 if kind == _FIXED64 else 4
        else:  # groups (wire types 3 and 4) do not occur in onnx.proto
            raise ValueError(f"unexpected protobuf wire type {kind} at byte {value_start}")
        if position > end:
            raise ValueError(f"a field runs past the end of its message at byte {value_start}")
        if kind == wire_type:
            yield number, value_start, position


def _varint(data, position: int, end: int) -> tuple[int, int]:
    """The varint at `position` and the position after it."""
    value = shift = 0
    while True:
        if position >= end or shift > 63:
            raise ValueError(f"malformed varint at byte {position}")
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            return value, position
        shift += 7
