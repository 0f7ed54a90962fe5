"""The roofline's MatMul model ships as bytes in bench/machine.py (bench needs no onnx): it is what onnx.helper builds."""

import numpy as np
import onnxruntime as ort
import pytest

from alexnet_export.bench.machine import MATMUL_MODEL, matmul_gflops

onnx = pytest.importorskip("onnx", reason="onnx comes with the export extra")


def test_shipped_matmul_model_is_what_onnx_helper_builds():
    from onnx import TensorProto, helper

    square = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", "n"]) for name in "abc"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul", square[:2], square[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8,
                              producer_name="alexnet-export")
    assert MATMUL_MODEL == model.SerializeToString()
    onnx.checker.check_model(onnx.load_from_string(MATMUL_MODEL))


def test_matmul_model_multiplies_any_square_size():
    session = ort.InferenceSession(MATMUL_MODEL, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    a, b = rng.random((64, 64), np.float32), rng.random((64, 64), np.float32)
    np.testing.assert_allclose(session.run(None, {"a": a, "b": b})[0], a @ b, rtol=1e-5)
    assert matmul_gflops(1, sizes=(128,), repeats=2) > 0
