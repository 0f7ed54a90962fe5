"""The TensorRT step: what runs without TensorRT is tested here; the build and the engine
runtime need TensorRT and an NVIDIA GPU and are marked `trt`."""

import importlib.util
import json

import numpy as np
import pytest

from alexnet_export.errors import ModelLoadError, ProviderError
from alexnet_export.exporter.tensorrt import BuildSettings, build_engine
from alexnet_export.runtimes.tensorrt_support import (
    TensorRTUnavailable,
    check_sidecar,
    import_tensorrt,
    read_sidecar,
    sidecar_path,
)

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
needs_tensorrt = pytest.mark.skipif(not HAS_TENSORRT, reason="TensorRT is not installed (needs an NVIDIA GPU machine)")

SIDECAR = {
    "tensorrt_version": "10.13.0", "gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0",
    "precision": "int8-tensorrt", "batch": {"min": 1, "opt": 8, "max": 32},
    "source_onnx_sha256": "ab" * 32, "metadata": {"alexnet_export.num_classes": "10"},
}


def test_sidecar_match_passes_and_mismatch_says_rebuild():
    check_sidecar(SIDECAR, "10.13.0", {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"})
    with pytest.raises(ModelLoadError, match=r"built with TensorRT 10\.13\.0 .*this machine has TensorRT 11\.0\.0.*rebuild it"):
        check_sidecar(SIDECAR, "11.0.0", {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"})
    with pytest.raises(ModelLoadError, match=r"sm 8\.9.*rebuild"):
        check_sidecar(SIDECAR, "10.13.0", {"name": "NVIDIA L4", "compute_capability": "8.9"})


def test_sidecar_is_read_beside_the_engine(tmp_path):
    engine = tmp_path / "alexnet.engine"
    assert sidecar_path(engine) == tmp_path / "alexnet.engine.json"
    with pytest.raises(ModelLoadError, match="is missing"):
        read_sidecar(engine)
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(ModelLoadError, match="not readable JSON"):
        read_sidecar(engine)
    sidecar_path(engine).write_text(json.dumps({k: v for k, v in SIDECAR.items() if k != "gpu_name"}))
    with pytest.raises(ModelLoadError, match="lacks gpu_name"):
        read_sidecar(engine)
    sidecar_path(engine).write_text(json.dumps(SIDECAR))
    assert read_sidecar(engine) == SIDECAR


def test_batch_settings_are_checked():
    with pytest.raises(ValueError, match="min"):
        BuildSettings(min_batch=8, opt_batch=4, max_batch=32)
    assert BuildSettings().max_batch == 32


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_missing_tensorrt_names_the_extra(small_onnx, tmp_path):
    with pytest.raises(TensorRTUnavailable, match=r"pip install 'alexnet-export\[trt\]'"):
        import_tensorrt()
    with pytest.raises(TensorRTUnavailable):
        build_engine(small_onnx, tmp_path / "m.engine", settings=BuildSettings())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_engine_runtime_without_tensorrt_is_a_clear_error(tmp_path):
    from alexnet_export.runtimes import TensorRTRuntime, open_runtime

    engine = tmp_path / "alexnet.engine"
    engine.write_bytes(b"\x00" * 64)
    sidecar_path(engine).write_text(json.dumps(SIDECAR))
    with pytest.raises(ProviderError, match=r"alexnet-export\[trt\]"):
        TensorRTRuntime(engine)
    with pytest.raises(ProviderError):
        open_runtime(engine)


def test_engine_without_sidecar_or_bytes_is_refused(tmp_path):
    from alexnet_export.runtimes import TensorRTRuntime

    with pytest.raises(ModelLoadError, match="does not exist|missing"):
        TensorRTRuntime(tmp_path / "absent.engine")
    (tmp_path / "empty.engine").write_bytes(b"")
    with pytest.raises(ModelLoadError):
        TensorRTRuntime(tmp_path / "empty.engine")


@pytest.mark.trt
@pytest.mark.gpu
@needs_tensorrt
def test_engine_matches_onnx_runtime(small_onnx, tmp_path, real_images):
    from alexnet_export.runtimes import OnnxRuntime, TensorRTRuntime
    from alexnet_export.runtimes.preprocess import preprocess_batch

    engine = build_engine(small_onnx, tmp_path / "m.engine", settings=BuildSettings(1, 4, 8),
                          timing_cache_path=tmp_path / "timing.cache").path
    runtime, reference = TensorRTRuntime(engine), OnnxRuntime(small_onnx)
    batch = preprocess_batch(real_images[:5], reference.metadata.preprocessing)
    np.testing.assert_allclose(runtime.predict(batch), reference.predict(batch), atol=1e-2)
    assert read_sidecar(engine)["batch"] == {"min": 1, "opt": 4, "max": 8}
