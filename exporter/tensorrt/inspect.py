"""What TensorRT will compute each layer in, known before any GPU: the ONNX (or an engine's source
ONNX, through its sidecar) parsed into TensorRT's strongly typed network, read layer by layer under
the toolkit's names (runtimes/verification/layers.py: conv1..fc8, pool, norm).

In a strongly typed network the types are the file's, not the builder's choice (TensorRT 11 and
TensorRT for RTX always build so; TensorRT 10 with its STRONGLY_TYPED flag). A Conv or Gemm whose
activation and weights both arrive through DequantizeLinear from INT8 runs in INT8 (TensorRT fuses
the Q/DQ pair into the layer); any other layer runs in the type of the tensor it reads: the FP16
file's convolutions in FP16 and its LRN, cast back, in FP32; the INT8 file's LRN and pools, and its
kept-float layers, in FP32. The kernels themselves are chosen later (by TensorRT on its GPU, by
TensorRT for RTX when the engine loads); the precision is fixed here.
API: ILayer (type, metadata "[ONNX Layer: NAME]" set by the ONNX parser, get_input), ITensor.dtype.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alexnet_export.errors import ModelArgumentError, ModelLoadError
from alexnet_export.events import Listener, ignore
from alexnet_export.runtimes.verification.layers import WEIGHTED, find_layers
from alexnet_export.exporter.tensorrt.convert import parse_onnx
from alexnet_export.exporter.tensorrt.settings import BuildSettings, default_targets
from alexnet_export.hashing import file_sha256
from alexnet_export.models.spec import FLOAT_LAYERS_KEY
from alexnet_export.runtimes.tensorrt.sidecar import Targets, builder_description, read_sidecar
from alexnet_export.runtimes.onnx.reader import read_graph_facts
from alexnet_export.runtimes.table import ENGINE, ONNX
from alexnet_export.runtimes.tensorrt.support import (
    TensorRTUnavailable,
    builder_named,
    builder_of,
    gpu_identity,
    import_builder,
    import_tensorrt,
    tensorrt_log,
    tensorrt_name,
)

_ONNX_NODE = re.compile(r"\[ONNX Layer: ([^\]]+)\]")
# The layer that computes each toolkit layer, among those the parser made from its ONNX node.
_COMPUTING = ("CONVOLUTION", "MATRIX_MULTIPLY", "POOLING", "LRN", "ELEMENTWISE")
_WORDS = {"FLOAT": "fp32", "HALF": "fp16", "BF16": "bf16"}  # other types by their own name: int8, fp8 ...


@dataclass(frozen=True)
class LayerPrecision:
    name: str  # conv1
    node: str  # the ONNX node
    operation: str  # TensorRT's layer type: CONVOLUTION
    precision: str  # fp32, fp16, int8 ...
    kept_float: bool  # the INT8 file keeps it in float on purpose (--keep-float)


@dataclass(frozen=True)
class Inspection:
    model: Path  # what was asked about: an .onnx or an engine
    onnx: Path  # the file parsed
    file_precision: str  # the file's, as every runtime reads it (runtimes/onnx/reader.py)
    parser: str  # "TensorRT for RTX 1.7.1.116"
    input: dict  # name, dtype, shape (-1: the batch)
    batch: dict  # min, opt, max
    from_engine: bool  # batch and targets are the engine's; else what `trt` would build by default
    targets: Targets | None  # None: the GPU TensorRT builds on, and there is none here
    built_by: str | None  # the engine's builder and where it built, from its sidecar
    layers: tuple[LayerPrecision, ...]

    def to_json(self) -> dict:
        targets = None if self.targets is None else {**self.targets.to_json(), "description": self.targets.describe()}
        return {
            "model": str(self.model), "onnx": str(self.onnx), "precision": self.file_precision, "parser": self.parser,
            "input": self.input, "batch": self.batch, "from_engine": self.from_engine, "targets": targets,
            "built_by": self.built_by,
            "layers": [{"name": layer.name, "node": layer.node, "operation": layer.operation,
                        "precision": layer.precision, "kept_float": layer.kept_float} for layer in self.layers],
        }

    def table(self) -> str:
        whose = "the engine's" if self.from_engine else "`trt`'s default"
        targets = self.targets.describe() if self.targets is not None else "the GPU TensorRT builds on"
        shape = ", ".join("batch" if size == -1 else str(size) for size in self.input["shape"])
        lines = [f"{self.model}: {self.file_precision}, parsed by {self.parser} (strongly typed)"
                 + (f" from {self.onnx.name}" if self.onnx != self.model else ""),
                 f"  input    {self.input['name']}: {self.input['dtype']} [{shape}]",
                 f"  profile  batch {self.batch['min']}..{self.batch['max']}, optimised for {self.batch['opt']} ({whose})",
                 f"  targets  {targets} ({whose})"]
        if self.built_by:
            lines.append(f"  built by {self.built_by}")
        rows = [("layer", "precision", "TensorRT layer", "ONNX node")]
        rows += [(layer.name, layer.precision + (" (kept float)" if layer.kept_float else ""), layer.operation,
                  layer.node) for layer in self.layers]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3]
                  for row in rows]
        return "\n".join(lines)


def inspect_model(path: str | Path, *, builder: str | None = None, on_event: Listener = ignore) -> Inspection:
    """Each layer's precision in TensorRT, the input, the batch profile and the targets of `path`:
    an .onnx (with `trt`'s defaults for profile and targets) or an engine (its sidecar's, and its
    source ONNX, which must still be the file it was built from).

    builder: for an .onnx, which parser ("tensorrt", "tensorrt-rtx"; None: the one `trt` would use);
    an engine is read with the builder that made it.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelArgumentError(f"{path} does not exist or is not a file", argument="path")
    if path.suffix.lower() in ENGINE.suffixes:
        sidecar = read_sidecar(path)
        onnx_path = _source_onnx(path, sidecar)
        trt = import_builder(builder_named(sidecar["builder"]["name"]))
        batch, targets, built_by = sidecar["batch"], Targets.from_json(sidecar["targets"]), builder_description(sidecar)
    elif path.suffix.lower() in ONNX.suffixes:
        onnx_path, trt = path, import_tensorrt(builder)
        batch, targets, built_by = BuildSettings().batch, _default_targets(trt), None
    else:
        raise ModelArgumentError(f"{path.name} is neither an .onnx file nor an engine ({', '.join(ENGINE.suffixes)})",
                             argument="path")
    facts = read_graph_facts(onnx_path)
    with tensorrt_log(trt).listening(on_event):
        _, network, parser = parse_onnx(trt, onnx_path)  # the parser owns the weights the network points at
        tensor = network.get_input(0)
        input_tensor = {"name": tensor.name, "dtype": np.dtype(trt.nptype(tensor.dtype)).name, "shape": list(tensor.shape)}
        kept = set(filter(None, facts.metadata_props.get(FLOAT_LAYERS_KEY, "").split(",")))
        layers = layer_precisions(network, onnx_path, kept)
    return Inspection(path, onnx_path, facts.precision, tensorrt_name(trt), input_tensor, dict(batch),
                      path != onnx_path, targets, built_by, layers)


