"""ONNX Runtime backend: the wrapper apps embed. Imports numpy, onnxruntime and Pillow only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from alexnet_export.errors import InputError, ModelLoadError, OptionError, ProviderError, one_line
from alexnet_export.models.spec import CHANNELS, ArtifactMetadata
from alexnet_export.runtimes.base import Runtime
from alexnet_export.runtimes.checks import DLPACK_CUDA, BatchBounds, callers_kind, dlpack_device
from alexnet_export.runtimes.onnx.reader import read_graph_facts
from alexnet_export.runtimes.onnx.arrays import Binder, FiniteCheck, GraphBinder, device_value, host_view
from alexnet_export.runtimes.onnx.providers import GPU_PROVIDERS, Providers, provider_name, resolve_providers


class OnnxRuntime(Runtime):
    """Run an exported .onnx file.

    providers: None picks the best provider that loads here (TensorRT, CUDA, then CPU). Else a
    name, a (name, options dict) pair, or a list or tuple of names and pairs, best first; what is
    asked for must be honoured in full, or this raises ProviderError instead of quietly running
    on something else. `self.providers` says what actually runs.
    threads: intra-op threads (None: ONNX Runtime's default, one per core).
    spinning: False stops the intra-op threads from spinning after each run. Spinning keeps the
    cores busy and slows whatever shares the machine (other sessions, a server's event loop) for
    no gain between runs; bench and serve turn it off.
    tensorrt_cache_dir: run on ONNX Runtime's TensorRT provider and keep the engines it builds
    (and its timing cache) in this folder, so later sessions skip the minutes-long build. The
    provider must load: there is no silent fallback.
    tf32: whether FP32 convolutions and matrix products on the CUDA provider may use TF32 (its
    `use_tf32` option). None keeps the provider's default, which is TF32 on: the serving choice,
    about 2.5x faster at batch 64 on an H200 with logits within about 1e-3 of the logit scale.
    False is strict FP32, the verification choice (inside the FP32 gate). No effect on the CPU
    provider, which has no TF32; not settable for ONNX Runtime's TensorRT provider, so
    tf32=False with providers=None leaves TensorRT out. `self.tf32` says what runs (None: no CUDA).
    enable_cuda_graph: capture the model as a CUDA graph on the first call and replay it (the
    CUDA provider's `enable_cuda_graph`): less launch overhead at small batches. Its limits: the
    batch size of the first call is the only one this runtime then takes; every node must run on
    the CUDA provider (ONNX Runtime refuses the session otherwise); inputs are copied into one
    fixed device buffer and calls are serialised. Needs the CUDA provider: an error elsewhere.
    `self.precision` is what the graph holds (runtimes/onnx/reader.py), whatever its label says.

    `predict` takes a numpy array or any DLPack array (torch tensor, CuPy array) on the host or on
    this runtime's GPU, and returns logits of the same kind on the same device; a device array
    is never copied to the host (runtimes/onnx/arrays.py says where each kind of input goes).
    """

    backend = "ONNX"

    def __init__(
        self,
        path: str | Path,
        providers: Providers | None = None,
        *,
        threads: int | None = None,
        spinning: bool = True,
        session_options: ort.SessionOptions | None = None,
        tensorrt_cache_dir: str | Path | None = None,
        tf32: bool | None = None,
        enable_cuda_graph: bool = False,
    ):
        super().__init__(path)
        options = session_options or ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        requested, explicit = resolve_providers(providers, tensorrt_cache_dir=tensorrt_cache_dir, tf32=tf32,
                                                enable_cuda_graph=enable_cuda_graph)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=requested)
        except Exception as exc:  # ONNX Runtime raises its own exception types for every load failure
            raise ModelLoadError(f"ONNX Runtime cannot load {self.path}: {one_line(exc, 500)}") from None
        self.providers = tuple(self.session.get_providers())
        if explicit:  # what was asked for runs in full, or not at all
            missing = [name for name in map(provider_name, requested) if name not in self.providers]
            if missing:
                raise ProviderError(
                    f"{', '.join(missing)} failed to load for {self.path.name} (see ONNX Runtime's log above);"
                    f" running providers would be {list(self.providers)}"
                )
        self.device = self.providers[0]
        self.cuda_device = self._cuda_device()
        self.host_finite_check = self.cuda_device is None  # on a GPU provider the binder checks on the device
        self.tf32 = self._tf32() if self.cuda_device is not None else None
        self._input, self._output = self._describe_io()
        self.bounds = self._batch_bounds()
        num_classes = self.session.get_outputs()[0].shape[1]
        if not isinstance(num_classes, int):
            raise ModelLoadError(f"{self.path} has a dynamic class dimension; expected a fixed class count")
        try:
            props = self.session.get_modelmeta().custom_metadata_map
            self.metadata = ArtifactMetadata.from_props(props, num_classes)
        except ValueError as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from None
        if self.metadata.preprocessing.takes_pixels != (self.session.get_inputs()[0].type == "tensor(uint8)"):
            raise ModelLoadError(f"{self.path}: its metadata says its input is"
                                 f" {self.metadata.preprocessing.input_format} but the graph takes"
                                 f" {self.session.get_inputs()[0].type}; expected the two to agree, as alexnet-export writes them")
        self.precision = read_graph_facts(self.path).precision
        check = FiniteCheck.on_cuda(self.cuda_device) if self.cuda_device is not None else None
        if self.metadata.preprocessing.takes_pixels:
            # uint8 pixels: bound on the host and copied by ONNX Runtime (a quarter of a float batch);
            # the device buffers, the CUDA graph and the finiteness check are float32 machinery.
            if enable_cuda_graph:
                raise OptionError(f"{self.path.name} takes uint8 pixels; enable_cuda_graph runs float32"
                                  " inputs only", argument="enable_cuda_graph")
            self._binder = Binder(self.session, self._input, self._output, None, None)
        elif enable_cuda_graph:
            self._binder = GraphBinder(self.session, self._input, self._output, self.cuda_device, num_classes, check)
        else:
            self._binder = Binder(self.session, self._input, self._output, self.cuda_device, check)

    def predict(self, batch):
        """Logits (batch, num_classes) float32 for a preprocessed float32 NCHW batch: a numpy array,
        or a DLPack array (returned as the same kind, on the same device)."""
        if isinstance(batch, np.ndarray) or not hasattr(batch, "__dlpack__"):
            return super().predict(batch)
        self._check_open()
        kind, index = dlpack_device(batch)
        back = callers_kind(batch)
        if kind != DLPACK_CUDA:  # host memory (a torch CPU tensor, pinned memory): the numpy path, no copy
            return back(self.predict(host_view(batch)))
        if self.cuda_device is None:
            raise InputError(f"input is on cuda:{index}, but this runtime runs on {self.device}; pass a host array,"
                             " or open the model with the CUDA provider")
        if self.metadata.preprocessing.takes_pixels:
            raise InputError(f"input is on cuda:{index}; {self.path.name} takes uint8 pixels as a host array")
        if index != self.cuda_device:
            raise InputError(f"input is on cuda:{index}; this runtime runs on cuda:{self.cuda_device}")
        value = device_value(batch, self.bounds, self.metadata.preprocessing.crop)
        return back(self._binder.device(value, index))

    def _cuda_device(self) -> int | None:
        """The CUDA device the model runs on, when a GPU provider runs it."""
        if self.device not in GPU_PROVIDERS:
            return None
        return int(self.session.get_provider_options().get(self.device, {}).get("device_id", 0))

    def _tf32(self) -> bool:
        # What the CUDA provider reports it runs with; TensorRT's provider keeps TensorRT's default (TF32 on).
        options = self.session.get_provider_options().get("CUDAExecutionProvider", {})
        return self.device != "CUDAExecutionProvider" or options.get("use_tf32", "1") != "0"

    def _describe_io(self) -> tuple[str, str]:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelLoadError(
                f"{self.path} has {len(inputs)} inputs and {len(outputs)} outputs; expected one image input and one"
                " logits output"
            )
        shape = inputs[0].shape
        pixels = inputs[0].type == "tensor(uint8)" and len(shape) == 4 and shape[3] == CHANNELS
        if not pixels and (inputs[0].type != "tensor(float)" or len(shape) != 4 or shape[1] != CHANNELS):
            raise ModelLoadError(
                f"{self.path} input {inputs[0].name!r} is {inputs[0].type} {shape}; expected float [batch, 3, H, W]"
                " or uint8 pixels [batch, H, W, 3]"
            )
        if outputs[0].type != "tensor(float)" or len(outputs[0].shape) != 2:
            raise ModelLoadError(
                f"{self.path} output {outputs[0].name!r} is {outputs[0].type} {outputs[0].shape};"
                " expected float [batch, classes]"
            )
        return inputs[0].name, outputs[0].name

    def _batch_bounds(self) -> BatchBounds:
        batch = self.session.get_inputs()[0].shape[0]
        return BatchBounds(batch, batch) if isinstance(batch, int) and batch > 0 else BatchBounds()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._binder.host(batch)

    def _close(self) -> None:
        self.session = self._binder = None
