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
file system), otherwise as bytes through Ray's object store, written once per node (_materialize).
Images are read by path on the workers, and the output must be on a file system every node sees:
both are checked on every node before the job starts. Ray is imported only here, inside functions.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from alexnet_export.batch.classifier import ArrowClassifier, Classifier
from alexnet_export.batch.inputs import DEFAULT_PATH_COLUMN
from alexnet_export.batch.local import (DEFAULT_BATCH_SIZE, DEFAULT_ROWS_PER_PART, TASK, ClassifyResult,
                                        check_positive)
from alexnet_export.batch.output import PARQUET, STAGING_PREFIX, PartWriter, output_format
from alexnet_export.batch.plan import plan_job
from alexnet_export.batch.schema import ERROR, PRECISION
from alexnet_export.errors import AlexNetExportError, ArgumentError, ExportError, one_line
from alexnet_export.quiet import quiet
from alexnet_export.events import Advance, Listener, Note, Step, ignore
from alexnet_export.extras import require
from alexnet_export.runtimes.registry import backend_for

LOCAL, AUTO = "local", "auto"
DEFAULT_PORT = 6379
CONNECT_TIMEOUT_S = 3.0  # a cluster's GCS answers a TCP connect at once; ray.init itself retries for minutes
# Two batches in flight per actor, in two threads: one decodes (Pillow releases the GIL) while the other
# runs the model, as the local job's decode pool does: 136 against 83 images/s for one FP32 worker on two
# cores (docs/batch.md, benchmarks/ray_throughput.py).
_CALLS_PER_WORKER = 2
_POLL_S = 0.5  # how often finished files are adopted and progress reported
_WRITERS = 1  # write tasks at once: a part of 1000 rows is about 30 KB of Parquet, written in milliseconds


@dataclass(frozen=True)
class _Shipped:
    """The model (and its companions, signature and trusted key) as bytes, for workers that cannot read it."""

    files: dict[str, bytes]  # file name -> bytes; the model's own name first
    sha256: str  # the model file's
    trusted_key: bytes | None


class _ClassifyWorker:
    """One per Ray actor: opens the model once, then classifies the batches Ray Data sends it into
    pyarrow Tables of the output's schema."""

    def __init__(self, classifier: Classifier, shipped=None):
        path = _materialize(shipped) if shipped is not None else classifier.model_path
        key = _materialize_key(shipped) if shipped is not None else classifier.trusted_key
        self.classifier = ArrowClassifier(path, classifier.top_k, trusted_key=key, **classifier.runtime_options)
        self.classifier.open()  # here, so a model the worker cannot open fails the actor at once, not every batch

    def __call__(self, batch):
        return self.classifier(batch)


def _materialize(shipped) -> Path:
    """The shipped model as files of this node, with their own names (the registry goes by suffix, the
    signature by name), in a folder named by the model's sha256 under the temporary folder: written once
    per node (each file renamed into place whole, so actors starting together never read half a file),
    kept for the next job, and written again when a copy there has other bytes."""
    from alexnet_export.hashing import file_sha256

    shipped = _resolved(shipped)
    folder = Path(tempfile.gettempdir()) / "alexnet-export-shipped" / shipped.sha256[:16]
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / next(iter(shipped.files))
    if model.is_file() and file_sha256(model) == shipped.sha256:
        return model
    for name, data in shipped.files.items():
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, folder / name)
    return model


def _materialize_key(shipped) -> Path | None:
    shipped = _resolved(shipped)
    if shipped.trusted_key is None:
        return None
    handle, path = tempfile.mkstemp(prefix="alexnet-export-key-", suffix=".pem")
    with os.fdopen(handle, "wb") as file:
        file.write(shipped.trusted_key)
    return Path(path)


def _resolved(shipped) -> _Shipped:
    import ray

    return ray.get(shipped) if isinstance(shipped, ray.ObjectRef) else shipped  # Ray Data pickles the reference


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
    address = _check_address(address)
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
    with _ray_connection(address, on_event) as connected:
        _check_resources(workers, cpus_per_worker, gpus_per_worker)
        try:
            with PartWriter(plan.existing, rows_per_part) as writer:
                writer.take()  # created and locked; a killed run's staging folder adopted or swept
                todo = [path for path in plan.todo if path not in writer.done]
                skipped = len(plan.paths) - len(todo)
                staging = output / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
                staging.mkdir()
                try:
                    shipped = _ship_or_not(plan.classifier, trusted_key, ship_model, staging, todo[:1])
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


