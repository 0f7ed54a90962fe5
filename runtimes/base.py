"""The interface every backend shares: `predict` on arrays, `classify` on images."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterable

import numpy as np

from alexnet_export.errors import InputError
from alexnet_export.models.spec import ArtifactMetadata
from alexnet_export.runtimes.checks import BatchBounds, check_batch
from alexnet_export.runtimes.preprocess import ImageSource, preprocess_batch

Prediction = list[tuple[str, float]]


class Runtime(ABC):
    """A loaded model. Subclasses set `metadata`, `bounds`, `device` and `precision` when they
    open a file, and implement `_run`.

    `predict` may be called from many threads at once: subclasses keep no per-call state.
    """

    metadata: ArtifactMetadata
    bounds: BatchBounds = BatchBounds()
    device: str  # what actually runs it, e.g. "CPUExecutionProvider" or "torch eager cpu"
    # What the numbers are: one of models/spec.py's PRECISIONS, or FOREIGN_INT8. Decided once, from
    # what runs (the graph, the engine's build), never from the metadata label, which can be stale.
    precision: str

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Logits, float32 (batch, num_classes), for a preprocessed float32 NCHW batch; for a file
        that takes pixels (metadata.preprocessing.takes_pixels), uint8 (batch, 224, 224, 3) RGB."""
        spec = self.metadata.preprocessing
        return self._run(check_batch(batch, self.bounds, spec.crop, spec.takes_pixels))

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
        return self._run(batch)

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

    @abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray: ...

    def close(self) -> None:
        """Release the backend's resources; the runtime is unusable afterwards."""

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
