"""Fixtures shared by the serving tests."""

import importlib.util
import json
from importlib.metadata import distribution
from pathlib import Path

import pytest


def write_tensorrt_engine(path: Path, labels: list[str], max_batch: int = 32) -> Path:
    """Engine bytes and the sidecar of a TensorRT build (its older format), enough for a Triton
    repository's tensorrt_plan model: Triton is not run here, so the bytes are never loaded."""
    from alexnet_export.runtimes.tensorrt.sidecar import sidecar_path

    path.write_bytes(b"engine bytes")
    sidecar_path(path).write_text(json.dumps({
        "tensorrt_version": "10.13.0", "gpu_name": "NVIDIA L4", "compute_capability": "8.9", "precision": "fp16",
        "batch": {"min": 1, "opt": 8, "max": max_batch}, "source_onnx_sha256": "0" * 64,
        "metadata": {"alexnet_export.num_classes": str(len(labels)), "alexnet_export.labels": json.dumps(labels)}}))
    return path


@pytest.fixture(scope="session")
def tensorrt_engine():
    """write_tensorrt_engine(path, labels, max_batch=32): a TensorRT engine as Triton's repository takes it."""
    return write_tensorrt_engine


@pytest.fixture(scope="session")
def model_config_pb2():
    """Triton's ModelConfig protobuf. tritonclient ships the generated module under tritonclient/grpc;
    importing that package needs grpc, so load the one file directly."""
    path = Path(str(distribution("tritonclient").locate_file("tritonclient/grpc/model_config_pb2.py")))
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
