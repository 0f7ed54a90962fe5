"""TensorRT pieces shared by the engine build and the engine runtime: lazy imports of tensorrt
and cuda-python, the GPU's identity, and the sidecar JSON that ties an engine to the TensorRT
build and GPU it was made for. Importing this module imports neither tensorrt nor cuda-python.
API: docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/ and
nvidia.github.io/cuda-python/cuda-bindings/latest/module/runtime.html.
"""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path

from alexnet_export.errors import AlexNetExportError, ModelLoadError
from alexnet_export.models.spec import INPUT_NAME

ENGINE_INPUT = INPUT_NAME
INSTALL_HINT = "on a machine with an NVIDIA GPU run: pip install 'alexnet-export[trt]'"
REBUILD_HINT = "rebuild it with `alexnet-export trt`"
SIDECAR_KEYS = ("tensorrt_version", "gpu_name", "compute_capability", "precision", "batch", "metadata")
# TensorRT for RTX: the same Builder/OnnxParser/Runtime API family, used where `tensorrt` is absent.
# Its module, as the tensorrt-rtx-cu13-bindings wheel names it (NVIDIA's API pages call it tensorrt_rtx),
# and the compute capabilities its engines run on (its support matrix: Turing, Ampere RTX, Ada,
# Blackwell); not 8.0 (A100) nor 9.0 (H100, H200).
RTX_MODULE = "tensorrt_rtx_bindings"
RTX_COMPUTE_CAPABILITIES = ("7.5", "8.6", "8.9", "12.0", "12.1")


class TensorRTUnavailable(AlexNetExportError, RuntimeError):
    """TensorRT, cuda-python or a usable NVIDIA GPU is missing."""


def import_tensorrt():
    """`tensorrt` (10 or newer), else TensorRT for RTX; TensorRTUnavailable naming both if neither imports."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        try:
            return importlib.import_module(RTX_MODULE)
        except ImportError:
            raise TensorRTUnavailable(f"TensorRT is not installed ({exc}), nor TensorRT for RTX ({RTX_MODULE});"
                                      f" {INSTALL_HINT}") from None
    if major_version(trt.__version__) < 10:
        raise TensorRTUnavailable(f"TensorRT {trt.__version__} is too old (10 or newer needed); {INSTALL_HINT}")
    return trt


def import_cudart():
    """cuda-python's runtime bindings: `cuda.bindings.runtime` (12.6+) or `cuda.cudart` (older)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as exc:
            raise TensorRTUnavailable(f"cuda-python is not installed ({exc}); {INSTALL_HINT}") from None
    return cudart


def is_rtx(trt) -> bool:
    return trt.__name__.split(".")[0] == RTX_MODULE


def tensorrt_name(trt) -> str:
    """"TensorRT 10.9.0" or "TensorRT for RTX 1.7.1.116": their version numbers overlap in nothing else."""
    return f"TensorRT{' for RTX' if is_rtx(trt) else ''} {trt.__version__}"


def check_runs_here(trt, gpu: dict) -> None:
    """TensorRT for RTX builds anywhere but runs engines on its compute capabilities only: refuse the others."""
    if is_rtx(trt) and gpu.get("compute_capability") not in RTX_COMPUTE_CAPABILITIES:
        raise TensorRTUnavailable(
            f"{tensorrt_name(trt)} runs engines on compute capability {', '.join(RTX_COMPUTE_CAPABILITIES)};"
            f" {gpu.get('name')} is {gpu.get('compute_capability')}: install TensorRT (pip install tensorrt) for this GPU")


def cuda_call(cudart, result: tuple, call: str, error: type[Exception] = RuntimeError):
    """cuda-python calls return (cudaError_t, *values): raise `error` unless cudaSuccess."""
    status, *values = result
    if status != cudart.cudaError_t.cudaSuccess:
        raise error(f"{call} failed with {getattr(status, 'name', status)}")
    return values[0] if len(values) == 1 else tuple(values) or None


def gpu_identity(device: int = 0) -> dict:
    """{"name": "NVIDIA L4", "compute_capability": "8.9"} for `device`."""
    cudart = import_cudart()
    # Returns (cudaError_t, cudaDeviceProp); name is NUL-padded bytes. Runtime API page:
    # nvidia.github.io/cuda-python/cuda-bindings/latest/module/runtime.html
    call = f"no usable NVIDIA GPU: cudaGetDeviceProperties({device})"
    properties = cuda_call(cudart, cudart.cudaGetDeviceProperties(device), call, TensorRTUnavailable)
    name = properties.name.decode("utf-8", "replace") if isinstance(properties.name, bytes) else str(properties.name)
    return {"name": name.split("\x00", 1)[0].strip(), "compute_capability": f"{properties.major}.{properties.minor}"}


@functools.lru_cache(maxsize=None)
def tensorrt_logger():
    """One logger per process: TensorRT warns when builders and runtimes get different ones."""
    trt = import_tensorrt()
    return trt.Logger(trt.Logger.WARNING)


def major_version(version: str) -> int:
    return int(version.split(".")[0])


# Sidecar helpers: plain JSON, no TensorRT needed.


def sidecar_path(engine_path: str | Path) -> Path:
    return Path(str(engine_path) + ".json")


def read_sidecar(engine_path: str | Path) -> dict:
    """The sidecar beside `engine_path`, checked for the keys the runtime needs."""
    path = sidecar_path(engine_path)
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; an engine loads only with the sidecar of its build: {REBUILD_HINT}")
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(f"{path} is not readable JSON ({exc}); {REBUILD_HINT}") from None
    missing = [key for key in SIDECAR_KEYS if key not in sidecar] if isinstance(sidecar, dict) else SIDECAR_KEYS
    if missing:
        raise ModelLoadError(f"{path} lacks {', '.join(missing)}; {REBUILD_HINT}")
    metadata = sidecar["metadata"]
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise ModelLoadError(f"{path} metadata must be an object of strings; {REBUILD_HINT}")
    return sidecar


def check_sidecar(sidecar: dict, tensorrt_version: str, gpu: dict) -> None:
    """Refuse an engine built by another TensorRT or for another GPU: it would fail or crash."""
    built = (sidecar.get("tensorrt_version"), sidecar.get("gpu_name"), sidecar.get("compute_capability"))
    here = (tensorrt_version, gpu.get("name"), gpu.get("compute_capability"))
    if tuple(map(str, built)) != tuple(map(str, here)):
        raise ModelLoadError(
            f"this engine was built with TensorRT {built[0]} for {built[1]} (sm {built[2]}); this machine has"
            f" TensorRT {here[0]} and {here[1]} (sm {here[2]}): {REBUILD_HINT}"
        )
