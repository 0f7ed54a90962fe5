"""Input checks that run before any backend sees an array: the error names expected and actual."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from alexnet_export.errors import InputError
from alexnet_export.models.spec import CHANNELS, IMAGE_SIZE

# DLPack's DLDeviceType code (dlpack.h) for CUDA device memory; other arrays go through
# numpy.from_dlpack, which reads host memory and refuses the rest.
DLPACK_CUDA = 2


@dataclass(frozen=True)
class BatchBounds:
    """Batch sizes a model accepts: a fixed-batch export has min == max."""

    minimum: int = 1
    maximum: int | None = None  # None: no limit

    def admits(self, size: int) -> bool:
        return size >= self.minimum and (self.maximum is None or size <= self.maximum)

    def describe(self) -> str:
        if self.maximum is None:
            return f">= {self.minimum}"
        if self.minimum == self.maximum:
            return f"exactly {self.minimum}"
        return f"{self.minimum}..{self.maximum}"


def check_batch(batch, bounds: BatchBounds = BatchBounds(), size: int = IMAGE_SIZE, pixels: bool = False) -> np.ndarray:
    """Return `batch` as a C-contiguous float32 NCHW array of finite numbers, or raise InputError.
    pixels: the model takes uint8 NHWC pixels instead (Preprocessing.takes_pixels), always finite."""
    batch = check_array(batch, bounds, size, pixels)
    if not pixels:
        check_finite(batch)
    return batch


def check_array(batch, bounds: BatchBounds = BatchBounds(), size: int = IMAGE_SIZE, pixels: bool = False) -> np.ndarray:
    """`batch` as a C-contiguous numpy array of the model's input, checked for everything but its values."""
    if not isinstance(batch, np.ndarray):
        raise InputError(
            f"predict() takes a numpy array or a DLPack array (torch, CuPy), got {type(batch).__name__};"
            " use classify() for images"
        )
    if pixels:
        check_pixels(batch.shape, str(batch.dtype), bounds, size)
    else:
        hint = (" (raw pixels? use classify(), which normalises them, or export with --input-format uint8)"
                if batch.dtype == np.uint8 else "")
        check_layout(batch.shape, str(batch.dtype), batch.dtype == np.float32, bounds, size, hint)
    # Contiguous here, so the finiteness check and the backend both read one block.
    return np.ascontiguousarray(batch)


def check_pixels(shape: tuple, dtype: str, bounds: BatchBounds = BatchBounds(), size: int = IMAGE_SIZE) -> None:
    """The input of a file that takes pixels: uint8 (batch, size, size, 3) RGB, resized and cropped."""
    shape = tuple(int(dim) for dim in shape)
    expected = f"uint8 RGB pixels (batch, {size}, {size}, {CHANNELS}), resized and cropped (the model normalises them)"
    if dtype != "uint8":
        raise InputError(f"input dtype is {dtype}; this model takes {expected}")
    if len(shape) != 4 or shape[1:] != (size, size, CHANNELS):
        hint = " (looks like NCHW: use batch.transpose(0, 2, 3, 1))" if len(shape) == 4 and shape[1] == CHANNELS else ""
        raise InputError(f"input has shape {shape}; this model takes {expected}{hint}")
    _check_count(shape[0], bounds)


def check_layout(shape: tuple, dtype: str, is_float32: bool, bounds: BatchBounds = BatchBounds(),
                 size: int = IMAGE_SIZE, dtype_hint: str = "") -> None:
    """Dtype, rank, channels, spatial size and batch bounds of any array (numpy, DLPack), by its description."""
    shape = tuple(int(dim) for dim in shape)
    expected_shape = f"(batch, {CHANNELS}, {size}, {size})"
    if not is_float32:
        raise InputError(f"input dtype is {dtype}; expected float32{dtype_hint}")
    if len(shape) != 4:
        raise InputError(f"input has shape {shape} (rank {len(shape)}); expected rank 4 {expected_shape}")
    if shape[1] != CHANNELS:
        hint = " (looks like NHWC: use batch.transpose(0, 3, 1, 2))" if shape[3] == CHANNELS else ""
        raise InputError(f"input has {shape[1]} channels in shape {shape}; expected {expected_shape}{hint}")
    if shape[2:] != (size, size):
        raise InputError(f"input has spatial size {shape[2]}x{shape[3]}; expected {size}x{size}")
    _check_count(shape[0], bounds)


def _check_count(count: int, bounds: BatchBounds) -> None:
    if not bounds.admits(count):
        raise InputError(f"input batch size is {count}; this model takes a batch of {bounds.describe()}")


def check_finite(batch: np.ndarray) -> None:
    # isfinite().all() measured faster than min()/max() or a float64 sum (5.5 vs 8.1 vs 10.1 ms at batch 64, AMD EPYC).
    if not np.isfinite(batch).all():
        raise non_finite_error(int(batch.size - np.count_nonzero(np.isfinite(batch))))


def non_finite_error(count: int) -> InputError:
    """The one message for NaN or infinite inputs, wherever they are found (host or device)."""
    return InputError(f"input contains {count} NaN or infinite values; expected finite numbers")


def callers_kind(array):
    """The `from_dlpack` of the library `array` came from, to hand results back as its kind; or InputError."""
    library = type(array).__module__.split(".")[0]
    from_dlpack = getattr(sys.modules.get(library), "from_dlpack", None)
    if from_dlpack is None:
        raise InputError(f"predict() got a {type(array).__name__} whose library {library!r} has no from_dlpack to"
                         " return logits as its kind; expected a numpy array, a torch tensor or a CuPy array")
    return from_dlpack


def dlpack_device(array) -> tuple[int, int]:
    kind, index = array.__dlpack_device__()
    return int(kind), int(index)
