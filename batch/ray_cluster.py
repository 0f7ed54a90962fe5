"""The Ray cluster a batch job runs on: the address checked and joined (or a local Ray started),
what it can hold, what each node sees, and Ray's failures and chatter turned into the toolkit's
own one-line errors and events. Ray is imported only inside functions.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from contextlib import contextmanager
from typing import Iterator

from alexnet_export.errors import AlexNetExportError, ArgumentError, ExportError, one_line
from alexnet_export.events import Listener, Note
from alexnet_export.quiet import quiet

LOCAL, AUTO = "local", "auto"
DEFAULT_PORT = 6379
CONNECT_TIMEOUT_S = 3.0  # a cluster's GCS answers a TCP connect at once; ray.init itself retries for minutes


def check_address(address: str | None) -> str:
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
def ray_connection(address: str, on_event: Listener) -> Iterator[str]:
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


def check_resources(workers: int, cpus_per_worker: int, gpus_per_worker: float) -> None:
    """ArgumentError when the cluster cannot hold the workers at all (Ray would wait for them forever)."""
    import ray

    resources = ray.cluster_resources()
    for name, each in (("CPU", cpus_per_worker), ("GPU", gpus_per_worker)):
        have = resources.get(name, 0)
        if each and workers * each > have:
            raise ArgumentError(f"{workers} workers x {each:g} {name}s need {workers * each:g} {name}s; the Ray "
                                f"cluster has {have:g} (fewer workers, or fewer {name}s each)", argument="workers")


def what_nodes_see(paths: list[str]) -> dict[str, dict[str, int | bool]]:
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
def quiet_ray_data() -> Iterator[None]:
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


def one_line_failure(exc: BaseException) -> AlexNetExportError:
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