def _run(classifier: Classifier, shipped: _Shipped | None, todo: list[str], writer: PartWriter, staging: Path, *,
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
    with _quiet_ray_data():
        thread.start()
        try:
            while thread.is_alive():
                thread.join(_POLL_S)
                adopt_finished()
        finally:
            adopt_finished()  # also on Ctrl-C: what is whole is kept
    if failure:
        raise _one_line_failure(failure[0])
    if done < len(todo):
        raise ExportError(f"{len(todo) - done} of {len(todo)} results did not reach {writer.folder} (the parts hold "
                          f"{done} of them): Ray's workers write the output, so it must be on a file system every "
                          "node shares; run again to classify the rest")
    return done, errors, first_error, precision


# -- the cluster -----------------------------------------------------------------------------------


def _check_address(address: str | None) -> str:
    """LOCAL, AUTO or HOST:PORT; ArgumentError for anything else (a path taken for an address, Ray Client)."""
    if address is None or address == LOCAL:
        return LOCAL
    if not isinstance(address, str):
        raise ArgumentError(f"address is {address!r}; expected None, 'auto' or 'HOST:PORT'", argument="address")
    if address == AUTO:
        return AUTO
    if address.startswith("ray://"):
        raise ArgumentError(f"address {address}: Ray Client is not supported (this process reads the inputs and "
                            "adopts the output's files); run the job on a node of the cluster with 'auto' or the "
                            "head's HOST:PORT", argument="address")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "/" in address:
        raise ArgumentError(f"address {address!r} is no Ray address; expected 'auto' or the head's HOST:PORT "
                            f"(e.g. 10.0.0.5:{DEFAULT_PORT})", argument="address")
    return address


def _resolve(address: str) -> str | None:
    """The HOST:PORT that `address` (AUTO or HOST:PORT) means, or None when Ray finds no cluster to join."""
    if address != AUTO:
        return address
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    try:  # what `ray.init(address="auto")` reads: the cluster `ray start` last started on this machine
        from ray._private.utils import read_ray_address

        return read_ray_address()
    except Exception:  # a private function that moved: let ray.init find it
        return AUTO


def _probe(address: str) -> None:
    """ExportError within CONNECT_TIMEOUT_S when nothing listens at HOST:PORT."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ExportError(f"no Ray cluster answers at {address} ({reason} within {CONNECT_TIMEOUT_S:.0f} s); start "
                          "one with `ray start --head`, or leave out the address for a Ray of this machine") from None


@contextmanager
def _ray_connection(address: str, on_event: Listener) -> Iterator[str]:
    """Ray initialized for the job (a description of it), and shut down after unless it was already."""
    import ray

    if ray.is_initialized():
        yield "this process's Ray"
        return
    started = time.perf_counter()
    if address == LOCAL:
        target = LOCAL
    else:
        target = _resolve(address)
        if target is None:
            raise ExportError("no Ray cluster found to join: RAY_ADDRESS is not set and `ray start` started none on "
                              "this machine; give the head's HOST:PORT, or leave out the address for a Ray of this "
                              "machine")
        if target != AUTO:
            _probe(target)
    try:
        with _gcs_wait(CONNECT_TIMEOUT_S):
            ray.init(address=target, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    except Exception as exc:  # ConnectionError and Ray's own, from a cluster that answered but is not Ray
        raise ExportError(f"cannot join the Ray cluster at {target}: {one_line(exc, 300)}; is a Ray head "
                          f"listening there?") from None
    try:
        resources = ray.cluster_resources()
        kind = "a local Ray, started" if target == LOCAL else f"the cluster at {target}, joined"
        on_event(Note(f"Ray: {kind} in {time.perf_counter() - started:.1f} s; {len(ray.nodes())} nodes, "
                      f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs"))
        yield kind
    finally:
        ray.shutdown()


@contextmanager
def _gcs_wait(seconds: float) -> Iterator[None]:
    """ray.init tries a cluster's GCS once a second for 20 s by default (RAY_NUM_REDIS_GET_RETRIES), also
    where something else answers the port; RAY_gcs_server_port_wait_time_s, read when it connects, sets
    those tries. Set for the call unless the user set it (a head recovering its state may need longer)."""
    name = "RAY_gcs_server_port_wait_time_s"
    if name in os.environ:
        yield
        return
    os.environ[name] = str(max(1, round(seconds)))
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _check_resources(workers: int, cpus_per_worker: int, gpus_per_worker: float) -> None:
    """ArgumentError when the cluster cannot hold the workers at all (Ray would wait for them forever)."""
    import ray

    resources = ray.cluster_resources()
    for name, each in (("CPU", cpus_per_worker), ("GPU", gpus_per_worker)):
        have = resources.get(name, 0)
        if each and workers * each > have:
            raise ArgumentError(f"{workers} workers x {each:g} {name}s need {workers * each:g} {name}s; the Ray "
                                f"cluster has {have:g} (fewer workers, or fewer {name}s each)", argument="workers")


def _ship_or_not(classifier: Classifier, trusted_key, ship_model: bool | None, staging: Path,
                 sample: list[str]) -> _Shipped | None:
    """Ask every node what it sees; the model's bytes when it must travel (ship_model), else None.
    ExportError when a node cannot see the output's staging folder or the first image."""
    files = backend_for(classifier.model_path).files(classifier.model_path)
    signature = Path(classifier.model_path + ".sig")
    files += [signature] if signature.is_file() else []
    sizes = {str(path): path.stat().st_size for path in files}
    blind = []
    for node, seen in _what_nodes_see([*sizes, str(staging), *sample]).items():
        if seen[str(staging)] is not True:
            raise ExportError(f"Ray node {node} cannot see the output folder {staging.parent}: Ray's workers write "
                              "the results, so the output must be on a file system every node shares")
        if sample and seen[sample[0]] is False:
            raise ExportError(f"Ray node {node} cannot read {sample[0]}: the workers read the images by path, so "
                              "they must be on a file system every node shares")
        if any(seen[path] != size for path, size in sizes.items()):
            blind.append(node)
    if ship_model is False and blind:
        raise ExportError(f"Ray node {blind[0]} cannot read {classifier.model_path} (or sees another file there); "
                          "let the model travel through Ray's object store (ship_model)")
    if not (ship_model or blind):
        return None
    key = None if classifier.trusted_key is None else Path(classifier.trusted_key).read_bytes()
    return _Shipped({path.name: path.read_bytes() for path in files}, classifier.model_sha256, key)


def _what_nodes_see(paths: list[str]) -> dict[str, dict[str, int | bool]]:
    """Per live node (its address): each path's size if it is a file there, True if a folder, False if absent."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0)
    def look(paths):
        return {p: os.path.getsize(p) if os.path.isfile(p) else os.path.isdir(p) for p in paths}

    nodes = [node for node in ray.nodes() if node.get("Alive")]
    answers = ray.get([look.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                       .remote(paths) for node in nodes])
    return {f"{node['NodeManagerAddress']} ({node['NodeID'][:8]})": seen for node, seen in zip(nodes, answers)}


@contextmanager
def _quiet_ray_data() -> Iterator[None]:
    """Ray Data's progress bars and log lines off while the job runs: progress goes through events, and
    its warning that actors hold every CPU (so the job "will hang") is wrong here, where writing takes none."""
    from ray.data import DataContext

    context = DataContext.get_current()
    saved = context.enable_progress_bars
    context.enable_progress_bars = False
    try:
        with quiet("ray.data"):
            yield
    finally:
        context.enable_progress_bars = saved


def _one_line_failure(exc: BaseException) -> AlexNetExportError:
    """The toolkit's own error inside Ray's wrappers as it was raised: the object where Ray keeps it
    (RayTaskError.cause, UserCodeException's chain), else the last line of a traceback Ray passed on as
    text (an actor that failed to start: its error comes back as SystemException with the text); anything
    else as one ExportError line."""
    from alexnet_export import errors

    seen, current = set(), exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AlexNetExportError):
            return current
        seen.add(id(current))
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
    texts = [str(exc), *(str(getattr(exc, name, "")) for name in ("error_msg", "traceback_str"))]
    found = re.findall(r"alexnet_export\.errors\.(\w+): ([^\n]+)", "\n".join(texts))
    if found:
        name, message = found[-1]
        kind = getattr(errors, name, None)
        if isinstance(kind, type) and issubclass(kind, AlexNetExportError):
            return kind(message) if kind is not errors.ParityError else ExportError(message)
    root = exc
    while getattr(root, "cause", None) is not None or root.__cause__ is not None:
        root = getattr(root, "cause", None) or root.__cause__
    return ExportError(f"the Ray job failed: {type(root).__name__}: {one_line(root, 300)}")
