"""`classify_on_ray`: the job of batch/local.py on a Ray cluster, through Ray Data.

The same plan (batch/plan.py: every check, the resume rule), the same `Classifier` and the same
columns; the paths still to do become a dataset, `map_batches` runs them through a pool of
actors that each open the model once (`_ClassifyWorker`), and Ray's Parquet writer writes the
results. That writer writes its files where they are named, from the workers, so it writes into a
hidden staging folder of the output, and this process adopts each file as the next part as soon
as it reads back whole (batch/output.py): the visible parts stay the done set that a rerun, local
or Ray, skips. A killed actor is restarted and its batches retried by Ray Data (its default for
actor pools: restarts and retries without limit); a row that arrives twice anyway is dropped on
adoption.

The model reaches the workers by path when every node sees the file (the same machine, a shared
file system), otherwise as bytes through Ray's object store, written once per node (batch/ray_shipping.py).
Images are read by path on the workers, and the output must be on a file system every node sees:
both are checked on every node before the job starts (batch/ray_cluster.py joins the cluster and asks
the nodes). Ray is imported only inside functions.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

from alexnet_export.batch.classifier import ArrowClassifier, Classifier
from alexnet_export.batch.inputs import DEFAULT_PATH_COLUMN
from alexnet_export.batch.local import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_ROWS_PER_PART,
    TASK,
    ClassifyResult,
    check_positive,
)
from alexnet_export.batch.output import (
    PARQUET,
    STAGING_PREFIX,
    PartWriter,
    output_format,
)
from alexnet_export.batch.plan import plan_job
from alexnet_export.batch.ray_cluster import (
    check_address,
    check_resources,
    one_line_failure,
    quiet_ray_data,
    ray_connection,
)
from alexnet_export.batch.ray_shipping import (
    Shipped,
    materialize,
    materialize_key,
    ship_or_not,
)
from alexnet_export.batch.schema import ERROR, PRECISION
from alexnet_export.errors import ArgumentError, ExportError
from alexnet_export.events import Advance, Listener, Note, Step, ignore
from alexnet_export.extras import require
from alexnet_export.runtimes.table import backend_for

# Two batches in flight per actor, in two threads: one decodes (Pillow releases the GIL) while the other
# runs the model, as the local job's decode pool does: 136 against 83 images/s for one FP32 worker on two
# cores (docs/batch.md, benchmarks/ray_throughput.py).
_CALLS_PER_WORKER = 2
_POLL_S = 0.5  # how often finished files are adopted and progress reported
_WRITERS = 1  # write tasks at once: a part of 1000 rows is about 30 KB of Parquet, written in milliseconds


class _ClassifyWorker:
    """One per Ray actor: opens the model once, then classifies the batches Ray Data sends it into
    pyarrow Tables of the output's schema."""

    def __init__(self, classifier: Classifier, shipped=None):
        path = materialize(shipped) if shipped is not None else classifier.model_path
        key = materialize_key(shipped) if shipped is not None else classifier.trusted_key
        self.classifier = ArrowClassifier(path, classifier.top_k, trusted_key=key, **classifier.runtime_options)
        self.classifier.open()  # here, so a model the worker cannot open fails the actor at once, not every batch

    def __call__(self, batch):
        return self.classifier(batch)


