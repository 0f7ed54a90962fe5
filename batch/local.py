"""`classify_collection`: the embedded batch job. No cluster, no service: images are decoded by a
pool of threads while the model runs batches in this thread, and results go out in parts.

Pillow's decoding and resizing and the backends' inference release the GIL, so the pool's
threads and the model overlap on the cores. Decoding runs at most `2 x decode_threads` batches
ahead of the model, which bounds memory (a float32 batch of 16 is 9.6 MB). Rerunning the same
call after a crash or Ctrl-C skips every path the output's parts hold (batch/output.py).
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from alexnet_export.batch.classifier import Classifier
from alexnet_export.batch.inputs import DEFAULT_PATH_COLUMN
from alexnet_export.batch.output import ExistingOutput, PartWriter
from alexnet_export.batch.plan import plan_job
from alexnet_export.batch.schema import ERROR
from alexnet_export.errors import ArgumentError
from alexnet_export.events import Advance, Listener, Note, Step, ignore

DEFAULT_BATCH_SIZE = 16
DEFAULT_ROWS_PER_PART = 1000  # a crash loses at most this many results (about 20 s of FP32 AlexNet on 2 cores)
TASK = "classifying"


@dataclass(frozen=True)
class ClassifyResult:
    output: Path
    format: str  # "Parquet" or "JSON Lines"
    classified: int  # images with a result, written by this run
    errors: int  # images with an error instead, written by this run
    skipped: int  # images of the input that the output held already
    parts: int  # part files this run wrote
    seconds: float  # the whole call
    classifying_seconds: float  # from the first batch to the last part: what images/s is measured over
    model_sha256: str
    precision: str
    first_error: str | None = None  # e.g. "cannot decode /data/x.jpg: ..."

    @property
    def images_per_second(self) -> float:
        done = self.classified + self.errors
        return done / self.classifying_seconds if self.classifying_seconds > 0 else 0.0


def default_decode_threads() -> int:
    return min(4, os.cpu_count() or 1)


def classify_collection(
    model: str | Path,
    inputs: str | Path | Sequence[str | Path],
    output: str | Path,
    *,
    top_k: int = 5,
    batch_size: int = DEFAULT_BATCH_SIZE,
    decode_threads: int | None = None,
    rows_per_part: int = DEFAULT_ROWS_PER_PART,
    path_column: str = DEFAULT_PATH_COLUMN,
    allow_model_change: bool = False,
    trusted_key: str | Path | None = None,
    on_event: Listener = ignore,
    **runtime_options: Any,
) -> ClassifyResult:
    """Classify every image `inputs` names (batch/inputs.py) with `model` into `output`, a folder of
    Parquet parts (`.parquet`) or one JSON Lines file (`.jsonl`) with batch/schema.py's columns.

    Paths already in `output` are skipped, so the same call finishes an interrupted run; an output
    made by another model file is refused unless `allow_model_change` (each row names its model).
    Images that cannot be read or fail the input checks get an `error` row; the job goes on.
    decode_threads: threads reading images (default: CPUs, at most 4). rows_per_part: results per
    part file, the most a crash can lose. runtime_options: the backend's options (`threads`, ...).
    Every argument is checked, and the model opened, before anything is written.
    """
    started = time.perf_counter()
    decode_threads = default_decode_threads() if decode_threads is None else decode_threads
    check_positive(batch_size=batch_size, decode_threads=decode_threads, rows_per_part=rows_per_part)
    plan = plan_job(model, inputs, output, top_k=top_k, path_column=path_column,
                    allow_model_change=allow_model_change, trusted_key=trusted_key, **runtime_options)
    classifier = plan.classifier
    try:
        runtime = classifier.open()
        on_event(Step(f"{len(plan.paths)} images; classifying {len(plan.todo)} with {Path(model).name} "
                      f"({runtime.precision}, {runtime.device}) into {output}"))
        if plan.skipped:
            on_event(Note(f"{plan.skipped} of the images are in {output} already; skipping them"))
        classifying = time.perf_counter()
        written, errors, first_error, parts = _run(classifier, plan.todo, plan.existing, batch_size, decode_threads,
                                                   rows_per_part, on_event)
        finished = time.perf_counter()
    finally:
        classifier.close()
    return ClassifyResult(Path(output), plan.format.name, written - errors, errors, plan.skipped, parts,
                          finished - started, finished - classifying, classifier.model_sha256, runtime.precision,
                          first_error)


def _run(classifier: Classifier, todo: list[str], existing: ExistingOutput, batch_size: int, decode_threads: int,
         rows_per_part: int, on_event: Listener) -> tuple[int, int, str | None, int]:
    """Decode, classify and write `todo`: (rows written, error rows among them, the first error, parts)."""
    if not todo:
        return 0, 0, None, 0
    done, errors, first_error = 0, 0, None
    on_event(Advance(TASK, 0, len(todo), "images"))
    pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="decode")
    try:
        with PartWriter(existing, rows_per_part) as writer:
            for columns in _classified(classifier, todo, batch_size, pool, ahead=2 * decode_threads):
                failed = [message for message in columns[ERROR.name] if message is not None]
                writer.add(columns)
                done += len(columns[ERROR.name])
                errors += len(failed)
                first_error = first_error or (failed[0] if failed else None)
                on_event(Advance(TASK, done, len(todo), "images"))
            writer.flush()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C: batches not yet started never start
    return writer.rows_written, errors, first_error, writer.parts_written


def _classified(classifier: Classifier, paths: list[str], batch_size: int, pool: ThreadPoolExecutor,
                ahead: int) -> Iterator[dict[str, np.ndarray]]:
    """The schema's columns per batch of `paths`, in order: decoding runs in `pool` up to `ahead`
    batches in front of the model, which runs in this thread."""
    pending = deque()
    for start in range(0, len(paths), batch_size):
        pending.append(pool.submit(classifier.decode, paths[start : start + batch_size]))
        if len(pending) >= ahead:
            yield classifier.classify_decoded(pending.popleft().result())
    while pending:
        yield classifier.classify_decoded(pending.popleft().result())


def check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ArgumentError(f"{name} is {value!r}; expected a positive integer", argument=name)
