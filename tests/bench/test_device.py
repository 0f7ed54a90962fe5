"""The GPU side of the benchmark where there is no CUDA: every answer None, the tables unchanged;
and the table's device columns and GPU header from a result that has them."""

import dataclasses

import pytest

from alexnet_export.bench import device
from alexnet_export.bench.report import format_table, to_markdown
from alexnet_export.bench.results import BenchResult, Roofline, Row

needs_no_cuda = pytest.mark.skipif(device.cuda_available(), reason="this machine has CUDA")


@needs_no_cuda
def test_without_cuda_every_gpu_answer_is_none():
    assert device.describe_gpu() is None
    assert device.matmul_gflops("fp16") is None
    assert device.transfer_split(lambda: None, rounds=1) is None


def test_an_unknown_math_is_refused():
    with pytest.raises(ValueError, match="math 'bf16' is not one of fp32, tf32, fp16, int8"):
        device.matmul_gflops("bf16")


def test_gpu_rows_show_their_split_and_the_header_names_the_card():
    row = Row("a.onnx", "fp16", "CUDAExecutionProvider", 1.0, 64, 1.5, 1.6, 1.7, 42666.7, 0.25, 20,
              roofline_basis="cuda fp16", device_ms=1.2, h2d_ms=0.8, compute_ms=0.35, d2h_ms=0.05)
    machine = {"cpu": "x", "cores": 16, "cpu_flags": [], "threads": 2, "libraries": {},
               "gpu": {"name": "NVIDIA H200", "driver": "580.82", "compute_capability": "9.0", "cuda": "13.0"}}
    result = BenchResult(machine, None, Roofline(100.0, 1.286, {"fp16": 700e3}), results=[row])
    table = format_table(result)
    assert "GPU: NVIDIA H200 (sm 9.0), driver 580.82, CUDA 13.0; matmul fp16 700 TFLOP/s" in table
    assert "device ms" in table and "25% cuda fp16" in table and "0.80" in table
    cpu_only = BenchResult({**machine, "gpu": None}, None, Roofline(100.0, 1.286),
                           results=[dataclasses.replace(row, device_ms=None, h2d_ms=None, compute_ms=None, d2h_ms=None)])
    assert "GPU:" not in to_markdown(cpu_only) and "device ms" not in to_markdown(cpu_only)
