"""The columns of a batch classification, stated once: what `Classifier` returns per batch and
what every output (Parquet parts, the JSON Lines file, Ray's writer) holds per image.

A row per image: its path, its top-k labels and probabilities (most likely first), the model
file's sha256 and the precision it ran in, and `error`, the reason when the image could not be
decoded or was refused by the input checks (then `labels` and `probabilities` are null).
pyarrow is imported only inside the functions that need it: JSON Lines needs none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np

from alexnet_export.errors import ArgumentError
from alexnet_export.extras import missing_message


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "string", "list<string>" or "list<double>"
    meaning: str


PATH = Column("path", "string", "the image's absolute path")
LABELS = Column("labels", "list<string>", "the top-k labels, most likely first; null when `error` is set")
PROBABILITIES = Column("probabilities", "list<double>", "their softmax probabilities; null when `error` is set")
MODEL_SHA256 = Column("model_sha256", "string", "sha256 of the model file that classified the image")
PRECISION = Column("precision", "string", "the precision the model ran in (fp32, fp16, int8-cpu, ...)")
ERROR = Column("error", "string", "why the image has no result (unreadable, refused by the input checks); null when it has one")
COLUMNS = (PATH, LABELS, PROBABILITIES, MODEL_SHA256, PRECISION, ERROR)
NAMES = tuple(column.name for column in COLUMNS)


def require_pyarrow(purpose: str, argument: str) -> None:
    """Nothing when pyarrow imports; else one line saying how to get it (the `batch` extra)."""
    try:
        import pyarrow.parquet  # noqa: F401  (imported here once, so its absence is found before any work)
    except ImportError:
        raise ArgumentError(f"{missing_message('pyarrow', purpose)}; JSON Lines output (.jsonl) and .txt/.csv"
                            " manifests need nothing", argument=argument) from None


def arrow_schema():
    """The columns as a pyarrow schema (every field nullable, as Ray and Spark infer them)."""
    import pyarrow as pa

    kinds = {"string": pa.string(), "list<string>": pa.list_(pa.string()), "list<double>": pa.list_(pa.float64())}
    return pa.schema([pa.field(column.name, kinds[column.kind]) for column in COLUMNS])


def to_arrow_table(columns: Mapping[str, np.ndarray]):
    """A batch's columns (as `Classifier` returns them) as a pyarrow Table of `arrow_schema()`,
    typed even when every value of a column is null (a batch where every image failed)."""
    import pyarrow as pa

    schema = arrow_schema()
    return pa.Table.from_arrays([pa.array(list(columns[field.name]), type=field.type) for field in schema],
                                schema=schema)


def to_rows(columns: Mapping[str, np.ndarray]) -> Iterator[dict]:
    """A batch's columns as one plain dict per image (str, list, float, None), in column order."""
    values = [columns[name] for name in NAMES]
    for row in zip(*values):
        yield {name: _plain(value) for name, value in zip(NAMES, row)}


def _plain(value):
    """numpy scalars and arrays as the Python values JSON and Arrow take."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
