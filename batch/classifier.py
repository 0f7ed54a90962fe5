"""The predictor every engine runs: `Classifier(model_path, top_k=5, **runtime_options)`.

A picklable callable that opens its model lazily, on first use, in the process that uses it (a
Ray actor, a Spark executor, this process), and maps a batch `{"path": array of paths}` to the
columns of batch/schema.py. Each image is read and preprocessed the way the model's metadata
says (runtimes/preprocess.py, as `Runtime.classify` does), with the same input checks; an
image that fails them gets its reason in `error` and no top-k, and the batch goes on. A failure
of the model itself is raised: it is no fact about the image.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from alexnet_export.batch.schema import ERROR, LABELS, MODEL_SHA256, PATH, PRECISION, PROBABILITIES, to_arrow_table
from alexnet_export.errors import ArgumentError, InputError, ModelLoadError, one_line
from alexnet_export.hashing import file_sha256
from alexnet_export.models.spec import Preprocessing
from alexnet_export.runtimes.base import Runtime, top_predictions
from alexnet_export.runtimes.preprocess import load_image, preprocess
from alexnet_export.runtimes.table import backend_for
from alexnet_export.runtimes.registry import open_runtime


@dataclass
class Decoded:
    """A batch of paths after reading: the model inputs of those that passed, and why the others failed."""

    paths: list[str]
    inputs: np.ndarray  # (len(kept), *input_dims), the model's input dtype
    kept: list[int]  # indices in `paths` of the rows of `inputs`
    errors: dict[int, str]  # index in `paths` -> why it has no input


class Classifier:
    """Classify images by path with any model file the backend registry opens.

    model_path: any model file the backend registry opens (runtimes/registry.py); kept absolute, so a
    worker in another folder opens the same file. top_k: labels per image. trusted_key: as for
    `open_runtime` (the signature is checked where the model is opened). runtime_options: the
    backend's keyword options (`threads`, `providers`, `device`, ...), checked here, at once.

    `Classifier(...)({"path": paths})` returns a dict of numpy object arrays, one per column of
    batch/schema.py, a row per path in the same order. Nothing is loaded until the first call (or
    `open()`); pickling drops the loaded model and the cached hash, so each process opens and
    hashes the file it sees. Calls may come from several threads.
    """

    def __init__(self, model_path: str | Path, top_k: int = 5, *, trusted_key: str | Path | None = None,
                 **runtime_options: Any):
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ArgumentError(f"top_k is {top_k!r}; expected a positive integer", argument="top_k")
        backend_for(model_path).check_options(model_path, runtime_options)
        self.model_path = os.path.abspath(model_path)
        self.top_k = top_k
        self.trusted_key = None if trusted_key is None else os.path.abspath(trusted_key)
        self.runtime_options = runtime_options
        self._runtime: Runtime | None = None
        self._sha256: str | None = None
        self._lock = threading.Lock()

    # -- the model, opened once per process ------------------------------------------------------

    def open(self) -> Runtime:
        """The loaded runtime, opening it on first use; ArgumentError when top_k exceeds its classes."""
        with self._lock:
            if self._runtime is None:
                runtime = open_runtime(self.model_path, trusted_key=self.trusted_key, **self.runtime_options)
                try:
                    self._hash_once()
                    if self.top_k > runtime.metadata.num_classes:
                        raise ArgumentError(f"top_k is {self.top_k}; {Path(self.model_path).name} has "
                                            f"{runtime.metadata.num_classes} classes", argument="top_k")
                except BaseException:
                    runtime.close()
                    raise
                self._runtime = runtime
            return self._runtime

    @property
    def is_open(self) -> bool:
        return self._runtime is not None

    @property
    def model_sha256(self) -> str:
        """sha256 of the model file (read once per process, without loading the model)."""
        with self._lock:
            return self._hash_once()

    @property
    def precision(self) -> str:
        return self.open().precision

    def close(self) -> None:
        with self._lock:
            if self._runtime is not None:
                self._runtime.close()
                self._runtime = None

    def _hash_once(self) -> str:
        if self._sha256 is None:
            try:
                self._sha256 = file_sha256(self.model_path)
            except OSError as exc:
                raise ModelLoadError(f"cannot read model file {self.model_path}: {exc.strerror or exc}") from None
        return self._sha256

    # -- a batch ---------------------------------------------------------------------------------

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """`{"path": paths, ...}` -> the schema's columns for those paths (other columns are ignored).
        The batch may also be a pandas DataFrame or a pyarrow Table with a `path` column."""
        return self.classify_decoded(self.decode(_paths_of(batch)))

    def decode(self, paths: Sequence[str]) -> Decoded:
        """Read and preprocess `paths` (thread-safe: the local job runs it in a pool of threads)."""
        spec = self.open().metadata.preprocessing
        rows, kept, errors = [], [], {}
        for index, path in enumerate(paths):
            try:
                rows.append(_model_input(path, spec))
                kept.append(index)
            except InputError as exc:
                errors[index] = str(exc)
        inputs = np.stack(rows) if rows else np.empty((0, *spec.input_dims), spec.input_dtype)
        return Decoded(list(paths), inputs, kept, errors)

    def classify_decoded(self, decoded: Decoded) -> dict[str, np.ndarray]:
        """Run the model on `decoded` and lay the results out as the schema's columns."""
        runtime = self.open()
        count = len(decoded.paths)
        labels, probabilities, errors = (np.full(count, None, dtype=object) for _ in range(3))
        if decoded.kept:
            # The rows were made by `preprocess` for this model: its dtype and shape, finite by construction.
            logits = runtime.predict_in_allowed_batches(decoded.inputs, checked=True)
            names = runtime.metadata.labels
            for index, best in zip(decoded.kept, top_predictions(logits, self.top_k)):
                labels[index] = [names[label] for label, _ in best]
                probabilities[index] = [probability for _, probability in best]
        for index, message in decoded.errors.items():
            errors[index] = message
        return {
            PATH.name: np.array(decoded.paths, dtype=object),
            LABELS.name: labels,
            PROBABILITIES.name: probabilities,
            MODEL_SHA256.name: np.full(count, self.model_sha256, dtype=object),
            PRECISION.name: np.full(count, runtime.precision, dtype=object),
            ERROR.name: errors,
        }

    # -- pickling: settings travel, the loaded model does not ------------------------------------

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_runtime=None, _sha256=None)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"Classifier({self.model_path!r}, top_k={self.top_k}"
                + "".join(f", {name}={value!r}" for name, value in self.runtime_options.items()) + ")")


