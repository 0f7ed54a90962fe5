"""TensorRT backend: runs an engine built by `alexnet-export trt` on a GPU it targets.

Imports numpy only; tensorrt (or TensorRT for RTX) and cuda-python load when a runtime opens. An
engine is native code for one builder release and a set of GPUs, written in its sidecar
(runtimes/tensorrt/sidecar.py), so the GPU, read from the CUDA driver, and the installed builder are
checked against the sidecar before TensorRT reads a byte of the engine. Load only engines this
toolkit built or that you trust.
API: docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/ (Core: Runtime, ICudaEngine,
IExecutionContext), docs.nvidia.com/deeplearning/tensorrt-rtx/latest/inference-library/
engine-compatibility.html (getEngineValidity) and
nvidia.github.io/cuda-python/cuda-bindings/latest/module/runtime.html.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from alexnet_export.errors import InferenceError, ModelLoadError, ProviderError
from alexnet_export.models.spec import ArtifactMetadata, Preprocessing
from alexnet_export.runtimes.base import Runtime
from alexnet_export.runtimes.checks import BatchBounds
from alexnet_export.runtimes.tensorrt.sidecar import (
    REBUILD_HINT,
    Targets,
    builder_description,
    check_builder_version,
    check_targets,
    Sidecar,
    read_sidecar,
)
from alexnet_export.runtimes.tensorrt.support import (
    Gpu,
    TensorRTNotInstalled,
    TensorRTUnavailable,
    builder_named,
    cuda_call,
    gpu_identity,
    import_builder,
    import_cudart,
    tensorrt_log,
    tensorrt_name,
)

FLOAT32_BYTES = 4


class TensorRTRuntime(Runtime):
    """Run a TensorRT engine file (with its `.json` sidecar) on CUDA device `device`.

    `self.precision` is the one the engine was built in, from its sidecar.

    Device buffers for the engine's largest batch are allocated once; `close()` frees them.
    Calls are serialised: the execution context holds per-call state (input shape, tensor
    addresses) and the device buffers are shared. The GPU runs one batch at a time anyway; for
    concurrent calls open one runtime per thread.
    """

    serialised = True
    backend = "TensorRT"
    file_noun = "engine file"

    def __init__(self, path: str | Path, *, device: int = 0):
        self._device_index = device
        self._context = self._engine = self._trt_runtime = self._stream = self._cudart = None
        self._buffers: dict[str, int] = {}
        super().__init__(path)  # the lock, and "engine file ... does not exist or is not a file"
        _require_engine_file(self.path)
        sidecar = read_sidecar(self.path)
        # Everything the sidecar can refuse is refused here, before TensorRT reads the engine.
        gpu = _gpu(device, sidecar, self.path)
        check_targets(sidecar, gpu, str(self.path))
        trt = _builder_module(sidecar, self.path)
        check_builder_version(sidecar, trt.__version__, str(self.path))
        self._cudart = _load_cudart(device)
        try:
            self._open(trt, sidecar)
        except BaseException:
            with contextlib.suppress(Exception):  # keep the load error, not a cleanup one
                self.close()
            raise
        self.device = f"{tensorrt_name(trt)} on {gpu.name}"
        self.cuda_device = device
        self.tf32 = None  # fixed when the engine was built, and not recorded in its sidecar
        self.precision = sidecar.precision

    def _open(self, trt, sidecar: Sidecar) -> None:
        with tensorrt_log(trt).listening() as log:
            self._trt_runtime = trt.Runtime(log.logger)
            if sidecar["builder"].get("version_compatible"):
                # The engine carries TensorRT's lean runtime, which TensorRT runs only when told the plan is
                # trusted (Version Compatibility page): it is, its sidecar is of our build.
                self._trt_runtime.engine_host_code_allowed = True
            _check_validity(trt, self._trt_runtime, self.path)
            self._engine = self._trt_runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self._engine is None:
                raise ModelLoadError(f"{tensorrt_name(trt)} cannot load {self.path}: {log.errors()}; {REBUILD_HINT}")
        try:  # read once: labels, and what the input is (float32 NCHW, or a pixel file's uint8 NHWC)
            described = ArtifactMetadata.from_props(sidecar.metadata)
        except ValueError as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from None
        spec = described.preprocessing
        self._input, self._output = _io_names(trt, self._engine, self.path, spec)
        self.bounds = _batch_bounds(self._engine, self._input)
        self._classes = _class_count(self._engine, self._output, self.path)
        self.metadata = described.for_classes(self._classes)
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise ModelLoadError(f"TensorRT cannot create an execution context for {self.path} (out of GPU memory?)")
        self._stream = self._cuda(self._cudart.cudaStreamCreate(), "cudaStreamCreate")
        most = self.bounds.maximum
        sizes = {self._input: most * int(np.prod(spec.input_dims)) * np.dtype(spec.input_dtype).itemsize,
                 self._output: most * self._classes * FLOAT32_BYTES}
        for name, nbytes in sizes.items():
            self._buffers[name] = self._cuda(self._cudart.cudaMalloc(nbytes), f"cudaMalloc for {name}")

    def _run(self, batch: np.ndarray) -> np.ndarray:  # under the runtime's lock (serialised)
        cudart, context, count = self._cudart, self._context, len(batch)
        # The current CUDA device is per host thread, and predict() may come from any thread.
        self._cuda(cudart.cudaSetDevice(self._device_index), "cudaSetDevice")
        if not context.set_input_shape(self._input, batch.shape):
            accepted = f"batch {self.bounds.describe()} of {'x'.join(map(str, self.metadata.preprocessing.input_dims))}"
            raise InferenceError(f"TensorRT refused input shape {batch.shape}; this engine takes {accepted}")
        shape = tuple(context.get_tensor_shape(self._output))
        if shape != (count, self._classes):
            raise InferenceError(f"TensorRT output shape is {shape}; expected ({count}, {self._classes})")
        for name, address in self._buffers.items():
            if not context.set_tensor_address(name, address):
                raise InferenceError(f"TensorRT refused the device buffer for {name}")
        logits = np.empty(shape, dtype=np.float32)  # fresh per call: callers may keep it
        # Pageable host memory is fine for cudaMemcpyAsync; the synchronize below orders everything.
        self._copy(self._buffers[self._input], batch.ctypes.data, batch.nbytes, "HostToDevice")
        if not context.execute_async_v3(int(self._stream)):
            raise InferenceError(f"TensorRT failed to run a batch of {count} (see its log above)")
        self._copy(logits.ctypes.data, self._buffers[self._output], logits.nbytes, "DeviceToHost")
        self._cuda(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return logits

    def _copy(self, destination: int, source: int, nbytes: int, direction: str) -> None:
        kind = getattr(self._cudart.cudaMemcpyKind, f"cudaMemcpy{direction}")
        self._cuda(self._cudart.cudaMemcpyAsync(destination, source, nbytes, kind, self._stream), "cudaMemcpyAsync")

    def _cuda(self, result: tuple, call: str):
        return cuda_call(self._cudart, result, call)

    def _close(self) -> None:
        """Free the device buffers and the stream (close() holds the lock); safe to call twice."""
        # TensorRT objects go before the memory they point at.
        self._context = self._engine = self._trt_runtime = None
        releases = [(self._cudart.cudaFree, address, "cudaFree") for address in self._buffers.values()]
        if self._stream is not None:
            releases.append((self._cudart.cudaStreamDestroy, self._stream, "cudaStreamDestroy"))
        self._buffers, self._stream = {}, None
        failures = [call for release, handle, call in releases if release(handle)[0] != _success(self._cudart)]
        if failures:
            raise RuntimeError(f"{', '.join(failures)} failed while closing {self.path.name}")

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown may have torn cuda-python down already
            pass


def _require_engine_file(path: Path) -> None:
    """An engine file that is there (checked by Runtime.__init__) and not empty."""
    if path.stat().st_size == 0:
        raise ModelLoadError(f"engine file {path} is empty; {REBUILD_HINT}")


def _gpu(device: int, sidecar: Sidecar, path: Path) -> Gpu:
    try:
        return gpu_identity(device)
    except TensorRTUnavailable as exc:
        targets = Targets.from_json(sidecar["targets"]).describe()
        raise ProviderError(f"{exc}; {path} runs on {targets} ({builder_description(sidecar)})") from None


def _builder_module(sidecar: Sidecar, path: Path):
    """The builder that made the engine (its runtime is the only one that reads it), imported;
    TensorRTNotInstalled (an ImportError) naming the engine and the extra where it is missing."""
    builder = builder_named(sidecar["builder"]["name"])
    try:
        return import_builder(builder)
    except TensorRTNotInstalled as exc:
        raise TensorRTNotInstalled(f"{path} was built by {builder_description(sidecar)}; {exc}") from None


def _load_cudart(device: int):
    """cuda-python's runtime with `device` made current (TensorRTNotInstalled without cuda-python)."""
    cudart = import_cudart()
    cuda_call(cudart, cudart.cudaSetDevice(device), f"no usable NVIDIA GPU: cudaSetDevice({device})", ProviderError)
    return cudart


