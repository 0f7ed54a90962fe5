"""Input checks that run before any backend sees an array: the error names expected and actual."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alexnet_export.errors import InputError
from alexnet_export.models.spec import CHANNELS, IMAGE_SIZE


@dataclass(frozen=True)
class BatchBounds:
    """Batch sizes a model accepts: a fixed-batch export has min == max."""

    minimum: int = 1
    maximum: int | None = None  # None: no limit

    def describe(self) -> str:
        if self.maximum is None:
            return f">= {self.minimum}"
        if self.minimum == self.maximum:
            return f"exactly {self.minimum}"
        return f"{self.minimum}..{self.maximum}"


def check_batch(batch, bounds: BatchBounds = BatchBounds(), size: int = IMAGE_SIZE) -> np.ndarray:
    """Return `batch` as a C-contiguous float32 NCHW array, or raise InputError."""
    if not isinstance(batch, np.ndarray):
        raise InputError(
            f"predict() takes a numpy array, got {type(batch).__name__}; use classify() for images"
        )
    expected_shape = f"(batch, {CHANNELS}, {size}, {size})"
    if batch.dtype != np.float32:
        hint = " (raw pixels? use classify(), which normalises them)" if batch.dtype == np.uint8 else ""
        raise InputError(f"input dtype is {batch.dtype}; expected float32{hint}")
    if batch.ndim != 4:
        raise InputError(f"input has shape {batch.shape} (rank {batch.ndim}); expected rank 4 {expected_shape}")
    if batch.shape[1] != CHANNELS:
        hint = " (looks like NHWC: use batch.transpose(0, 3, 1, 2))" if batch.shape[3] == CHANNELS else ""
        raise InputError(f"input has {batch.shape[1]} channels in shape {batch.shape}; expected {expected_shape}{hint}")
    if batch.shape[2:] != (size, size):
        raise InputError(f"input has spatial size {batch.shape[2]}x{batch.shape[3]}; expected {size}x{size}")
    count = batch.shape[0]
    if count < bounds.minimum or (bounds.maximum is not None and count > bounds.maximum):
        raise InputError(f"input batch size is {count}; this model takes a batch of {bounds.describe()}")
    # Contiguous first: isfinite and the backend both read faster from one block.
    batch = np.ascontiguousarray(batch)
    if not np.isfinite(batch).all():
        bad = int(batch.size - np.count_nonzero(np.isfinite(batch)))
        raise InputError(f"input contains {bad} NaN or infinite values; expected finite numbers")
    return batch
