"""FP16 and INT8 files: their structure against TensorRT's rules, and their numbers on the CPU."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from alexnet_export.exporter.calibration.ranges import calibration_ranges, load_calibration_set
from alexnet_export.exporter.onnx.quantize import to_fp16, to_int8_cpu, to_int8_tensorrt
from alexnet_export.runtimes.verification.parity import compare_runtimes, enforce
from alexnet_export.models.precisions import FP16_GATE, INT8_GATE
from alexnet_export.runtimes import OnnxRuntime


@pytest.fixture(scope="module")
def calibration_set(calib_dir, small_metadata):
    return load_calibration_set(calib_dir, 64, small_metadata.preprocessing)


@pytest.fixture(scope="module")
def ranges(small_onnx, calibration_set, calibration_cache):
    return calibration_ranges(small_onnx, calibration_set, "percentile", calibration_cache)


@pytest.fixture(scope="module")
def fp16_path(small_onnx, tmp_path_factory):
    path = tmp_path_factory.mktemp("fp16") / "model.fp16.onnx"
    to_fp16(small_onnx, path)
    return path


@pytest.fixture(scope="module")
def trt_int8_path(small_onnx, ranges, tmp_path_factory):
    path = tmp_path_factory.mktemp("int8trt") / "model.int8.onnx"
    to_int8_tensorrt(small_onnx, ranges, path)
    return path


@pytest.fixture(scope="module")
def cpu_int8_path(small_onnx, ranges, tmp_path_factory):
    path = tmp_path_factory.mktemp("int8cpu") / "model.int8-cpu.onnx"
    to_int8_cpu(small_onnx, ranges, path)
    return path


def _producers(graph):
    return {output: node for node in graph.node for output in node.output}


def _consumers(graph, name):
    return [node for node in graph.node if name in node.input]


def _initializers(graph):
    return {t.name: t for t in graph.initializer}


def test_fp16_types(fp16_path):
    graph = onnx.load(str(fp16_path)).graph
    assert graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    initializers, producers = _initializers(graph), _producers(graph)
    for node in graph.node:
        if node.op_type in ("Conv", "Gemm"):
            assert initializers[node.input[1]].data_type == TensorProto.FLOAT16, node.name
    lrns = [n for n in graph.node if n.op_type == "LRN"]
    assert len(lrns) == 2
    for lrn in lrns:
        cast_in = producers[lrn.input[0]]
        assert cast_in.op_type == "Cast" and helper.get_attribute_value(cast_in.attribute[0]) == TensorProto.FLOAT
        (cast_out,) = _consumers(graph, lrn.output[0])
        assert cast_out.op_type == "Cast" and helper.get_attribute_value(cast_out.attribute[0]) == TensorProto.FLOAT16


def test_fp16_passes_its_gate_on_real_images(fp16_path, torch_runtime, calibration_set):
    report = compare_runtimes(torch_runtime, OnnxRuntime(fp16_path), [calibration_set.holdout])
    enforce(report, FP16_GATE, "fp16")
    assert report.min_cosine > 0.9999 and 0 < report.max_abs < 0.05


def test_int8_tensorrt_follows_tensorrts_qdq_rules(trt_int8_path):
    graph = onnx.load(str(trt_int8_path)).graph
    initializers, producers = _initializers(graph), _producers(graph)
    assert all(t.data_type != TensorProto.UINT8 for t in graph.initializer)
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq
    for node in qdq:
        zero_point = initializers[node.input[2]]
        assert zero_point.data_type == TensorProto.INT8 and not numpy_helper.to_array(zero_point).any(), node.name
    weighted = [n for n in graph.node if n.op_type in ("Conv", "Gemm")]
    assert len(weighted) == 8
    for node in weighted:
        activation_dq, weight_dq = producers[node.input[0]], producers[node.input[1]]
        assert activation_dq.op_type == weight_dq.op_type == "DequantizeLinear", node.name
        # activations: per-tensor scale, fed by a QuantizeLinear of the float tensor
        assert numpy_helper.to_array(initializers[activation_dq.input[1]]).size == 1
        assert producers[activation_dq.input[0]].op_type == "QuantizeLinear"
        # weights: INT8 constants, one scale per output channel on axis 0
        weight = initializers[weight_dq.input[0]]
        assert weight.data_type == TensorProto.INT8
        scales = numpy_helper.to_array(initializers[weight_dq.input[1]])
        assert scales.shape == (weight.dims[0],)
        axis = next((helper.get_attribute_value(a) for a in weight_dq.attribute if a.name == "axis"), 1)
        assert axis == 0, node.name
        if node.op_type == "Gemm":
            assert next(helper.get_attribute_value(a) for a in node.attribute if a.name == "transB") == 1
        # biases stay float
        assert initializers[node.input[2]].data_type == TensorProto.FLOAT
    for node in qdq:
        consumers = {c.op_type for c in _consumers(graph, node.output[0])}
        if node.op_type == "DequantizeLinear":
            assert consumers <= {"Conv", "Gemm"}, node.name  # Q/DQ only on weighted layers' inputs
        else:
            assert consumers == {"DequantizeLinear"}
    # outputs of weighted layers, the logits among them, stay float
    for node in weighted:
        assert all(c.op_type != "QuantizeLinear" for c in _consumers(graph, node.output[0])), node.name
    assert producers["logits"].op_type == "Gemm"
    for lrn in (n for n in graph.node if n.op_type == "LRN"):
        assert producers[lrn.input[0]].op_type == "MaxPool"


@pytest.mark.parametrize("which", ["trt_int8_path", "cpu_int8_path"])
def test_int8_files_pass_the_gate_on_held_out_real_images(request, which, torch_runtime, calibration_set):
    path = request.getfixturevalue(which)
    report = compare_runtimes(torch_runtime, OnnxRuntime(path, providers=["CPUExecutionProvider"]),
                              [calibration_set.holdout])
    enforce(report, INT8_GATE, which)
    assert report.mean_cosine >= 0.99 and report.min_cosine >= 0.98
    assert report.max_abs > 1e-3  # it really is quantized


def test_cpu_int8_uses_unsigned_activations_and_pooled_lrn(cpu_int8_path, trt_int8_path):
    graph = onnx.load(str(cpu_int8_path)).graph
    assert not any(n.op_type == "LRN" for n in graph.node)
    assert sum(n.op_type == "AveragePool" for n in graph.node) == 2
    assert sum(n.op_type == "LRN" for n in onnx.load(str(trt_int8_path)).graph.node) == 2
    initializers = _initializers(graph)
    activation_zero_points = {initializers[n.input[2]].data_type for n in graph.node if n.op_type == "QuantizeLinear"}
    assert activation_zero_points == {TensorProto.UINT8}


def test_int8_is_smaller_and_keeps_metadata(small_onnx, trt_int8_path):
    assert trt_int8_path.stat().st_size < small_onnx.stat().st_size / 3
    props = {p.key: p.value for p in onnx.load(str(trt_int8_path)).metadata_props}
    assert props["alexnet_export.num_classes"] == "10" and "percentile" in props["alexnet_export.calibration"]
    assert OnnxRuntime(trt_int8_path).metadata.labels[0] == "class_0"


def test_int8_gate_fails_on_a_degraded_model(trt_int8_path, torch_runtime, calibration_set):
    from alexnet_export.errors import ParityError

    runtime = OnnxRuntime(trt_int8_path)
    inputs = calibration_set.holdout
    noisy = np.random.default_rng(0).normal(0, 1, size=inputs.shape).astype(np.float32)
    report = compare_runtimes(torch_runtime, runtime, [inputs])
    shifted = type("Shifted", (), {"predict": lambda self, batch: runtime.predict(batch + noisy[: len(batch)])})()
    with pytest.raises(ParityError, match="cosine"):
        enforce(compare_runtimes(torch_runtime, shifted, [inputs]), INT8_GATE, "degraded")
    assert report.failures(INT8_GATE) == []
