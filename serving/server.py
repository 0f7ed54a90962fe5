"""`alexnet-export serve`: open one model, listen, and run the app (serving/app.py) under uvicorn
until SIGTERM or Ctrl-C, answering the requests in flight before it returns."""

from __future__ import annotations

import errno
import ipaddress
import os
import signal
import socket
from pathlib import Path
from typing import Callable

from alexnet_export.runtimes.table import backend_for
from alexnet_export.runtimes.registry import open_runtime
from alexnet_export.serving.app import ServeError, ServeSettings, create_app
from alexnet_export.serving.tensors import warmup_sizes

__all__ = ["ServeError", "ServeSettings", "serve"]

# uvicorn waits this long for requests in flight after SIGTERM before it cancels them.
GRACEFUL_SECONDS = 30


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line ServeError (port in use, unknown address)."""
    try:
        family, kind, proto, _, _ = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}: {exc.strerror}") from None
    # With proto 0 asyncio would not set TCP_NODELAY on accepted connections, and every answer would
    # wait out the client's delayed ACK (40 ms on Linux).
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after a stop
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "the port is in use (another server?)" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise ServeError(f"cannot listen on {host}:{port}: {reason}") from None
    return sock


def threads_per_worker(workers: int) -> int | None:
    """Intra-op threads for each of `workers` concurrent model runs: the cores split between them."""
    if workers == 1:
        return None  # the backend's default: every core
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // workers)


def serve(model: Path, settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000,
          access_log: bool = False, say: Callable[[str], None] = print, trusted_key: Path | None = None,
          labels: Path | None = None) -> None:
    """Load `model`, listen, serve until SIGTERM or Ctrl-C, answer what is in flight, return.
    trusted_key: the model's signature must verify with it before it is loaded (None: the file
    $ALEXNET_EXPORT_TRUSTED_KEY names, when set; runtimes/signing/sign.py). labels: for a checkpoint,
    a file of its class names (TorchRuntime's `labels`)."""
    import uvicorn

    backend = backend_for(model)
    # Spinning threads would take the cores from the event loop between batches.
    runtime = open_runtime(model, trusted_key=trusted_key, **({"labels": labels} if labels is not None else {}),
                           **backend.taken(threads=threads_per_worker(settings.workers), spinning=False))
    if not is_loopback(host):
        say(f"warning: listening on {host}, reachable from other machines; the server has no authentication"
            " (use --host 127.0.0.1 behind a proxy that has)")
    sock = listen(host, port)
    address = sock.getsockname()
    app = create_app(runtime, settings, backend.platform)
    config = uvicorn.Config(app, lifespan="on", log_level="info" if access_log else "warning",
                            access_log=access_log, timeout_graceful_shutdown=GRACEFUL_SECONDS,
                            # uvicorn counts the connection asking too, so N + 1 admits N.
                            limit_concurrency=settings.max_connections + 1)
    server = uvicorn.Server(config)
    batching = (f"dynamic batching up to {settings.max_batch} images within {settings.max_queue_delay_ms:g} ms"
                if settings.batching else f"no batching (requests of up to {settings.max_batch} images)")
    takes = "uint8 pixels" if runtime.metadata.preprocessing.takes_pixels else "float32"
    say(f"serving {model} as {settings.name!r}: {runtime.metadata.num_classes} classes, {takes} input, "
        f"{runtime.precision}, on {runtime.device}; {batching}; {settings.workers} worker(s)")
    if settings.warmup:
        say(f"warming up at batch {', '.join(map(str, warmup_sizes(settings.max_batch)))} before answering ready")
    host_text = f"[{address[0]}]" if ":" in address[0] else address[0]
    say(f"listening on http://{host_text}:{address[1]} (SIGTERM or Ctrl-C stops it after the requests in flight)")
    # uvicorn re-raises a stop signal once it has shut down gracefully; with these handlers in place
    # that ends in a normal return (exit 0) instead of death by signal.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn's exit when the app's startup failed: reported below as one line
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        runtime.close()
    if not server.started:
        raise ServeError(getattr(app.state, "startup_error", "") or "the server did not start; see the log above")
    say("stopped")
