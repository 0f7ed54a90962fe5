"""OpenVINO backend: runs an IR (.xml beside its .bin) made by `alexnet-export openvino`.

Imports numpy only; openvino loads when a runtime opens (`pip install 'alexnet-export[openvino]'`).
The IR carries the toolkit's metadata in its rt_info, including the precision it is meant to run
in: a BF16 IR compiles with INFERENCE_PRECISION_HINT bf16 and refuses a CPU without BF16 (no
silent FP32, no slow emulation); every other IR compiles with f32, so an "FP32" file never runs
in BF16 just because the CPU could (OpenVINO's default on such CPUs).
API: docs.openvino.ai (openvino.Core, CompiledModel, InferRequest; Precision Control).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from alexnet_export.errors import (
    AlexNetExportError,
    InferenceError,
    MissingDependencyError,
    ModelLoadError,
    ProviderError,
    one_line,
)
from alexnet_export.extras import import_extra
from alexnet_export.models.precisions import BF16, FOREIGN_INT8, FP32, INT8_OPENVINO, precision as precision_row
from alexnet_export.models.spec import IMAGE_DIMS, PRECISION_KEY, ArtifactMetadata
from alexnet_export.runtimes.base import Runtime
from alexnet_export.runtimes.checks import BatchBounds

RT_INFO_SECTION = "alexnet_export"  # rt_info[alexnet_export][<key>] holds each metadata_props entry


class OpenVinoUnavailable(AlexNetExportError, RuntimeError):
    """OpenVINO cannot run here: this CPU lacks what the IR asks for (BF16), or (OpenVinoNotInstalled)
    openvino is not installed."""


class OpenVinoNotInstalled(MissingDependencyError, OpenVinoUnavailable):
    """openvino is not installed: an ImportError naming the extra, and an OpenVinoUnavailable."""


def import_openvino():
    """The `openvino` package, or OpenVinoNotInstalled in one line naming the extra that installs it."""
    return import_extra("openvino", "OpenVINO is not installed", OpenVinoNotInstalled)


def ir_metadata(model) -> dict[str, str]:
    """The toolkit's metadata_props stored in an `openvino.Model`'s rt_info (empty for foreign IRs)."""
    info = model.get_rt_info()
    if RT_INFO_SECTION not in info:
        return {}
    section = info[RT_INFO_SECTION]  # a dict of OVAny values, each a string we wrote
    return {f"{RT_INFO_SECTION}.{key}": str(value.astype(str)) for key, value in dict(section).items()}


def ir_precision(model, props: dict[str, str]) -> str:
    """What an IR runs as: FakeQuantize nodes mean INT8 whatever the label says; else the label's BF16 or FP32."""
    quantized = any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())
    label = props.get(PRECISION_KEY, FP32)
    if quantized:
        return INT8_OPENVINO if label == INT8_OPENVINO else FOREIGN_INT8
    return BF16 if label == BF16 else FP32


def cpu_supports(core, device: str, precision: str) -> bool:
    """Whether `device` runs `precision` natively (OpenVINO's OPTIMIZATION_CAPABILITIES lists BF16 where it does)."""
    if precision != BF16:
        return True
    return "BF16" in core.get_property(device, "OPTIMIZATION_CAPABILITIES")


def check_cpu_runs(precision: str, device: str = "CPU") -> None:
    """Refuse, before any work, an IR precision this machine's `device` cannot run natively."""
    core = import_openvino().Core()
    if not cpu_supports(core, device, precision):
        raise OpenVinoUnavailable(f"this {device} ({core.get_property(device, 'FULL_DEVICE_NAME')}) has no BF16"
                                  " instructions (AVX512_BF16 or AMX), so a BF16 IR could neither be verified nor"
                                  " run here; make the FP32 or INT8 IR")


class OpenVinoRuntime(Runtime):
    """Run an OpenVINO IR on `device` ("CPU"). threads: inference threads (None: OpenVINO's default).

    Each calling thread gets its own infer request (requests are not thread-safe), so `predict`
    may be called from many threads at once, as the server does.
    """

    backend = "OpenVINO"

    def __init__(self, path: str | Path, *, threads: int | None = None, device: str = "CPU"):
        super().__init__(path)
        ov = import_openvino()
        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with multi-line text
            raise ModelLoadError(f"OpenVINO cannot read {self.path}: {one_line(exc, 400)}") from None
        props = ir_metadata(model)
        self.precision = ir_precision(model, props)
        if device not in core.available_devices:
            raise ProviderError(f"OpenVINO has no device {device!r} here; available: {', '.join(core.available_devices)}")
        cpu_name = core.get_property(device, "FULL_DEVICE_NAME")
        if not cpu_supports(core, device, self.precision):
            raise ProviderError(f"{self.path.name} is a BF16 model and this {device} ({cpu_name}) has no BF16"
                                " instructions (AVX512_BF16 or AMX); run the FP32 or INT8 IR here")
        hint = precision_row(self.precision).openvino_hint or "f32"
        config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        self._input, num_classes, self.bounds = _describe_io(model, self.path)
        try:
            self._compiled = core.compile_model(model, device, config)
        except Exception as exc:
            raise ModelLoadError(f"OpenVINO cannot compile {self.path} for {device}: {one_line(exc, 400)}") from None
        try:
            self.metadata = ArtifactMetadata.from_props(props, num_classes)
        except ValueError as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from None
        self.device = f"OpenVINO {ov.__version__.split('-')[0]} {device} ({cpu_name}, {hint})"
        self._requests = threading.local()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self._compiled.create_infer_request()
        try:
            # Zero-copy both ways: the request reads the checked batch where it is (share_inputs), and
            # its output tensor is not copied into a fresh dict (share_outputs). That tensor belongs to
            # this thread's request and its next call overwrites it, so the logits (a few KB) are copied
            # out once, into an array the caller owns.
            request.infer({self._input: batch}, share_inputs=True, share_outputs=True)
            return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)
        except Exception as exc:
            raise InferenceError(f"OpenVINO failed on a batch of {len(batch)}: {one_line(exc, 400)}") from None

    def _close(self) -> None:
        self._compiled = None
        self._requests = threading.local()


def _describe_io(model, path: Path) -> tuple[str, int, BatchBounds]:
    """The input's name, the class count and the batch bounds, after checking the IR is an image classifier."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelLoadError(f"{path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs;"
                             " expected one image input and one logits output")
    image, logits = model.inputs[0], model.outputs[0]
    shape, out = image.get_partial_shape(), logits.get_partial_shape()
    dims = [d.get_length() if d.is_static else -1 for d in shape] if shape.rank.is_static else []
    if image.get_element_type().get_type_name() != "f32" or len(dims) != 4 or tuple(dims[1:]) != IMAGE_DIMS:
        raise ModelLoadError(f"{path} input is {image.get_element_type()} {shape}; expected f32 [batch, 3, 224, 224]")
    if out.rank.is_dynamic or out.rank.get_length() != 2 or out[1].is_dynamic:
        raise ModelLoadError(f"{path} output is {out}; expected [batch, classes] with a fixed class count")
    batch = dims[0]
    return image.get_any_name(), out[1].get_length(), BatchBounds(batch, batch) if batch > 0 else BatchBounds()
