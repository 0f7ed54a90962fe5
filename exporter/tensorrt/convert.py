"""ONNX -> TensorRT engine, plus a sidecar JSON saying what built it and which GPUs it runs on.

Precision lives in the ONNX (strongly typed network: FP16 tensors or Q/DQ nodes, no builder
flags). Two builders, one API family (runtimes/tensorrt/support.py imports them lazily):
- TensorRT for RTX builds ahead of time on the CPU, without a GPU or cuda-python, for the compute
  capabilities it is given (`compute_capabilities`; by default its own set), and compiles kernels
  on the GPU when the engine is loaded.
- TensorRT times kernels on the GPU it builds on; the engine runs on that GPU model, or wider
  with `hardware_compatibility`, and with later TensorRT releases with `version_compatible`.
The build settings and the targets they make are in exporter/tensorrt/settings.py; the sidecar's
schema and the check the runtime makes of it are in runtimes/tensorrt/sidecar.py.
API: docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/ (Builder, IBuilderConfig,
IOptimizationProfile, ITimingCache, Onnx Parser pages) and docs.nvidia.com/deeplearning/
tensorrt-rtx/latest/inference-library/cpu-engines.html (IBuilderConfig compute capabilities).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from alexnet_export.atomic import atomic_output
from alexnet_export.errors import ExportError
from alexnet_export.events import Listener, Note, Step, ignore
from alexnet_export.hashing import file_sha256
from alexnet_export.models.spec import ArtifactMetadata
from alexnet_export.exporter.tensorrt.settings import (
    BuildSettings,
    check_build_settings,
    gpu_targets,
    rtx_targets,
)
from alexnet_export.runtimes.sidecar import sidecar_path, write_sidecar
from alexnet_export.runtimes.table import ENGINE
from alexnet_export.runtimes.tensorrt.sidecar import Targets, new_sidecar
from alexnet_export.runtimes.tensorrt.support import (
    ENGINE_INPUT,
    TENSORRT_RTX,
    Gpu,
    builder_of,
    gpu_identity,
    import_tensorrt,
    major_version,
    tensorrt_log,
    tensorrt_name,
)

@dataclass(frozen=True)
class EngineResult:
    path: Path
    sidecar: Path
    precision: str
    settings: BuildSettings
    builder: str  # "TensorRT for RTX 1.7.1.116"
    built_on: Gpu | None  # None: built ahead of time, without a GPU
    targets: Targets
    timing_cache: Path | None  # the cache written; None where the builder keeps none (TensorRT for RTX)
    build_seconds: float  # build_serialized_network alone

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


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
    timing_cache_path: TensorRT's kernel timings, reused and updated; TensorRT for RTX has no
    timing cache (NVIDIA made its timing-cache calls no-ops), so there it is neither read nor written.
    """
    from alexnet_export.runtimes.onnx.reader import read_graph_facts

    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise ExportError(f"ONNX file {onnx_path} does not exist or is not a file", argument="onnx_path")
    facts = read_graph_facts(onnx_path)
    precision = facts.precision
    if precision not in ENGINE.words():  # int8-cpu is asymmetric UINT8, which TensorRT's Q/DQ rules do not take
        raise ExportError(f"{onnx_path.name} is a {precision} file, which TensorRT does not build;"
                          f" expected one of {', '.join(ENGINE.words())}", argument="onnx_path")
    trt = import_tensorrt(settings.builder)
    check_build_settings(trt, settings)
    # TensorRT times kernels on the GPU it builds on; TensorRT for RTX never asks for one.
    gpu = None if builder_of(trt).ahead_of_time else gpu_identity()
    try:  # float32 (3, 224, 224), or a pixel file's uint8 (224, 224, 3)
        preprocessing = ArtifactMetadata.from_props(facts.metadata_props).preprocessing
    except ValueError as exc:
        raise ExportError(f"{onnx_path.name}: {exc}", argument="onnx_path") from None
    with tensorrt_log(trt).listening(on_event) as log:
        on_event(Step(f"parsing {onnx_path.name} with {tensorrt_name(trt)}"))
        builder, network, parser = parse_onnx(trt, onnx_path)  # the parser owns weights: keep it until the build ends
        _check_network_input(network, settings, preprocessing.input_dims)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mib << 20)
        config.add_optimization_profile(_batch_profile(builder, settings, preprocessing.input_dims))
        targets = rtx_targets(trt, config, settings) if gpu is None else gpu_targets(trt, config, settings, gpu)
        timing_cache = _use_timing_cache(trt, config, timing_cache_path, on_event)
        where = "ahead of time on the CPU" if gpu is None else f"on {gpu.name}"
        span = f"{settings.min_batch}..{settings.max_batch}"
        on_event(Step(f"building the {precision} engine {where} for {targets.describe()}, batch {span}"))
        started = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        build_seconds = time.perf_counter() - started
        if serialized is None:
            raise ExportError(f"{tensorrt_name(trt)} failed to build an engine from {onnx_path.name}: {log.errors()}")
        if timing_cache is not None:
            _write_buffer(timing_cache, config.get_timing_cache().serialize())
    # Old sidecar first: a crash before the new one leaves an engine the runtime refuses, never a wrong pair.
    sidecar_path(engine_path).unlink(missing_ok=True)
    _write_buffer(engine_path, serialized)
    sidecar = new_sidecar(
        builder=builder_of(trt).name, version=trt.__version__, built_on=gpu, targets=targets,
        hardware_compatibility=None if gpu is None else settings.hardware_compatibility,
        version_compatible=settings.version_compatible, precision=precision, batch=settings.batch,
        input_tensor={"name": ENGINE_INPUT, "format": preprocessing.input_format, "dtype": preprocessing.input_dtype,
                      "shape": [-1, *preprocessing.input_dims]},
        source_onnx=_relative(onnx_path, engine_path.parent), source_onnx_sha256=file_sha256(onnx_path),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), metadata=facts.metadata_props)
    write_sidecar(engine_path, sidecar)
    on_event(Step(f"wrote {engine_path} and {sidecar_path(engine_path).name}"))
    return EngineResult(engine_path, sidecar_path(engine_path), precision, settings, tensorrt_name(trt), gpu, targets,
                        timing_cache, build_seconds)