def _check_validity(trt, runtime, path: Path) -> None:
    """TensorRT for RTX's own check of an engine's header against this machine (getEngineValidity):
    version, compute capability, CUDA driver and runtime, memory; a no-op where the API is absent."""
    header_size = getattr(runtime, "engine_header_size", 0)
    if not header_size or not hasattr(runtime, "get_engine_validity"):
        return
    with open(path, "rb") as handle:
        validity, diagnostics = runtime.get_engine_validity(handle.read(header_size))
    if validity == trt.EngineValidity.INVALID:
        reasons = [name.lower().replace("_", " ") for name, flag in trt.EngineInvalidityDiagnostics.__members__.items()
                   if int(diagnostics) & int(flag)]
        raise ModelLoadError(f"{tensorrt_name(trt)} finds {path} invalid on this machine"
                             f" ({', '.join(reasons) or tensorrt_log(trt).errors()}); {REBUILD_HINT}")


def _success(cudart):
    return cudart.cudaError_t.cudaSuccess


def _io_names(trt, engine, path: Path, spec: Preprocessing) -> tuple[str, str]:
    names = [engine.get_tensor_name(index) for index in range(engine.num_io_tensors)]
    inputs = [name for name in names if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT]
    outputs = [name for name in names if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelLoadError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; expected one of each")
    input_type = trt.DataType.UINT8 if spec.takes_pixels else trt.DataType.FLOAT
    for name, expected, word in ((inputs[0], input_type, spec.input_dtype), (outputs[0], trt.DataType.FLOAT, "float32")):
        if engine.get_tensor_dtype(name) != expected:
            raise ModelLoadError(f"{path} tensor {name!r} is {engine.get_tensor_dtype(name)}; expected {word}")
    shape = tuple(engine.get_tensor_shape(inputs[0]))
    if shape[1:] != spec.input_dims:
        raise ModelLoadError(f"{path} input {inputs[0]!r} has shape {list(shape)};"
                             f" expected [batch, {', '.join(map(str, spec.input_dims))}]")
    return inputs[0], outputs[0]


def _batch_bounds(engine, input_name: str) -> BatchBounds:
    fixed = engine.get_tensor_shape(input_name)[0]
    if fixed > 0:
        return BatchBounds(fixed, fixed)
    smallest, _, largest = engine.get_tensor_profile_shape(input_name, 0)  # profile 0: (min, opt, max)
    return BatchBounds(int(smallest[0]), int(largest[0]))


def _class_count(engine, output_name: str, path: Path) -> int:
    shape = tuple(engine.get_tensor_shape(output_name))
    if len(shape) != 2 or shape[1] <= 0:
        raise ModelLoadError(f"{path} output {output_name!r} has shape {list(shape)}; expected [batch, classes]")
    return int(shape[1])
