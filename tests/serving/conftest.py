"""Fixtures shared by the serving tests."""

import importlib.util
from importlib.metadata import distribution
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def model_config_pb2():
    """Triton's ModelConfig protobuf. tritonclient ships the generated module under tritonclient/grpc;
    importing that package needs grpc, so load the one file directly."""
    path = Path(str(distribution("tritonclient").locate_file("tritonclient/grpc/model_config_pb2.py")))
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
