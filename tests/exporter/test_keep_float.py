"""Layers kept in float in INT8 files, on the hard case of tests/conftest.py (conv3 channel 5 x300,
conv4 /300): what the files hold, their gates, and the automatic search."""

import onnx
import pytest

from alexnet_export.runtimes.verification.layers import find_layers
from alexnet_export.exporter.pipeline import make_precision_file
from alexnet_export.exporter.calibration.images import CalibrationOptions
from alexnet_export.models.spec import FLOAT_LAYERS_KEY

KEPT = ("conv1", "conv4", "fc6")  # after the graph input, after a Conv, after pool5 and its flattening


@pytest.fixture(scope="module")
def hard_fp32(hard_fp32_onnx):
    return hard_fp32_onnx


@pytest.fixture(scope="module")
def calibration(calib_dir, calibration_cache):
    return CalibrationOptions(calib_dir, 64, cache_dir=calibration_cache)


@pytest.mark.parametrize("precision", ["int8-tensorrt", "int8-cpu"])
def test_kept_layers_read_float_weights_and_float_inputs(tmp_path, hard_fp32, calibration, precision):
    result = make_precision_file(hard_fp32, precision, tmp_path / "kept.onnx", calibration=calibration,
                                 keep_float=["fc6", "conv4", "conv1"])
    assert result.float_layers == KEPT and result.report.min_cosine >= 0.98  # the gate passed
    model = onnx.load(str(result.path))
    assert {p.key: p.value for p in model.metadata_props}[FLOAT_LAYERS_KEY] == ",".join(KEPT)
    producers = {output: node for node in model.graph.node for output in node.output}
    nodes = {node.name: node for node in model.graph.node}
    for name, layer in find_layers(model).items():
        node = nodes[layer.node]
        if node.op_type not in ("Conv", "Gemm"):
            continue
        weight = producers.get(node.input[1])
        activation = producers.get(node.input[0])
        if name in KEPT:
            assert weight is None  # the float initializer itself
            # Back to the previous weighted layer (or the input): no Q/DQ on the way.
            while activation is not None and activation.op_type not in ("Conv", "Gemm"):
                assert activation.op_type not in ("QuantizeLinear", "DequantizeLinear"), (name, activation.name)
                activation = producers.get(activation.input[0])
        else:  # the file's rules hold everywhere else: INT8 weights and inputs
            assert weight.op_type == "DequantizeLinear" and activation.op_type == "DequantizeLinear", name


def test_auto_keep_float_finds_the_layer_that_reads_the_crushed_tensor(tmp_path, hard_fp32, calibration):
    result = make_precision_file(hard_fp32, "int8-cpu", tmp_path / "auto.onnx", calibration=calibration,
                                 auto_keep_float=True)
    search = result.search
    assert result.float_layers == search.layers == ("conv4",)
    assert search.analysis.worst.layer == "conv3"  # the noise enters at conv3's output, conv4's input
    assert search.before.min_cosine < 0.98 <= search.after.min_cosine == result.report.min_cosine
    assert [layers for layers, _ in search.tried] == [("conv4",)]  # the first try passed: one layer is the fewest
    assert 0 < search.speed.int8_ms and 0 < search.speed.kept_ms and 0 < search.speed.fp32_ms
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auto.onnx"]  # candidates and timing files cleaned up