def layer_precisions(network, onnx_path: Path, kept_float: set[str] = frozenset()) -> tuple[LayerPrecision, ...]:
    """Each toolkit layer of the parsed `network`, with the precision TensorRT computes it in."""
    import onnx

    graph_layers = find_layers(onnx.load(str(onnx_path), load_external_data=False))
    trt_layers = [network.get_layer(index) for index in range(network.num_layers)]
    producers = {layer.get_output(i).name: layer for layer in trt_layers for i in range(layer.num_outputs)}
    by_node: dict[str, list] = {}
    for layer in trt_layers:
        for node in _ONNX_NODE.findall(layer.metadata or "")[:1]:
            by_node.setdefault(node, []).append(layer)
    found = []
    for name, graph_layer in graph_layers.items():
        candidates = by_node.get(graph_layer.node, [])
        computing = [layer for layer in candidates if _type(layer) in _COMPUTING]
        if not computing:
            raise ModelLoadError(f"TensorRT's network has no layer for {name} (ONNX node {graph_layer.node})")
        layer = min(computing, key=lambda candidate: _COMPUTING.index(_type(candidate)))
        precision = _precision(layer, producers, weighted=name in WEIGHTED)
        found.append(LayerPrecision(name, graph_layer.node, _type(layer), precision, name in kept_float))
    return tuple(found)


def _precision(layer, producers: dict, weighted: bool) -> str:
    """The quantized type where a weighted layer's activation and weights both come through
    DequantizeLinear (TensorRT then runs the layer itself quantized); else the type it reads."""
    if weighted and layer.num_inputs >= 2:
        sources = [producers.get(layer.get_input(i).name) for i in range(2)]
        if all(source is not None and _type(source) == "DEQUANTIZE" for source in sources):
            quantized = {_word(source.get_input(0).dtype) for source in sources}
            if len(quantized) == 1:
                return quantized.pop()
    return _word(layer.get_input(0).dtype)


def _source_onnx(engine: Path, sidecar: dict) -> Path:
    recorded = sidecar.get("source_onnx")
    if not recorded:
        raise ModelLoadError(f"{engine}'s sidecar names no source ONNX (an older build); rebuild it with"
                             " `alexnet-export trt`, or inspect the .onnx it was built from", argument="path")
    source = engine.parent / recorded
    if not source.is_file():
        raise ModelLoadError(f"{engine} was built from {source}, which is gone; inspect needs the file the"
                             " engine was built from", argument="path")
    if file_sha256(source) != sidecar.get("source_onnx_sha256"):
        raise ModelLoadError(f"{source} has changed since {engine.name} was built from it (its sha256 differs);"
                             " inspect the engine after rebuilding it", argument="path")
    return source


def _default_targets(trt) -> Targets | None:
    if builder_of(trt).ahead_of_time:
        return default_targets(trt)
    try:  # TensorRT builds for the GPU it is on
        gpu = gpu_identity()
    except TensorRTUnavailable:
        return None
    return Targets((gpu.compute_capability,), gpu_name=gpu.name)


def _type(layer) -> str:
    return getattr(layer.type, "name", str(layer.type).rsplit(".", 1)[-1])


def _word(dtype) -> str:
    name = getattr(dtype, "name", str(dtype).rsplit(".", 1)[-1])
    return _WORDS.get(name, name.lower())
