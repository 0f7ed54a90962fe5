"""What the numbers were measured on, and what the machine's FP32 matrix multiply allows."""

from __future__ import annotations

import os
import platform
import time
from importlib.metadata import PackageNotFoundError, version

import numpy as np

# AlexNet at 224x224: 643.0 M multiply-adds per image (595.9 M in the five convolutions with
# their groups, 47.1 M in the three fully connected layers), i.e. 1.286 GFLOP.
ALEXNET_GFLOP_PER_IMAGE = 1.286
# c = a @ b on n x n floats (opset 18, IR 8: what every supported ONNX Runtime reads): the
# serialized ModelProto, kept here so that bench needs no onnx (and the repository no model file);
# tests/bench/test_machine.py rebuilds it with onnx.helper and compares.
MATMUL_MODEL = bytes.fromhex(
    "0808120e616c65786e65742d6578706f72743a600a110a01610a016212016322064d61744d756c12066d6174"
    "6d756c5a150a016112100a0e0801120a0a0312016e0a0312016e5a150a016212100a0e0801120a0a0312016e"
    "0a0312016e62150a016312100a0e0801120a0a0312016e0a0312016e42040a001012"
)
LIBRARIES = ("alexnet-export", "numpy", "onnxruntime", "onnxruntime-gpu", "onnx", "torch", "pillow")


def describe_machine(threads: int) -> dict:
    from alexnet_export.bench.device import describe_gpu

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cpu_flags": [flag for flag in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile") if flag in _cpu_flags()],
        "threads": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in LIBRARIES if _version(name)},
        "gpu": describe_gpu(),  # None where torch sees no CUDA GPU
    }


def matmul_gflops(threads: int, sizes: tuple[int, ...] = (768, 1536), repeats: int = 7) -> float:
    """Peak FP32 GFLOP/s of ONNX Runtime's MatMul (the kernels the models use) at `threads`.

    The best over a few sizes and runs: a roofline is what the machine can do, not what it did
    on average while a neighbour was busy.
    """
    return max(_matmul_gflops(threads, size, repeats) for size in sizes)


def _matmul_gflops(threads: int, size: int, repeats: int) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(MATMUL_MODEL, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"a": rng.random((size, size), np.float32), "b": rng.random((size, size), np.float32)}
    session.run(None, feeds)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9


def _cpu_model() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cpu_flags() -> set[str]:
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None
