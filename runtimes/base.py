"""The interface every backend shares: `predict` on arrays, `classify` on images."""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterable

import numpy as np

from alexnet_export.errors import InferenceError, InputError, ModelArgumentError
from alexnet_export.models.spec import ArtifactMetadata
from alexnet_export.runtimes.checks import BatchBounds, check_array, check_batch
from alexnet_export.runtimes.preprocess import ImageSource, preprocess_batch

Prediction = list[tuple[str, float]]


class Runtime(ABC):
    """A loaded model. Subclasses call `super().__init__(path)` first (the file check, the lock),
    set `metadata`, `bounds`, `device` and `precision` when they open a file, and implement `_run`
    (and `_close` where there is something to release).

    What every backend shares lives here: the missing-file error, the input checks before `_run`
    (`predict`), the error for a call after `close()`, and for backends that serialise calls
    (`serialised`), one lock per runtime that `_run` and `_close` run under.

    `predict` may be called from many threads at once: subclasses keep no per-call state, or set
    `serialised`.
    """

    metadata: ArtifactMetadata
    bounds: BatchBounds = BatchBounds()
    device: str  # what actually runs it, e.g. "CPUExecutionProvider" or "torch eager cpu"
    # What the numbers are: one of models/spec.py's PRECISIONS, or FOREIGN_INT8. Decided once, from
    # what runs (the graph, the engine's build), never from the metadata label, which can be stale.
    precision: str
    # True: calls take turns under one lock per runtime, which close() takes too. For backends that
    # own one set of buffers per loaded model (ExecuTorch's planned memory, LiteRT's interpreter
    # tensors, TensorRT's execution context): two threads at once would overwrite each other's batch.
    serialised: bool = False
    backend: str = "model"  # names it in the closed error: "the OpenVINO runtime for m.xml is closed"
    file_noun: str = "model file"  # names the file in the missing-file error
    # False: `predict` leaves NaN/inf to `_run`, which counts them where the batch runs (a GPU).
    host_finite_check: bool = True
    path: Path | None = None
    _closed: bool = False
    _lock: threading.Lock | None = None

    def __init__(self, path: str | Path | None = None):
        """The state every runtime has; with `path`, ModelArgumentError (a ModelLoadError) unless it is a file."""
        self._closed = False
        self._lock = threading.Lock() if self.serialised else None
        if path is not None:
            self.path = Path(path)
            if not self.path.is_file():
                raise ModelArgumentError(f"{self.file_noun} {self.path} does not exist or is not a file",
                                         argument="model")

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Logits, float32 (batch, num_classes), for a preprocessed float32 NCHW batch; for a file
        that takes pixels (metadata.preprocessing.takes_pixels), uint8 (batch, 224, 224, 3) RGB."""
        spec = self.metadata.preprocessing
        check = check_batch if self.host_finite_check else check_array
        return self._call(check(batch, self.bounds, spec.crop, spec.takes_pixels))

    def classify(self, images: ImageSource | Iterable[ImageSource], top_k: int = 5) -> list[Prediction]:
        """Per image, the `top_k` (label, probability) pairs, most likely first.

        Takes paths, PIL images or HxWx3 uint8 RGB arrays (one, or a list), and preprocesses
        them the way the model's metadata says.
        """
        if isinstance(images, (str, bytes)) or not isinstance(images, Iterable) or _is_single_array(images):
            images = [images]
        images = list(images)
        if not images:
            raise InputError("classify() got no images; expected at least one")
        num_classes = self.metadata.num_classes
        if not isinstance(top_k, int) or not 1 <= top_k <= num_classes:
            raise InputError(f"top_k is {top_k!r}; expected an integer from 1 to {num_classes}")
        logits = self.predict_in_allowed_batches(preprocess_batch(images, self.metadata.preprocessing))
        labels = self.metadata.labels
        return [[(labels[i], p) for i, p in row] for row in top_predictions(logits, top_k)]

    def zeros(self, size: int | None = None) -> np.ndarray:
        """A batch of zeros in this model's input (float32 NCHW or uint8 pixels), of `size` or its
        smallest batch: what the sandbox probe, bench's cold start and serve's warm-up run."""
        spec = self.metadata.preprocessing
        return np.zeros((size or self.bounds.minimum, *spec.input_dims), spec.input_dtype)

    def predict_checked(self, batch: np.ndarray) -> np.ndarray:
        """Logits for a host batch that has already passed `check_batch` for this model's input (the
        server's request parser runs it on every request): the same as `predict` without reading
        every value a second time."""
        return self._call(batch)

    def predict_in_allowed_batches(self, batch: np.ndarray, *, checked: bool = False) -> np.ndarray:
        """Split or pad so any number of images fits a model with a fixed or bounded batch.
        checked: the batch has passed `check_batch` already (see predict_checked)."""
        run = self.predict_checked if checked else self.predict
        step = self.bounds.maximum or len(batch)
        outputs = []
        for start in range(0, len(batch), step):
            chunk = batch[start : start + step]
            missing = max(0, self.bounds.minimum - len(chunk))
            if missing:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], missing, axis=0)])
            outputs.append(run(chunk)[: len(chunk) - missing])
        return np.concatenate(outputs)

    def _call(self, batch: np.ndarray) -> np.ndarray:
        """`_run` on a checked batch, once the runtime is known to be open; under the lock if serialised."""
        lock = self._lock
        if lock is None:
            self._check_open()
            return self._run(batch)
        with lock:
            self._check_open()
            return self._run(batch)

    def _check_open(self) -> None:
        if self._closed:
            name = self.path.name if self.path is not None else "an in-memory model"
            raise InferenceError(f"the {self.backend} runtime for {name} is closed")

    @abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Logits for a checked, C-contiguous batch in the model's input, on an open runtime."""

    def close(self) -> None:
        """Release the backend's resources (`_close`); calls afterwards raise InferenceError. Safe to call twice."""
        with self._lock or contextlib.nullcontext():
            self._closed = True
            self._close()

    def _close(self) -> None:
        """What `close` releases: the backend's session, interpreter or buffers (under the lock if serialised)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(classes={self.metadata.num_classes}, device={self.device!r})"


def top_predictions(logits: np.ndarray, top_k: int) -> list[list[tuple[int, float]]]:
    """Per row of logits, the `top_k` (class index, probability) pairs, most likely first."""
    probabilities = softmax(logits)
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
    return [[(int(i), float(row[i])) for i in order] for row, order in zip(probabilities, best)]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted, dtype=np.float64)
    return exp / exp.sum(axis=1, keepdims=True)


def _is_single_array(images) -> bool:
    return isinstance(images, np.ndarray) and images.ndim == 3
