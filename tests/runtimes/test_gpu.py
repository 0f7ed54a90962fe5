"""Parity and IO on a CUDA GPU, and the engines every test run builds (tests/conftest.py) run on it.
Marked `gpu`: each test skips, saying why, where CUDA, cuda-python or the builder is absent, or
where the GPU is outside the engines' targets."""

import numpy as np
import pytest

from alexnet_export.errors import InputError, ModelLoadError
from alexnet_export.runtimes.verification.parity import compare_runtimes, enforce
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
    from alexnet_export.runtimes.onnx.providers import provider_loads

    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers() and provider_loads("CUDAExecutionProvider")


needs_ort_cuda = pytest.mark.skipif(not _ort_cuda_loads(), reason="ONNX Runtime's CUDA provider does not load here")
needs_torch_cuda = pytest.mark.skipif(not _torch_cuda(), reason="torch sees no CUDA GPU here")


@pytest.fixture(scope="module")
def batches(small_metadata, real_images):
    return [preprocess_batch(real_images[i : i + 20], small_metadata.preprocessing) for i in (0, 20, 40)]


@pytest.fixture(scope="module")
def reference(small_model):
    return TorchRuntime(small_model)  # eager FP32 on the CPU: the reference every gate uses


@needs_ort_cuda
def test_strict_fp32_on_cuda_passes_the_cpu_gate(small_onnx, reference, batches):
    runtime = OnnxRuntime(small_onnx, providers=CUDA, tf32=False)
    assert runtime.device == "CUDAExecutionProvider" and runtime.tf32 is False
    enforce(compare_runtimes(reference, runtime, batches), FP32_GATE, "strict FP32 on CUDA")


@needs_ort_cuda
@pytest.mark.parametrize("precision, gate", [("fp16", FP16_GATE), ("int8", INT8_GATE)])
def test_precision_files_on_cuda_pass_their_gates(precision_onnx, precision, gate, reference, batches):
    runtime = OnnxRuntime(precision_onnx[precision], providers=CUDA)
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


@pytest.fixture(scope="session")  # session-wide, so that it is asked before the session's engines are built
def engine_gpu():
    """The GPU here, or a skip saying what is missing to run an engine (asked first: no build without it)."""
    from alexnet_export.runtimes.tensorrt.support import TensorRTUnavailable, gpu_identity, import_cudart

    try:
        gpu = gpu_identity()
        import_cudart()
    except TensorRTUnavailable as exc:
        pytest.skip(str(exc))
    return gpu


@pytest.mark.parametrize("kind", ["fp32", "fp16", "int8", "int8-kept", "pixels"])
def test_ci_built_engines_run_where_they_target(engine_gpu, trt_engines, kind, precision_onnx, small_onnx, pixel_onnx,
                                                batches, real_images):
    """The engines every test run builds ahead of time (TensorRT for RTX, tests/conftest.py) against
    ONNX Runtime on the CPU running their source ONNX; a GPU outside their targets is refused
    before loading, and the test says so."""
    from alexnet_export.runtimes.verification.parity import compare_logits
    from alexnet_export.runtimes.preprocess import load_image, resize_and_crop
    from alexnet_export.runtimes.tensorrt.runtime import TensorRTRuntime

    gpu, engine = engine_gpu, trt_engines[kind]
    if not engine.targets.admits(gpu):
        with pytest.raises(ModelLoadError, match="targets compute capability"):
            TensorRTRuntime(engine.path)
        pytest.skip(f"{gpu.describe()} is outside what {engine.builder} built for ({engine.targets.describe()});"
                    " the engine was refused before loading, as it should be")
    runtime = TensorRTRuntime(engine.path)
    source = {"fp32": small_onnx, "pixels": pixel_onnx, **precision_onnx}[kind]
    reference = OnnxRuntime(source, providers=["CPUExecutionProvider"])
    if kind == "pixels":
        spec = reference.metadata.preprocessing
        inputs = [np.stack([resize_and_crop(load_image(image), spec) for image in real_images[i : i + 4]])
                  for i in (0, 4, 8)]
    else:
        inputs = [batch[:4] for batch in batches]  # the engines' profile ends at batch 4
    # FP32 layers may run in TF32 (TensorRT's default): the FP16 gate's tolerance, as bench's TF32 rows.
    gate = INT8_GATE if kind.startswith("int8") else FP16_GATE
    expected = np.concatenate([reference.predict(batch) for batch in inputs])
    enforce(compare_logits(expected, np.concatenate([runtime.predict(batch) for batch in inputs])), gate,
            f"{kind} engine on {gpu.describe()}")
    assert runtime.precision == engine.precision and runtime.bounds.maximum == 4


@needs_ort_cuda
def test_pixel_file_on_cuda(pixel_onnx, pixel_runtime, real_images):
    """A uint8 pixel file (onnx --input-format uint8) through ONNX Runtime's CUDA provider (strict FP32):
    the pixel file's CPU logits (its engine: test_ci_built_engines_run_where_they_target)."""
    from alexnet_export.runtimes.verification.parity import compare_logits
    from alexnet_export.runtimes.preprocess import load_image, resize_and_crop

    spec = pixel_runtime.metadata.preprocessing
    pixels = np.stack([resize_and_crop(load_image(image), spec) for image in real_images[:16]])
    runtime = OnnxRuntime(pixel_onnx, CUDA, tf32=False)
    enforce(compare_logits(pixel_runtime.predict(pixels), runtime.predict(pixels)), FP32_GATE,
            f"the pixel file on {runtime.device}")
    with pytest.raises(InputError, match="this model takes uint8 RGB pixels"):
        runtime.predict(np.zeros((1, 3, 224, 224), np.float32))