def parse_onnx(trt, onnx_path: Path):
    """(builder, strongly typed network, parser) for `onnx_path`; ExportError naming the nodes the parser refuses."""
    builder = trt.Builder(tensorrt_log(trt).logger)
    # TensorRT 11 and TensorRT for RTX are always strongly typed; TensorRT 10 needs the flag
    # (Builder page, NetworkDefinitionCreationFlag). EXPLICIT_BATCH is ignored on 10 and gone on 11: never set.
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    use_flag = strongly_typed is not None and (builder_of(trt) is TENSORRT_RTX or major_version(trt.__version__) < 11)
    network = builder.create_network(1 << int(strongly_typed) if use_flag else 0)
    parser = trt.OnnxParser(network, tensorrt_log(trt).logger)
    # parse_from_file, not parse(bytes), so external weight files resolve beside the model.
    if not parser.parse_from_file(str(onnx_path)):
        raise ExportError(f"{tensorrt_name(trt)} cannot parse {onnx_path.name}: {_parser_errors(parser)}",
                          argument="onnx_path")
    return builder, network, parser


def _parser_errors(parser) -> str:
    messages = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)  # ParserError: node() is -1 when no node is to blame
        code = getattr(error.code(), "name", str(error.code())).replace("_", " ").lower()
        desc = " ".join(str(error.desc()).split())
        text = f"{code}: {desc}" if " " in desc else code  # some checks describe themselves only as "false"
        name = error.node_name() if hasattr(error, "node_name") else ""
        operator = error.node_operator() if hasattr(error, "node_operator") else ""
        if name or error.node() >= 0:
            node = name or f"number {error.node()}"
            text = f"node {node}{f' ({operator})' if operator else ''}: {text}"
        messages.append(text)
    return "; ".join(messages) or "no details from the parser"


def _check_network_input(network, settings: BuildSettings, dims: tuple[int, ...]) -> None:
    tensor = network.get_input(0) if network.num_inputs == 1 else None
    shape = tuple(tensor.shape) if tensor is not None else ()
    if tensor is None or tensor.name != ENGINE_INPUT or shape[1:] != dims:
        found = f"{tensor.name} {list(shape)}" if tensor is not None else f"{network.num_inputs} inputs"
        expected = f"{ENGINE_INPUT} [batch, {', '.join(map(str, dims))}]"
        raise ExportError(f"the ONNX input is {found}; expected one input {expected}", argument="onnx_path")
    if shape[0] != -1 and not settings.min_batch == settings.max_batch == shape[0]:
        span = f"{settings.min_batch}..{settings.max_batch}"
        raise ExportError(f"the ONNX has a fixed batch of {shape[0]}, not {span}; export it with a dynamic batch",
                          argument="onnx_path")


def _batch_profile(builder, settings: BuildSettings, dims: tuple[int, ...]):
    profile = builder.create_optimization_profile()
    sizes = (settings.min_batch, settings.opt_batch, settings.max_batch)
    profile.set_shape(ENGINE_INPUT, *[(batch, *dims) for batch in sizes])  # min, opt, max
    return profile


def _use_timing_cache(trt, config, path: str | Path | None, on_event: Listener) -> Path | None:
    """Reuse kernel timings from earlier builds; a cache from another TensorRT or GPU starts afresh.
    Returns where to write the cache after the build, None for no cache."""
    if path is None:
        return None
    if builder_of(trt).ahead_of_time:
        # "ITimingCache and related builder APIs ... [do] not affect engines built by TensorRT-RTX. Using
        # them forces a GPU query during ahead-of-time compilation" (TensorRT for RTX, Timing Cache Migration).
        on_event(Note(f"{tensorrt_name(trt)} has no timing cache (NVIDIA made its timing-cache calls no-ops);"
                      f" {Path(path).name} is neither read nor written"))
        return None
    data = Path(path).read_bytes() if Path(path).is_file() else b""
    cache = config.create_timing_cache(data)
    # set_timing_cache reports a refused cache with False; compare to False in case a build returns None.
    if cache is None or config.set_timing_cache(cache, ignore_mismatch=False) is False:
        on_event(Step(f"timing cache {path} does not fit this TensorRT and GPU; starting a fresh one"))
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    elif data:
        on_event(Step(f"reusing the timing cache {path}"))
    return Path(path)


def _relative(path: Path, folder: Path) -> str:
    """`path` as the sidecar records it: relative to the engine's folder where it can be."""
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive, on Windows
        return str(path.resolve())


def _write_buffer(path: str | Path, data) -> None:
    """Write TensorRT's IHostMemory (a buffer) atomically, without a copy into Python bytes."""
    with atomic_output(path) as temporary, open(temporary, "wb") as handle:
        handle.write(memoryview(data))
