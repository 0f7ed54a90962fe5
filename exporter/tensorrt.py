"""ONNX -> TensorRT engine, plus a sidecar JSON saying which TensorRT and GPU it is tied to.

Precision lives in the ONNX (strongly typed network: FP16 tensors or Q/DQ nodes, no builder
flags). tensorrt and cuda-python are imported lazily; the sidecar helpers need neither.
API: docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/ (Builder, IBuilderConfig,
IOptimizationProfile, ITimingCache, Onnx Parser pages).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from alexnet_export.errors import ExportError, ModelLoadError
from alexnet_export.exporter.atomic import atomic_output
from alexnet_export.hashing import file_sha256
from alexnet_export.models.spec import CHANNELS, IMAGE_SIZE, INPUT_NAME

ENGINE_INPUT = INPUT_NAME
IMAGE_DIMS = (CHANNELS, IMAGE_SIZE, IMAGE_SIZE)
# int8-cpu is asymmetric UINT8, which TensorRT's Q/DQ rules do not take.
ENGINE_PRECISIONS = ("fp32", "fp16", "int8-tensorrt")
INSTALL_HINT = "on a machine with an NVIDIA GPU run: pip install 'alexnet-export[trt]'"
REBUILD_HINT = "rebuild it with `alexnet-export trt`"
SIDECAR_KEYS = ("tensorrt_version", "gpu_name", "compute_capability", "precision", "batch", "metadata")

Progress = Callable[[str], None]


class TensorRTUnavailable(ExportError):
    """TensorRT, cuda-python or a usable NVIDIA GPU is missing."""


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailable(f"TensorRT is not installed ({exc}); {INSTALL_HINT}") from None
    if _major(trt.__version__) < 10:
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


@dataclass(frozen=True)
class BuildSettings:
    min_batch: int = 1
    opt_batch: int = 8
    max_batch: int = 32
    workspace_mib: int = 1024

    def __post_init__(self):
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            batches = f"min={self.min_batch}, opt={self.opt_batch}, max={self.max_batch}"
            raise ValueError(f"batch sizes need 1 <= min <= opt <= max; got {batches}")
        if self.workspace_mib < 1:
            raise ValueError(f"workspace is {self.workspace_mib} MiB; expected at least 1")


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    *,
    precision: str,
    settings: BuildSettings,
    timing_cache_path: str | Path | None,
    metadata_props: dict[str, str],
    progress: Progress = lambda message: None,
) -> Path:
    """Build `engine_path` from `onnx_path` and write its sidecar; a failed build changes nothing."""
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if precision not in ENGINE_PRECISIONS:
        raise ExportError(f"precision {precision!r} cannot be built; expected one of {', '.join(ENGINE_PRECISIONS)}")
    if not onnx_path.is_file():
        raise ExportError(f"ONNX file {onnx_path} does not exist or is not a file")
    trt = import_tensorrt()
    gpu = gpu_identity()
    progress(f"parsing {onnx_path.name}")
    builder, network, parser = _parse(trt, onnx_path)  # the parser owns weights: keep it until the build ends
    _check_network_input(network, settings)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mib << 20)
    config.add_optimization_profile(_batch_profile(builder, settings))
    _use_timing_cache(config, timing_cache_path, progress)
    span = f"{settings.min_batch}..{settings.max_batch}"
    progress(f"building the {precision} engine for {gpu['name']}, batch {span} (this takes minutes)")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build an engine from {onnx_path.name}; see its log above")
    if timing_cache_path is not None:
        _write_buffer(timing_cache_path, config.get_timing_cache().serialize())
    # Old sidecar first: a crash before the new one leaves an engine the runtime refuses, never a wrong pair.
    sidecar_path(engine_path).unlink(missing_ok=True)
    _write_buffer(engine_path, serialized)
    sidecar = {
        "tensorrt_version": trt.__version__,
        "gpu_name": gpu["name"],
        "compute_capability": gpu["compute_capability"],
        "precision": precision,
        "batch": {"min": settings.min_batch, "opt": settings.opt_batch, "max": settings.max_batch},
        "source_onnx_sha256": file_sha256(onnx_path),
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metadata": dict(metadata_props),
    }
    with atomic_output(sidecar_path(engine_path)) as temporary:
        temporary.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    progress(f"wrote {engine_path} and {sidecar_path(engine_path).name}")
    return engine_path


def _parse(trt, onnx_path: Path):
    builder = trt.Builder(tensorrt_logger())
    # TensorRT 11 is always strongly typed and ignores the flag; 10 needs it (Builder page,
    # NetworkDefinitionCreationFlag). EXPLICIT_BATCH is ignored on 10 and gone on 11: never set.
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    use_flag = strongly_typed is not None and _major(trt.__version__) < 11
    network = builder.create_network(1 << int(strongly_typed) if use_flag else 0)
    parser = trt.OnnxParser(network, tensorrt_logger())
    # parse_from_file, not parse(bytes), so external weight files resolve beside the model.
    if not parser.parse_from_file(str(onnx_path)):
        raise ExportError(f"TensorRT cannot parse {onnx_path.name}: {_parser_errors(parser)}")
    return builder, network, parser


def _parser_errors(parser) -> str:
    messages = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)  # ParserError: desc(), node() is -1 when no node is to blame
        text = " ".join(str(error.desc()).split())
        named = getattr(error, "node_name", None)  # newer parsers also name the node
        where = (named() if callable(named) else "") or (error.node() if error.node() >= 0 else "")
        messages.append(f"node {where}: {text}" if where != "" else text)
    return "; ".join(messages) or "no details from the parser"


def _check_network_input(network, settings: BuildSettings) -> None:
    tensor = network.get_input(0) if network.num_inputs == 1 else None
    shape = tuple(tensor.shape) if tensor is not None else ()
    if tensor is None or tensor.name != ENGINE_INPUT or shape[1:] != IMAGE_DIMS:
        found = f"{tensor.name} {list(shape)}" if tensor is not None else f"{network.num_inputs} inputs"
        expected = f"{ENGINE_INPUT} [batch, {CHANNELS}, {IMAGE_SIZE}, {IMAGE_SIZE}]"
        raise ExportError(f"the ONNX input is {found}; expected one input {expected}")
    if shape[0] != -1 and not settings.min_batch == settings.max_batch == shape[0]:
        span = f"{settings.min_batch}..{settings.max_batch}"
        raise ExportError(f"the ONNX has a fixed batch of {shape[0]}, not {span}; export it with a dynamic batch")


def _batch_profile(builder, settings: BuildSettings):
    profile = builder.create_optimization_profile()
    sizes = (settings.min_batch, settings.opt_batch, settings.max_batch)
    profile.set_shape(ENGINE_INPUT, *[(batch, *IMAGE_DIMS) for batch in sizes])  # min, opt, max
    return profile


def _use_timing_cache(config, path: str | Path | None, progress: Progress) -> None:
    """Reuse kernel timings from earlier builds; a cache from another TensorRT or GPU starts afresh."""
    data = Path(path).read_bytes() if path is not None and Path(path).is_file() else b""
    cache = config.create_timing_cache(data)
    # set_timing_cache reports a refused cache with False; compare to False in case a build returns None.
    if cache is None or config.set_timing_cache(cache, ignore_mismatch=False) is False:
        progress(f"timing cache {path} does not fit this TensorRT and GPU; starting a fresh one")
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    elif data:
        progress(f"reusing the timing cache {path}")


def _write_buffer(path: str | Path, data) -> None:
    """Write TensorRT's IHostMemory (a buffer) atomically, without a copy into Python bytes."""
    with atomic_output(path) as temporary, open(temporary, "wb") as handle:
        handle.write(memoryview(data))


def _major(version: str) -> int:
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
