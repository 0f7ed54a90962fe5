"""Parity and IO on a CUDA GPU, and NVIDIA's builder on the same files. Marked `gpu`: each test
skips, saying why, where CUDA (or the builder) is absent."""

import importlib.util

import numpy as np
import pytest

from alexnet_export.errors import InputError, ProviderError
from alexnet_export.runtimes.parity import compare_runtimes, enforce
from alexnet_export.models.precisions import FP16_GATE, FP32_GATE, INT8_GATE
from alexnet_export.runtimes import OnnxRuntime, TorchRuntime
from alexnet_export.runtimes.preprocess import preprocess_batch

pytestmark = pytest.mark.gpu
CUDA = ["CUDAExecutionProvider"]


def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _ort_cuda_loads() -> bool:
    from alexnet_export.runtimes.onnx_providers import provider_loads

    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers() and provider_loads("CUDAExecutionProvider")


needs_ort_cuda = pytest.mark.skipif(not _ort_cuda_loads(), reason="ONNX Runtime's CUDA provider does not load here")
needs_torch_cuda = pytest.mark.skipif(not _torch_cuda(), reason="torch sees no CUDA GPU here")
HAS_BUILDER = any(importlib.util.find_spec(name) for name in ("tensorrt", "tensorrt_rtx_bindings"))


@pytest.fixture(scope="module")
def batches(small_metadata, real_images):
    return [preprocess_batch(real_images[i : i + 20], small_metadata.preprocessing) for i in (0, 20, 40)]


@pytest.fixture(scope="module")
def reference(small_model):
    return TorchRuntime(small_model)  # eager FP32 on the CPU: the reference every gate uses


@pytest.fixture(scope="module")
def precision_files(small_onnx, calib_dir, calibration_cache, tmp_path_factory):
    from alexnet_export.exporter.pipeline import make_precision_file
    from alexnet_export.exporter.variants import CalibrationOptions

    folder = tmp_path_factory.mktemp("gpu-files")
    calibration = CalibrationOptions(folder=calib_dir, count=64, cache_dir=calibration_cache)
    return {precision: make_precision_file(small_onnx, precision, folder / f"small.{precision}.onnx",
                                           calibration=calibration).path
            for precision in ("fp16", "int8-tensorrt")}


@needs_ort_cuda
def test_strict_fp32_on_cuda_passes_the_cpu_gate(small_onnx, reference, batches):
    runtime = OnnxRuntime(small_onnx, providers=CUDA, tf32=False)
    assert runtime.device == "CUDAExecutionProvider" and runtime.tf32 is False
    enforce(compare_runtimes(reference, runtime, batches), FP32_GATE, "strict FP32 on CUDA")


@needs_ort_cuda
@pytest.mark.parametrize("precision, gate", [("fp16", FP16_GATE), ("int8-tensorrt", INT8_GATE)])
def test_precision_files_on_cuda_pass_their_gates(precision_files, precision, gate, reference, batches):
    runtime = OnnxRuntime(precision_files[precision], providers=CUDA)
    enforce(compare_runtimes(reference, runtime, batches), gate, f"{precision} on CUDA")


@needs_ort_cuda
@needs_torch_cuda
def test_device_arrays_stay_on_the_device_and_match_numpy(small_onnx, batches):
    import torch

    runtime = OnnxRuntime(small_onnx, providers=CUDA, tf32=False)
    on_device = torch.from_numpy(batches[0]).cuda()
    logits = runtime.predict(on_device)
    assert isinstance(logits, torch.Tensor) and logits.device == on_device.device
    np.testing.assert_allclose(logits.cpu().numpy(), runtime.predict(batches[0]), rtol=1e-5, atol=1e-5)
    bad = on_device.clone()
    bad[0, 0, 0, :3] = float("nan")
    with pytest.raises(InputError, match="^input contains 3 NaN or infinite values"):
        runtime.predict(bad)


