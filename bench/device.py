"""What a CUDA GPU does during a benchmark: its name and driver, its matrix-multiply rate in each
precision, and where a call's device time goes (host-to-device, compute, device-to-host, as
trtexec splits it). torch is imported inside the functions; with no CUDA every answer is None.

The split comes from CUDA's activity trace (CUPTI, through torch.profiler), which records every
kernel and copy in the process, whichever library launched it (ONNX Runtime, TensorRT, torch).
CUDA events recorded around a call would not do: the runtimes run on their own streams and return
after synchronising, so the events would measure the wall time again.
"""

from __future__ import annotations

import shutil
import subprocess

# The row's math -> the matmul that bounds it. TF32 is FP32 storage with TF32 products.
MATHS = ("fp32", "tf32", "fp16", "int8")


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def describe_gpu(index: int = 0) -> dict | None:
    """{"name", "driver", "compute_capability", "cuda"} of GPU `index`, or None where torch sees no CUDA."""
    if not cuda_available():
        return None
    import torch

    major, minor = torch.cuda.get_device_capability(index)
    return {"name": torch.cuda.get_device_name(index), "driver": _driver_version(index),
            "compute_capability": f"{major}.{minor}", "cuda": torch.version.cuda}


def _driver_version(index: int) -> str | None:
    # The NVIDIA driver's version is not in torch's API; nvidia-smi ships with the driver.
    if shutil.which("nvidia-smi") is None:
        return None
    result = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=driver_version", "--format=csv,noheader"],
                            capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def matmul_gflops(math: str, index: int = 0, size: int = 8192, repeats: int = 10) -> float | None:
    """Peak GFLOP/s of a square matrix multiply on GPU `index` in `math` (one of MATHS), timed with
    CUDA events; None without CUDA or where torch has no such multiply here."""
    if math not in MATHS:
        raise ValueError(f"math {math!r} is not one of {', '.join(MATHS)}")
    if not cuda_available():
        return None
    import torch

    device = torch.device("cuda", index)
    if math == "int8":
        a = torch.randint(-8, 8, (size, size), dtype=torch.int8, device=device)
        multiply = lambda: torch._int_mm(a, a)  # noqa: E731  int8 x int8 -> int32 on the tensor cores
    else:
        a = torch.randn(size, size, device=device, dtype=torch.float16 if math == "fp16" else torch.float32)
        multiply = lambda: a @ a  # noqa: E731
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = math == "tf32"
    try:
        multiply()
        best = float("inf")
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            multiply()
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) / 1e3)
    except RuntimeError:  # e.g. no int8 tensor-core multiply on this GPU or torch build
        return None
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    return 2 * size**3 / best / 1e9


def transfer_split(call, rounds: int) -> dict | None:
    """Mean milliseconds per call of host-to-device copies, device compute and device-to-host copies,
    and their sum (device busy time), from the CUDA activity trace of `rounds` calls; None without
    CUDA, or where the trace recorded no device work (then nothing is claimed)."""
    if not cuda_available():
        return None
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as trace:
        for _ in range(rounds):
            call()
        torch.cuda.synchronize()
    totals = {"h2d_ms": 0.0, "compute_ms": 0.0, "d2h_ms": 0.0}
    for event in trace.events():
        if event.device_type != DeviceType.CUDA:
            continue
        key = "h2d_ms" if event.name.startswith("Memcpy HtoD") else "d2h_ms" if event.name.startswith(
            "Memcpy DtoH") else "compute_ms"
        totals[key] += event.time_range.elapsed_us() / 1e3
    if not any(totals.values()):
        return None
    split = {key: value / rounds for key, value in totals.items()}
    return {**split, "device_ms": sum(split.values())}
