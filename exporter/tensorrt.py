"""ONNX -> TensorRT engine, plus a sidecar JSON saying which TensorRT and GPU it is tied to.

Precision lives in the ONNX (strongly typed network: FP16 tensors or Q/DQ nodes, no builder
flags). tensorrt and cuda-python are imported lazily (runtimes/tensorrt_support.py, which also
holds the sidecar schema the runtime checks).
API: docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/ (Builder, IBuilderConfig,
IOptimizationProfile, ITimingCache, Onnx Parser pages).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from alexnet_export.errors import ArgumentError, ExportError
from alexnet_export.events import Listener, Step, ignore
from alexnet_export.atomic import atomic_output
from alexnet_export.hashing import file_sha256
from alexnet_export.models.precisions import ENGINE, words
from alexnet_export.models.spec import ArtifactMetadata
from alexnet_export.runtimes.tensorrt_support import (
    ENGINE_INPUT,
    major_version,
    gpu_identity,
    import_tensorrt,
    sidecar_path,
    tensorrt_logger,
)


@dataclass(frozen=True)
class BuildSettings:
    min_batch: int = 1
    opt_batch: int = 8
    max_batch: int = 32
    workspace_mib: int = 1024

    def __post_init__(self):
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            batches = f"min={self.min_batch}, opt={self.opt_batch}, max={self.max_batch}"
            raise ArgumentError(f"batch sizes need 1 <= min <= opt <= max; got {batches}")
        if self.workspace_mib < 1:
            raise ArgumentError(f"workspace is {self.workspace_mib} MiB; expected at least 1", argument="workspace")


@dataclass(frozen=True)
class EngineResult:
    path: Path
    sidecar: Path
    precision: str
    settings: BuildSettings
    gpu: dict  # {"name": ..., "compute_capability": ...}
    tensorrt_version: str


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    *,
    settings: BuildSettings = BuildSettings(),
    timing_cache_path: str | Path | None = None,
    on_event: Listener = ignore,
) -> EngineResult:
    """Build `engine_path` from `onnx_path` and write its sidecar; a failed build changes nothing.

    The precision and the metadata the sidecar carries are read from the ONNX itself.
    """
    from alexnet_export.runtimes.onnx_graph import read_graph_facts

    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise ExportError(f"ONNX file {onnx_path} does not exist or is not a file")
    facts = read_graph_facts(onnx_path)
    precision = facts.precision
    if precision not in words(ENGINE):  # int8-cpu is asymmetric UINT8, which TensorRT's Q/DQ rules do not take
        raise ExportError(f"{onnx_path.name} is a {precision} file, which TensorRT does not build;"
                          f" expected one of {', '.join(words(ENGINE))}")
    trt = import_tensorrt()
    gpu = gpu_identity()
    on_event(Step(f"parsing {onnx_path.name}"))
    try:  # float32 (3, 224, 224), or a pixel file's uint8 (224, 224, 3)
        dims = ArtifactMetadata.from_props(facts.metadata_props).preprocessing.input_dims
    except ValueError as exc:
        raise ExportError(f"{onnx_path.name}: {exc}") from None
    builder, network, parser = _parse(trt, onnx_path)  # the parser owns weights: keep it until the build ends
    _check_network_input(network, settings, dims)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mib << 20)
    config.add_optimization_profile(_batch_profile(builder, settings, dims))
    _use_timing_cache(config, timing_cache_path, on_event)
    span = f"{settings.min_batch}..{settings.max_batch}"
    on_event(Step(f"building the {precision} engine for {gpu['name']}, batch {span} (this takes minutes)"))
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
        "metadata": dict(facts.metadata_props),
    }
    with atomic_output(sidecar_path(engine_path)) as temporary:
        temporary.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    on_event(Step(f"wrote {engine_path} and {sidecar_path(engine_path).name}"))
    return EngineResult(engine_path, sidecar_path(engine_path), precision, settings, gpu, trt.__version__)


def _parse(trt, onnx_path: Path):
    builder = trt.Builder(tensorrt_logger())
    # TensorRT 11 is always strongly typed and ignores the flag; 10 needs it (Builder page,
    # NetworkDefinitionCreationFlag). EXPLICIT_BATCH is ignored on 10 and gone on 11: never set.
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    use_flag = strongly_typed is not None and major_version(trt.__version__) < 11
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


def _check_network_input(network, settings: BuildSettings, dims: tuple[int, ...]) -> None:
    tensor = network.get_input(0) if network.num_inputs == 1 else None
    shape = tuple(tensor.shape) if tensor is not None else ()
    if tensor is None or tensor.name != ENGINE_INPUT or shape[1:] != dims:
        found = f"{tensor.name} {list(shape)}" if tensor is not None else f"{network.num_inputs} inputs"
        expected = f"{ENGINE_INPUT} [batch, {', '.join(map(str, dims))}]"
        raise ExportError(f"the ONNX input is {found}; expected one input {expected}")
    if shape[0] != -1 and not settings.min_batch == settings.max_batch == shape[0]:
        span = f"{settings.min_batch}..{settings.max_batch}"
        raise ExportError(f"the ONNX has a fixed batch of {shape[0]}, not {span}; export it with a dynamic batch")


def _batch_profile(builder, settings: BuildSettings, dims: tuple[int, ...]):
    profile = builder.create_optimization_profile()
    sizes = (settings.min_batch, settings.opt_batch, settings.max_batch)
    profile.set_shape(ENGINE_INPUT, *[(batch, *dims) for batch in sizes])  # min, opt, max
    return profile


def _use_timing_cache(config, path: str | Path | None, on_event: Listener) -> None:
    """Reuse kernel timings from earlier builds; a cache from another TensorRT or GPU starts afresh."""
    data = Path(path).read_bytes() if path is not None and Path(path).is_file() else b""
    cache = config.create_timing_cache(data)
    # set_timing_cache reports a refused cache with False; compare to False in case a build returns None.
    if cache is None or config.set_timing_cache(cache, ignore_mismatch=False) is False:
        on_event(Step(f"timing cache {path} does not fit this TensorRT and GPU; starting a fresh one"))
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    elif data:
        on_event(Step(f"reusing the timing cache {path}"))


def _write_buffer(path: str | Path, data) -> None:
    """Write TensorRT's IHostMemory (a buffer) atomically, without a copy into Python bytes."""
    with atomic_output(path) as temporary, open(temporary, "wb") as handle:
        handle.write(memoryview(data))