@needs_ort_cuda
def test_cuda_graph_replays_one_batch_size(small_onnx, batches):
    plain = OnnxRuntime(small_onnx, providers=CUDA, tf32=False)
    graph = OnnxRuntime(small_onnx, providers=CUDA, tf32=False, enable_cuda_graph=True)
    first, second = batches[0][:4], batches[1][:4]
    for batch in (first, second, first):  # capture, replay with new data, replay again
        np.testing.assert_allclose(graph.predict(batch), plain.predict(batch), rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match=r"CUDA graph was captured for \(4, 3, 224, 224\)"):
        graph.predict(batches[0][:5])


@needs_torch_cuda
@pytest.mark.parametrize("options, gate", [({"tf32": False}, FP32_GATE),
                                           ({"dtype": "float16", "channels_last": True}, FP16_GATE)])
def test_eager_torch_on_cuda(small_model, reference, batches, options, gate):
    runtime = TorchRuntime(small_model, device="cuda", **options)
    assert runtime.cuda_device == 0 and runtime.device.startswith("torch eager cuda:0 (")
    enforce(compare_runtimes(reference, runtime, batches), gate, f"torch eager CUDA {options}")


@needs_torch_cuda
@pytest.mark.skipif(not HAS_BUILDER, reason="neither tensorrt nor TensorRT for RTX (tensorrt_rtx_bindings) is installed")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8-tensorrt"])
def test_nvidia_builder_parses_and_builds_each_file(small_onnx, precision_files, precision, tmp_path):
    from alexnet_export.exporter.tensorrt import build_engine
    from alexnet_export.runtimes.tensorrt import TensorRTRuntime
    from alexnet_export.runtimes.tensorrt_support import RTX_COMPUTE_CAPABILITIES, import_tensorrt, is_rtx

    source = small_onnx if precision == "fp32" else precision_files[precision]
    built = build_engine(source, tmp_path / "small.engine")
    assert built.precision == precision and built.path.stat().st_size > 0
    if is_rtx(import_tensorrt()) and built.gpu["compute_capability"] not in RTX_COMPUTE_CAPABILITIES:
        with pytest.raises(ProviderError, match="runs engines on compute capability"):
            TensorRTRuntime(built.path)
        return
    logits = TensorRTRuntime(built.path).predict(np.zeros((1, 3, 224, 224), np.float32))
    assert logits.shape == (1, 10) and np.isfinite(logits).all()


@needs_torch_cuda
def test_pixel_file_on_cuda_and_as_an_engine(pixel_onnx, pixel_runtime, real_images, tmp_path):
    """A uint8 pixel file (onnx --input-format uint8) through ONNX Runtime's CUDA provider (strict FP32)
    and, where the builder is installed, a TensorRT engine: the pixel file's CPU logits, within their gates."""
    from alexnet_export.runtimes.parity import compare_logits
    from alexnet_export.runtimes.preprocess import load_image, resize_and_crop

    spec = pixel_runtime.metadata.preprocessing
    pixels = np.stack([resize_and_crop(load_image(image), spec) for image in real_images[:16]])
    expected = pixel_runtime.predict(pixels)
    candidates = [(OnnxRuntime(pixel_onnx, CUDA, tf32=False), FP32_GATE)] if _ort_cuda_loads() else []
    if HAS_BUILDER:
        from alexnet_export.exporter.tensorrt import build_engine
        from alexnet_export.runtimes.tensorrt import TensorRTRuntime

        # TensorRT may run FP32 layers in TF32 (its default): the FP16 gate's tolerance, as bench's TF32 rows.
        candidates.append((TensorRTRuntime(build_engine(pixel_onnx, tmp_path / "pixels.engine").path), FP16_GATE))
    if not candidates:
        pytest.skip("neither ONNX Runtime's CUDA provider nor a TensorRT builder here")
    for runtime, gate in candidates:
        enforce(compare_logits(expected, runtime.predict(pixels)), gate, f"the pixel file on {runtime.device}")
        with pytest.raises(InputError, match="this model takes uint8 RGB pixels"):
            runtime.predict(np.zeros((1, 3, 224, 224), np.float32))
