"""`inspect`: each layer's precision read from TensorRT's parsed strongly typed network, on the
exporter's own files and on an engine through its sidecar (TensorRT for RTX parses on the CPU)."""

import json
import shutil

import pytest

from alexnet_export.errors import ModelLoadError
from alexnet_export.exporter.tensorrt.inspect import inspect_model
from alexnet_export.runtimes.verification.layers import LAYERS, WEIGHTED
from alexnet_export.exporter.tensorrt.settings import default_targets
from alexnet_export.models.spec import FLOAT_LAYERS_KEY
from alexnet_export.runtimes.tensorrt.sidecar import Targets, read_sidecar, sidecar_path
from alexnet_export.runtimes.onnx.reader import read_graph_facts

POOLS = ("pool1", "pool2", "pool5")
NORMS = ("norm1", "norm2")


def _precisions(inspection) -> dict[str, str]:
    return {layer.name: layer.precision for layer in inspection.layers}


def test_int8_file_runs_every_conv_and_fc_in_int8_and_lrn_in_fp32(rtx, precision_onnx):
    inspection = inspect_model(precision_onnx["int8"], builder="tensorrt-rtx")
    assert [layer.name for layer in inspection.layers] == [layer.name for layer in LAYERS]
    precisions = _precisions(inspection)
    assert {name: precisions[name] for name in WEIGHTED} == dict.fromkeys(WEIGHTED, "int8")
    assert {name: precisions[name] for name in (*NORMS, *POOLS)} == dict.fromkeys((*NORMS, *POOLS), "fp32")
    assert not any(layer.kept_float for layer in inspection.layers)
    kinds = {layer.name: layer.operation for layer in inspection.layers}
    assert kinds["conv1"] == "CONVOLUTION" and kinds["fc6"] == "MATRIX_MULTIPLY" and kinds["norm1"] == "LRN"
    assert inspection.file_precision == "int8-tensorrt" and inspection.parser == f"TensorRT for RTX {rtx.__version__}"
    assert inspection.input == {"name": "images", "dtype": "float32", "shape": [-1, 3, 224, 224]}
    assert not inspection.from_engine and inspection.batch == {"min": 1, "opt": 8, "max": 32}  # trt's defaults
    assert inspection.targets == default_targets(rtx)


def test_kept_float_layers_are_float_and_the_rest_int8(rtx, precision_onnx):
    kept = read_graph_facts(precision_onnx["int8-kept"]).metadata_props[FLOAT_LAYERS_KEY].split(",")
    inspection = inspect_model(precision_onnx["int8-kept"], builder="tensorrt-rtx")
    precisions = _precisions(inspection)
    assert kept and {name: precisions[name] for name in kept} == dict.fromkeys(kept, "fp32")
    assert {name: precisions[name] for name in WEIGHTED if name not in kept} == {
        name: "int8" for name in WEIGHTED if name not in kept}
    assert [layer.name for layer in inspection.layers if layer.kept_float] == kept


def test_fp16_file_runs_in_fp16_but_its_lrn(rtx, precision_onnx):
    precisions = _precisions(inspect_model(precision_onnx["fp16"], builder="tensorrt-rtx"))
    assert {name: precisions[name] for name in NORMS} == dict.fromkeys(NORMS, "fp32")
    others = [layer.name for layer in LAYERS if layer.name not in NORMS]
    assert {name: precisions[name] for name in others} == dict.fromkeys(others, "fp16")


def test_an_engine_is_inspected_through_its_sidecar_and_source(rtx, trt_engines, tmp_path):
    engine = trt_engines["int8"]
    inspection = inspect_model(engine.path)
    sidecar = read_sidecar(engine.path)
    assert inspection.from_engine and inspection.batch == sidecar["batch"] == {"min": 1, "opt": 2, "max": 4}
    assert inspection.targets == Targets.from_json(sidecar["targets"])
    assert inspection.onnx.resolve() == (engine.path.parent / sidecar["source_onnx"]).resolve()
    assert inspection.built_by == f"TensorRT for RTX {rtx.__version__}, ahead of time without a GPU"
    assert _precisions(inspection)["conv3"] == "int8"
    pixels = inspect_model(trt_engines["pixels"].path)
    assert pixels.input == {"name": "images", "dtype": "uint8", "shape": [-1, 224, 224, 3]}
    assert set(_precisions(pixels).values()) == {"fp32"}
    # A source that changed since the build is refused: its layers would not be the engine's.
    copy = tmp_path / "copy.engine"
    shutil.copy(engine.path, copy)
    changed = {**sidecar.to_json(), "source_onnx": str(inspection.onnx.resolve()), "source_onnx_sha256": "0" * 64}
    sidecar_path(copy).write_text(json.dumps(changed))
    with pytest.raises(ModelLoadError, match=r"has changed since copy.engine was built from it"):
        inspect_model(copy)


def test_inspect_refuses_what_it_cannot_read(tmp_path):
    (tmp_path / "model.xml").write_text("<net/>")
    with pytest.raises(ModelLoadError, match="neither an .onnx file nor an engine"):
        inspect_model(tmp_path / "model.xml")
    with pytest.raises(ModelLoadError, match="does not exist"):
        inspect_model(tmp_path / "absent.onnx")
