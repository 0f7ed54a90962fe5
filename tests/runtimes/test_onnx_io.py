"""OnnxRuntime's IO: IO binding, DLPack arrays in and out, the device-side finiteness check, TF32 and
CUDA graph options; what a CPU can run runs here, the CUDA paths are in test_gpu.py."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from alexnet_export.errors import InputError, OptionError, ProviderError
from alexnet_export.runtimes import OnnxRuntime
from alexnet_export.runtimes.onnx.arrays import FINITE_CHECK_MODEL, FiniteCheck

CUDA_IN_BUILD = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(1).normal(size=(3, 3, 224, 224)).astype(np.float32)


def test_the_embedded_finite_check_is_the_graph_it_says():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "c", "h", "w"])
    count = helper.make_tensor_value_info("count", TensorProto.INT32, [])
    nodes = [helper.make_node("Sub", ["x", "x"], ["d"]), helper.make_node("Equal", ["d", "d"], ["finite"]),
             helper.make_node("Not", ["finite"], ["bad"]),
             helper.make_node("Cast", ["bad"], ["bad32"], to=TensorProto.INT32),
             helper.make_node("ReduceSum", ["bad32"], ["count"], keepdims=0)]
    graph = helper.make_graph(nodes, "finite_check", [x], [count])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8,
                              producer_name="alexnet-export")
    assert model.SerializeToString() == FINITE_CHECK_MODEL


def test_finite_check_counts_nan_and_infinities(batch):
    check = FiniteCheck(["CPUExecutionProvider"])
    bad = batch.copy()
    bad.flat[[3, 70, 9000]] = [np.nan, np.inf, -np.inf]
    assert check.count(ort.OrtValue.ortvalue_from_numpy(batch)) == 0
    assert check.count(ort.OrtValue.ortvalue_from_numpy(bad)) == 3
    with pytest.raises(InputError, match="^input contains 3 NaN or infinite values; expected finite numbers$"):
        check.require(ort.OrtValue.ortvalue_from_numpy(bad))


def test_torch_tensors_in_give_torch_tensors_out(onnx_runtime, batch):
    expected = onnx_runtime.predict(batch)
    logits = onnx_runtime.predict(torch.from_numpy(batch))
    assert isinstance(logits, torch.Tensor) and logits.device.type == "cpu" and logits.dtype == torch.float32
    np.testing.assert_array_equal(logits.numpy(), expected)
    # A strided view is read as it is (numpy's view of it), as for numpy input.
    transposed = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 1, 3, 2))).transpose(2, 3)
    np.testing.assert_array_equal(onnx_runtime.predict(transposed).numpy(), expected)


@pytest.mark.parametrize("make, message", [
    (lambda b: torch.from_numpy(b).double(), "dtype is float64; expected float32"),
    (lambda b: torch.from_numpy(b)[:, :1], "1 channels"),
    (lambda b: torch.from_numpy(np.where(np.arange(b.size).reshape(b.shape) == 2, np.inf, b).astype(np.float32)),
     "^input contains 1 NaN or infinite values"),
    (lambda b: torch.from_numpy(b).bfloat16(), "cannot read this Tensor through DLPack"),
])
def test_torch_tensors_get_the_numpy_checks(onnx_runtime, batch, make, message):
    with pytest.raises(InputError, match=message):
        onnx_runtime.predict(make(batch))


def test_tf32_is_accepted_on_the_cpu_and_changes_nothing(small_onnx, onnx_runtime, batch):
    strict = OnnxRuntime(small_onnx, providers=["CPUExecutionProvider"], tf32=False)
    assert strict.tf32 is None and strict.cuda_device is None  # nothing runs on CUDA
    np.testing.assert_array_equal(strict.predict(batch), onnx_runtime.predict(batch))


def test_cuda_graph_on_the_cpu_says_it_needs_cuda(small_onnx):
    with pytest.raises(ProviderError, match=r"^enable_cuda_graph needs the CUDA provider to run the model;"
                                            r" providers here are \['CPUExecutionProvider'\]"):
        OnnxRuntime(small_onnx, providers=["CPUExecutionProvider"], enable_cuda_graph=True)


@pytest.mark.skipif(not CUDA_IN_BUILD, reason="this onnxruntime build has no CUDA provider")
def test_tf32_given_twice_differently_is_refused_before_loading(small_onnx):
    with pytest.raises(OptionError, match="^CUDAExecutionProvider option use_tf32=1 contradicts use_tf32=0"):
        OnnxRuntime(small_onnx, providers=[("CUDAExecutionProvider", {"use_tf32": "1"})], tf32=False)
    with pytest.raises(OptionError, match="^tf32=False is set on ONNX Runtime's CUDA provider only"):
        OnnxRuntime(small_onnx, providers=["TensorrtExecutionProvider", "CUDAExecutionProvider"], tf32=False)


def test_without_any_tensorrt_the_error_names_both_builders():
    import importlib.util

    from alexnet_export.runtimes.tensorrt.support import TensorRTUnavailable, import_tensorrt

    if any(importlib.util.find_spec(name) for name in ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings")):
        pytest.skip("a TensorRT is installed here")
    with pytest.raises(TensorRTUnavailable, match=r"^TensorRT is not installed .*, nor TensorRT for RTX"
                                                  r" \(tensorrt_rtx, tensorrt_rtx_bindings\); on a machine with an NVIDIA GPU"
                                                  r".*pip install 'alexnet-export\[tensorrt-rtx\]'"):
        import_tensorrt()
