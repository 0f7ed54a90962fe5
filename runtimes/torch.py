"""Eager PyTorch backend: the reference the exported files are checked against.

torch is imported when a TorchRuntime is created, never when this module is imported, so
`from alexnet_export.runtimes import TorchRuntime` costs nothing in an app that never uses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from alexnet_export.models.spec import FP32, ArtifactMetadata, default_labels
from alexnet_export.runtimes.base import Runtime


class TorchRuntime(Runtime):
    """Run the seed AlexNet eagerly.

    model: a checkpoint path (.pt, .pth, .safetensors), an `nn.Module`, or None for the seeded
    random init. The model is put in eval mode and run under `torch.inference_mode`.
    """

    def __init__(
        self,
        model=None,
        *,
        num_classes: int | None = None,
        seed: int = 0,
        labels: Sequence[str] | None = None,
        threads: int | None = None,
    ):
        try:
            import torch
        except ImportError:
            raise ImportError(
                "TorchRuntime needs PyTorch, which is not installed here; install it (pip install torch)"
                " or use OnnxRuntime, which does not"
            ) from None

        from alexnet_export.models.weights import load_alexnet

        if threads is not None:
            torch.set_num_threads(threads)
        if isinstance(model, torch.nn.Module):
            self.model, source = model.eval(), "in-memory module"
        else:
            loaded = load_alexnet(model, num_classes=num_classes, seed=seed)
            self.model, source = loaded.model, loaded.source
        self.path = Path(model) if isinstance(model, (str, Path)) else None
        classes = self.model.classifier[-1].out_features
        self.metadata = ArtifactMetadata(
            num_classes=classes,
            labels=tuple(labels) if labels is not None else default_labels(classes),
            source_weights=source,
        )
        self.device = "torch eager cpu"
        self.precision = FP32
        self._torch = torch

    def _run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            return self.model(torch.from_numpy(batch)).numpy()
