"""Eager PyTorch backend: the reference the exported files are checked against.

torch is imported when a TorchRuntime is created, never when this module is imported, so
`from alexnet_export.runtimes import TorchRuntime` costs nothing in an app that never uses it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from alexnet_export.errors import ArgumentError, OptionError, ProviderError
from alexnet_export.extras import require
from alexnet_export.models.labels import read_labels_file
from alexnet_export.models.spec import ArtifactMetadata, default_labels
from alexnet_export.models.precisions import FP16, FP32
from alexnet_export.runtimes.base import Runtime
from alexnet_export.runtimes.checks import callers_kind, check_layout, non_finite_error

DTYPES = {"float32": FP32, "float16": FP16}
# torch's TF32 switches are process-wide: runtimes that set them take turns (see TorchRuntime.tf32).
_TF32_LOCK = threading.Lock()


class TorchRuntime(Runtime):
    """Run the seed AlexNet eagerly.

    model: a checkpoint path (.pt, .pth, .safetensors), an `nn.Module`, or None for the seeded
    random init. The model is put in eval mode and run under `torch.inference_mode`.
    labels: class names, or a file of them (one a line), one per class; default: the names the
    checkpoint carries (models/weights.py), else ImageNet's at 1000 classes and class_N otherwise.
    device: "cpu", "cuda" or "cuda:N"; CUDA where torch has none is a ProviderError.
    dtype: "float32" or "float16" (CUDA only: the eager FP16 baseline); channels_last: NHWC memory
    layout for the weights and each batch, which cuDNN's FP16 kernels prefer.
    tf32: on CUDA in FP32, whether convolutions and matrix products may use TF32 (torch's
    `backends.cudnn.allow_tf32` and `backends.cuda.matmul.allow_tf32`). None leaves torch's
    process-wide flags alone (torch's defaults: TF32 convolutions, strict matrix products); True
    or False sets both around each call and restores them, under a lock shared by TorchRuntimes.
    No effect on the CPU. `self.tf32` says what its convolutions run with (None: not CUDA FP32).

    `predict` also takes a torch tensor (or any DLPack array) and returns logits of its kind on its device.
    """

    backend = "torch"

    def __init__(
        self,
        model=None,
        *,
        num_classes: int | None = None,
        seed: int = 0,
        labels: Sequence[str] | str | os.PathLike | None = None,
        threads: int | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        channels_last: bool = False,
        tf32: bool | None = None,
    ):
        super().__init__()  # a checkpoint path is checked by load_alexnet (WeightsError), not as a model file
        require("torch", purpose="TorchRuntime (a PyTorch checkpoint)")
        import torch

        from alexnet_export.models.weights import load_alexnet

        if threads is not None:
            torch.set_num_threads(threads)
        self._device = _torch_device(torch, device)
        if dtype not in DTYPES:
            raise OptionError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}", argument="dtype")
        if dtype == "float16" and self._device.type != "cuda":
            raise OptionError("dtype float16 runs on CUDA only (device='cuda'); use float32 on the CPU", argument="dtype")
        self._dtype = getattr(torch, dtype)
        self._format = torch.channels_last if channels_last else torch.contiguous_format
        loaded = None
        if isinstance(model, torch.nn.Module):
            self.model, source = model.eval(), "in-memory module"
        else:
            loaded = load_alexnet(model, num_classes=num_classes, seed=seed)
            self.model, source = loaded.model, loaded.source
        if (self._device.type, dtype, channels_last) != ("cpu", "float32", False):
            import copy  # Module.to converts in place: the caller's module stays as it was

            self.model = copy.deepcopy(self.model).to(device=self._device, dtype=self._dtype, memory_format=self._format)
        self.path = Path(model) if isinstance(model, (str, Path)) else None
        classes = self.model.classifier[-1].out_features
        self.metadata = ArtifactMetadata(num_classes=classes, labels=_labels(labels, loaded, classes),
                                         source_weights=source)
        on_cuda = self._device.type == "cuda"
        self.cuda_device = self._device.index if on_cuda else None
        self.device = f"torch eager {self._device} ({torch.cuda.get_device_name(self._device)})" if on_cuda else (
            "torch eager cpu")
        self.precision = DTYPES[dtype]
        self._tf32 = tf32 if on_cuda and dtype == "float32" else None
        self.tf32 = (torch.backends.cudnn.allow_tf32 if tf32 is None else tf32) if on_cuda and dtype == "float32" else None
        self._torch = torch

    def predict(self, batch):
        """Logits for a float32 NCHW batch: numpy in, numpy out; a torch tensor (or DLPack array) in,
        the same kind out, on the batch's device."""
        if isinstance(batch, np.ndarray) or not hasattr(batch, "__dlpack__"):
            return super().predict(batch)
        self._check_open()
        torch, back = self._torch, callers_kind(batch)
        tensor = batch if isinstance(batch, torch.Tensor) else torch.from_dlpack(batch)
        check_layout(tuple(tensor.shape), str(tensor.dtype), tensor.dtype == torch.float32, self.bounds,
                     self.metadata.preprocessing.crop)
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            raise non_finite_error(int(finite.numel() - finite.sum()))
        logits = self._forward(tensor).to(tensor.device)
        return logits if isinstance(batch, torch.Tensor) else back(logits)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._forward(self._torch.from_numpy(batch)).cpu().numpy()

    def _forward(self, batch):
        """float32 logits on this runtime's device for a float32 tensor anywhere."""
        torch = self._torch
        batch = batch.to(device=self._device, dtype=self._dtype).contiguous(memory_format=self._format)
        with torch.inference_mode():
            if self._tf32 is None:
                return self.model(batch).float()
            with _TF32_LOCK:  # launches only: the kernels pick their math when queued
                saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
                torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = self._tf32
                try:
                    return self.model(batch).float()
                finally:
                    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _labels(labels, loaded, classes: int) -> tuple[str, ...]:
    """The class names: `labels` (names, or a file of them, one a line), else those the checkpoint carries,
    else the defaults; ArgumentError (naming `labels`) when they are not one per class."""
    if isinstance(labels, (str, os.PathLike)):
        return read_labels_file(labels, classes)
    if labels is not None:
        if len(labels) != classes:
            raise ArgumentError(f"{len(labels)} labels for a model of {classes} classes; expected one per class",
                                argument="labels")
        return tuple(labels)
    carried = loaded.labels if loaded is not None else None
    return carried or default_labels(classes)


def _torch_device(torch, device: str):
    """`device` as a torch.device; CUDA where torch has none is a one-line ProviderError."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise OptionError(f"device {device!r} is not a device; expected 'cpu', 'cuda' or 'cuda:N'",
                          argument="device") from None
    if parsed.type not in ("cpu", "cuda"):
        raise OptionError(f"device {device!r} is not supported; expected 'cpu', 'cuda' or 'cuda:N'", argument="device")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ProviderError(f"device {device!r} needs a CUDA GPU, and this torch {torch.__version__} sees none")
        count = torch.cuda.device_count()
        index = 0 if parsed.index is None else parsed.index
        if index >= count:
            raise ProviderError(f"device {device!r} does not exist; this machine has {count} CUDA device(s)")
        parsed = torch.device("cuda", index)
    return parsed