def classify_on_ray(
    model: str | Path,
    inputs: str | Path | Sequence[str | Path],
    output: str | Path,
    *,
    address: str | None = None,
    workers: int = 1,
    cpus_per_worker: int = 1,
    gpus_per_worker: float = 0,
    ship_model: bool | None = None,
    top_k: int = 5,
    batch_size: int = DEFAULT_BATCH_SIZE,
    rows_per_part: int = DEFAULT_ROWS_PER_PART,
    path_column: str = DEFAULT_PATH_COLUMN,
    allow_model_change: bool = False,
    trusted_key: str | Path | None = None,
    on_event: Listener = ignore,
    **runtime_options: Any,
) -> ClassifyResult:
    """`classify_collection` on Ray: the same inputs, output folder (Parquet), resume rule and rows.

    address: None or "local" starts a Ray of this machine for the job (and stops it after); "auto"
    joins the cluster RAY_ADDRESS names, or the one `ray start` last started here; "HOST:PORT" joins
    that cluster's head. In a process where Ray is initialized already, that connection is used.
    workers: actors, each opening the model once, with `cpus_per_worker` CPUs (the backend's
    `threads` unless given) and `gpus_per_worker` GPUs (CUDA runtimes; Ray sets each actor's
    CUDA_VISIBLE_DEVICES). ship_model: None sends the model through Ray's object store only when a
    node cannot read it at its path; True always; False never (then such a node is an error).
    rows_per_part: the most rows a part file holds. Every argument is checked, and the cluster
    asked, before anything is written.
    """
    started = time.perf_counter()
    check_positive(workers=workers, cpus_per_worker=cpus_per_worker, batch_size=batch_size,
                    rows_per_part=rows_per_part)
    if isinstance(gpus_per_worker, bool) or not isinstance(gpus_per_worker, (int, float)) or gpus_per_worker < 0:
        raise ArgumentError(f"gpus_per_worker is {gpus_per_worker!r}; expected a number >= 0 (a fraction shares "
                            "a GPU between workers)", argument="gpus_per_worker")
    address = check_address(address)
    if output_format(output) is not PARQUET:
        raise ArgumentError(f"output {output}: a Ray job writes Parquet (Ray's Parquet writer); expected a name "
                            "ending in .parquet", argument="output")
    require("ray", purpose="classify on Ray")
    if backend_for(model).takes("threads") and "threads" not in runtime_options:
        runtime_options = {**runtime_options, "threads": cpus_per_worker}  # the CPUs Ray gives each actor
    plan = plan_job(model, inputs, output, top_k=top_k, path_column=path_column,
                    allow_model_change=allow_model_change, trusted_key=trusted_key, **runtime_options)
    output = Path(output)
    created = not output.exists()
    with ray_connection(address, on_event) as connected:
        check_resources(workers, cpus_per_worker, gpus_per_worker)
        try:
            with PartWriter(plan.existing, rows_per_part) as writer:
                writer.take()  # created and locked; a killed run's staging folder adopted or swept
                todo = [path for path in plan.todo if path not in writer.done]
                skipped = len(plan.paths) - len(todo)
                staging = output / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
                staging.mkdir()
                try:
                    shipped = ship_or_not(plan.classifier, trusted_key, ship_model, staging, todo[:1])
                    on_event(Step(f"{len(plan.paths)} images; classifying {len(todo)} with {Path(model).name} on "
                                  f"{workers} Ray workers ({connected}; model "
                                  f"{'through the object store' if shipped else 'read by path'}) into {output}"))
                    if skipped:
                        on_event(Note(f"{skipped} of the images are in {output} already; skipping them"))
                    classifying = time.perf_counter()
                    counts = _run(plan.classifier, shipped, todo, writer, staging, workers=workers,
                                  cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker,
                                  batch_size=batch_size, rows_per_part=rows_per_part, on_event=on_event)
                    finished = time.perf_counter()
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
        finally:
            if created and output.is_dir() and not any(output.iterdir()):
                output.rmdir()  # a run that wrote nothing leaves nothing
    written, errors, first_error, precision = counts
    return ClassifyResult(output, PARQUET.name, written - errors, errors, skipped, writer.parts_written,
                          finished - started, finished - classifying, plan.classifier.model_sha256,
                          precision or "unknown", first_error)


def _run(classifier: Classifier, shipped: Shipped | None, todo: list[str], writer: PartWriter, staging: Path, *,
         workers: int, cpus_per_worker: int, gpus_per_worker: float, batch_size: int, rows_per_part: int,
         on_event: Listener) -> tuple[int, int, str | None, str | None]:
    """Run the dataset into `staging` in a thread, adopting each finished file here as it appears:
    (rows written, error rows among them, the first error, the precision the rows name)."""
    if not todo:
        return 0, 0, None, None
    import pyarrow as pa
    import ray

    # Blocks (and so parts) of whole batches, at most a part's rows (but one batch), and at least four a worker.
    per_block = min(rows_per_part, -(-len(todo) // (4 * workers)))
    per_block = max(batch_size, per_block // batch_size * batch_size)
    blocks = [pa.table({"path": todo[start : start + per_block]}) for start in range(0, len(todo), per_block)]
    shipped_ref = None if shipped is None else ray.put(shipped)
    dataset = ray.data.from_arrow(blocks).map_batches(
        _ClassifyWorker, fn_constructor_args=(classifier, shipped_ref), batch_size=batch_size, batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=workers, max_concurrent_calls_per_actor=_CALLS_PER_WORKER,
                                           enable_true_multi_threading=True),
        num_cpus=cpus_per_worker, num_gpus=gpus_per_worker or None)
    failure: list[BaseException] = []

    def write() -> None:
        try:  # writing takes no CPU of the workers' (a 1-CPU node would wait for its actor), one task at a
            # time: 0-CPU tasks have no limit, and Ray started a process for each (14 for 19 parts, measured)
            dataset.write_parquet(str(staging), ray_remote_args={"num_cpus": 0}, concurrency=_WRITERS)
        except BaseException as exc:  # handed to the calling thread
            failure.append(exc)

    done, errors, first_error, precision = 0, 0, None, None

    def adopt_finished() -> None:
        nonlocal done, errors, first_error, precision
        for finished in sorted(staging.rglob("*.parquet")):
            table = writer.adopt(finished)
            if table is None:
                continue  # still being written
            failed = [message for message in table.column(ERROR.name).to_pylist() if message is not None]
            errors += len(failed)
            first_error = first_error or (failed[0] if failed else None)
            precision = precision or next(iter(table.column(PRECISION.name).to_pylist()), None)
            done += table.num_rows
            on_event(Advance(TASK, done, len(todo), "images"))

    on_event(Advance(TASK, 0, len(todo), "images"))
    thread = threading.Thread(target=write, name="ray-write", daemon=True)
    with quiet_ray_data():
        thread.start()
        try:
            while thread.is_alive():
                thread.join(_POLL_S)
                adopt_finished()
        finally:
            adopt_finished()  # also on Ctrl-C: what is whole is kept
    if failure:
        raise one_line_failure(failure[0])
    if done < len(todo):
        raise ExportError(f"{len(todo) - done} of {len(todo)} results did not reach {writer.folder} (the parts hold "
                          f"{done} of them): Ray's workers write the output, so it must be on a file system every "
                          "node shares; run again to classify the rest")
    return done, errors, first_error, precision