class ArrowClassifier(Classifier):
    """A Classifier whose batches come back as a pyarrow Table of batch/schema.py's columns: what Ray
    Data's `map_batches(..., batch_format="pyarrow")` and its Parquet writer want. A dict of object
    arrays leaves the column types to Ray, per batch: a batch where every image failed then writes
    null-typed columns, and the output folder no longer reads as one table."""

    def __call__(self, batch):
        return to_arrow_table(super().__call__(batch))


def _paths_of(batch) -> list[str]:
    """The `path` column of a dict of arrays, a pandas DataFrame or a pyarrow Table, as str."""
    try:
        column = batch[PATH.name]
    except (KeyError, TypeError, IndexError):
        columns = getattr(batch, "column_names", None) or (list(batch) if isinstance(batch, Mapping) else None)
        found = f"columns {', '.join(map(repr, columns))}" if columns else f"a {type(batch).__name__}"
        raise InputError(f"Classifier takes a batch with a {PATH.name!r} column of image paths (a dict of arrays, "
                         f"a pandas DataFrame or a pyarrow Table); got {found}") from None
    values = column.to_pylist() if hasattr(column, "to_pylist") else list(column)
    return [str(os.fsdecode(value)) for value in values]


def _model_input(path: str, spec: Preprocessing) -> np.ndarray:
    """One image file -> one model input row; InputError for anything that stops it, so one file a
    decoder cannot handle (a Pillow bug included) is an error row, not the end of the job."""
    try:
        return preprocess(load_image(path), spec)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot decode {path}: {type(exc).__name__}: {one_line(exc, 300)}") from None
