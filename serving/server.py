"""`alexnet-export serve`: one model over HTTP with the Open Inference Protocol (KServe v2).

A Starlette app run by uvicorn. Requests go through one dynamic batcher (serving/batcher.py) to
the runtime; request parsing and answer encoding run in worker threads so the event loop keeps
accepting requests while a batch fills. Every error is a JSON `{"error": "..."}` with one line and
no traceback; unexpected ones are logged here and answered with "internal error". No endpoint
loads anything: the server serves the one model it was started with, after running it once at
each batch size it will use (the warm-up), and counts what it does at /metrics (serving/metrics.py).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import signal
import socket
import time
import zlib
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alexnet_export import __version__
from alexnet_export.errors import AlexNetExportError, InputError, one_line
from alexnet_export.runtimes.base import Runtime, top_predictions
from alexnet_export.runtimes.preprocess import preprocess_batch
from alexnet_export.runtimes.registry import ONNX, backend_for
from alexnet_export.serving import protocol
from alexnet_export.serving.batcher import BatcherClosed, DynamicBatcher
from alexnet_export.serving.metrics import CONTENT_TYPE as METRICS_TYPE
from alexnet_export.serving.metrics import ServerMetrics
from alexnet_export.serving.triton_repo import warmup_sizes

log = logging.getLogger("uvicorn.error")  # configured by uvicorn, so our lines land beside its own

INFER_TYPES = ("", "application/json", "application/octet-stream")
IMAGE_TYPES = ("image/*", "application/octet-stream")
DEFAULT_TOP_K = 5
# A batch of 64 images as binary FP32 is 38.5 MB; as JSON text one image is about 3 MB.
DEFAULT_MAX_BODY_MB = 64
DEFAULT_MAX_CONNECTIONS = 64
# Request bodies decoded at once. Decoding is CPU-bound and mostly holds the GIL, so more at once
# would not be faster; and a parsed JSON body takes about 14x its size in Python floats, so this,
# not the connection limit, bounds that memory.
DECODE_SLOTS = 2
# uvicorn waits this long for requests in flight after SIGTERM before it cancels them.
GRACEFUL_SECONDS = 30


class ServeError(AlexNetExportError, RuntimeError):
    """The server cannot start as asked."""


@dataclass(frozen=True)
class ServeSettings:
    name: str = "alexnet"
    max_batch: int = 32  # images per model run, and per request (Triton's max_batch_size)
    max_queue_delay_ms: float = 5.0
    batching: bool = True
    workers: int = 1  # model runs at once, sharing the one loaded model
    max_body_bytes: int = DEFAULT_MAX_BODY_MB * 2**20
    # Open connections at most; past it uvicorn answers 503. Each request in flight may hold a
    # body of up to max_body_bytes, so this bounds the memory that clients can make the server hold.
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    # Run the model at batch 1 and max_batch before /v2/health/ready says ready, so the first
    # clients do not pay for the first run's allocations (docs/ARCHITECTURE.md has the figures).
    warmup: bool = True


class _Service:
    """What the handlers share: the runtime, the batcher and the settings."""

    def __init__(self, runtime: Runtime, settings: ServeSettings, platform: str):
        self.runtime, self.settings, self.platform = runtime, settings, platform
        self.metrics = ServerMetrics(settings.name, protocol.MODEL_VERSION)
        self.batcher = DynamicBatcher(runtime.predict_in_allowed_batches, max_batch=settings.max_batch,
                                      max_delay=settings.max_queue_delay_ms / 1000, runners=settings.workers,
                                      merge=settings.batching, on_run=self.metrics.on_run)
        self.ready = False
        self.decoding = asyncio.Semaphore(DECODE_SLOTS)

    def warm_up(self) -> None:
        """Zeros through the model at each batch size it will run (the batcher's runs go through the same call)."""
        spec = self.runtime.metadata.preprocessing
        for size in warmup_sizes(self.settings.max_batch):
            try:
                self.runtime.predict_in_allowed_batches(np.zeros((size, *spec.input_dims), spec.input_dtype))
            except Exception as exc:  # as Triton does with model_warmup: a model that cannot run is not served
                raise ServeError(f"the model failed its warm-up run at batch {size}: {one_line(exc)}") from None

    def check_model(self, request: Request) -> None:
        name, version = request.path_params["name"], request.path_params.get("version", protocol.MODEL_VERSION)
        if name != self.settings.name:
            raise HTTPException(404, f"unknown model {name!r}; this server serves {self.settings.name!r}")
        if version != protocol.MODEL_VERSION:
            raise HTTPException(404, f"unknown version {version!r} of {name!r}; the only version is "
                                     f"{protocol.MODEL_VERSION}")


def create_app(runtime: Runtime, settings: ServeSettings, platform: str = "") -> Starlette:
    service = _Service(runtime, settings, platform or ONNX.platform)
    metadata = runtime.metadata

    async def live(request):
        return JSONResponse({"live": True})

    async def ready(request):
        return JSONResponse({"ready": service.ready}, status_code=200 if service.ready else 503)

    async def server_metadata(request):
        return JSONResponse({"name": "alexnet-export", "version": __version__,
                             "extensions": ["binary_tensor_data", "classification", "statistics"]})

    async def model_metadata(request):
        service.check_model(request)
        return JSONResponse(protocol.model_metadata(settings.name, service.platform, metadata.preprocessing,
                                                    metadata.num_classes))

    async def model_ready(request):
        service.check_model(request)
        return JSONResponse({"name": settings.name, "ready": service.ready},
                            status_code=200 if service.ready else 503)

    async def infer(request):
        service.check_model(request)
        body = await _read_body(request, settings.max_body_bytes, INFER_TYPES)
        async with service.decoding:
            parsed = await run_in_threadpool(
                protocol.parse_infer_request, body, request.headers.get(protocol.HEADER_LENGTH),
                preprocessing=metadata.preprocessing, max_batch=settings.max_batch, num_classes=metadata.num_classes)
        logits = await service.batcher.submit(parsed.images)
        content, headers = await run_in_threadpool(protocol.encode_infer_response, parsed, logits, settings.name,
                                                   metadata.labels)
        return Response(content, headers=headers)

    async def classify(request):
        service.check_model(request)
        top_k = _top_k(request.query_params.get("top_k"), metadata.num_classes)
        body = await _read_body(request, settings.max_body_bytes, IMAGE_TYPES)
        if not body:
            raise InputError("the request body is empty; send the image file as the body")
        async with service.decoding:
            images = await run_in_threadpool(preprocess_batch, [body], metadata.preprocessing)
        best = top_predictions(await service.batcher.submit(images), top_k)[0]
        return JSONResponse({"model_name": settings.name, "model_version": protocol.MODEL_VERSION, "predictions": [
            {"label": metadata.labels[i], "index": i, "probability": p} for i, p in best]})

    async def stats(request):
        if "name" in request.path_params:
            service.check_model(request)
        counts = service.batcher.stats
        return JSONResponse({"model_stats": [{
            "name": settings.name, "version": protocol.MODEL_VERSION,
            "inference_count": counts.images, "execution_count": counts.runs, "request_count": counts.requests,
            "pending_request_count": service.batcher.pending,
            "inference_stats": {"compute_infer": {"count": counts.runs, "ns": int(counts.run_seconds * 1e9)}},
            "batch_stats": [{"batch_size": size, "compute_infer": {"count": count}}
                            for size, count in sorted(counts.runs_by_size.items())],
        }]})

    async def metrics(request):
        return Response(service.metrics.text(), headers={"content-type": METRICS_TYPE})

    @asynccontextmanager
    async def lifespan(app):
        if settings.warmup:
            try:
                await run_in_threadpool(service.warm_up)
            except ServeError as exc:
                app.state.startup_error = str(exc)  # serve() reports it in place of uvicorn's exit
                raise
        await service.batcher.start()
        service.ready = True
        try:
            yield
        finally:  # uvicorn has answered the requests in flight; the batcher answers what it still holds
            service.ready = False
            await service.batcher.close()

    routes = [
        Route("/v2/health/live", _guard(live)),
        Route("/v2/health/ready", _guard(ready)),
        Route("/v2", _guard(server_metadata)),
        Route("/v2/models/stats", _guard(stats)),
        Route("/metrics", _guard(metrics)),
    ]
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [
            Route(prefix, _guard(model_metadata)),
            Route(prefix + "/ready", _guard(model_ready)),
            Route(prefix + "/stats", _guard(stats)),
            Route(prefix + "/infer", _guard(infer, service.metrics, "infer"), methods=["POST"]),
            Route(prefix + "/classify", _guard(classify, service.metrics, "classify"), methods=["POST"]),
        ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        HTTPException: _http_error, Exception: _internal_error})


def _guard(handler: Callable, metrics: ServerMetrics | None = None, endpoint: str = "") -> Callable:
    """Known failures become their status and a one-line message; anything else is logged, not shown.
    With `metrics`, each request is counted by `endpoint` and answer status, and in flight meanwhile."""

    async def guarded(request: Request) -> Response:
        if metrics is None:
            return await _answer(handler, request)
        started = time.perf_counter()
        with metrics.requests_in_flight(endpoint).track_inprogress():
            response = await _answer(handler, request)
        metrics.answered(endpoint, response.status_code, time.perf_counter() - started)
        return response

    return guarded


async def _answer(handler: Callable, request: Request) -> Response:
    try:
        return await handler(request)
    except HTTPException as exc:
        return _error(exc.status_code, exc.detail)
    except InputError as exc:
        return _error(400, str(exc))
    except BatcherClosed as exc:
        return _error(503, str(exc))
    except ClientDisconnect:  # the client left mid-body: nobody to answer, nothing to log
        return Response(status_code=400)
    except Exception:
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, "internal error")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status)


async def _http_error(request, exc: HTTPException) -> JSONResponse:
    return _error(exc.status_code, exc.detail)


async def _internal_error(request, exc: Exception) -> JSONResponse:
    return _error(500, "internal error")  # uvicorn logs the exception


async def _read_body(request: Request, limit: int, media_types: tuple[str, ...]) -> bytes:
    """The body, refused with 415 for another content type and 413 past `limit` bytes (also decompressed)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not any(media == t or (t.endswith("/*") and media.startswith(t[:-1])) for t in media_types):
        wanted = ", ".join(t or "none" for t in media_types)
        raise HTTPException(415, f"Content-Type {media or 'none'} is not accepted here; expected {wanted}")
    too_large = HTTPException(413, f"the request body exceeds the server's limit of {limit:,} bytes (--max-body-mb)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "deflate"):  # tritonclient's request_compression_algorithm
        return _decompress(body, encoding, limit, too_large)
    if encoding != "identity":
        raise HTTPException(415, f"Content-Encoding {encoding} is not supported; expected gzip, deflate or none")
    return body


def _decompress(body: bytes, encoding: str, limit: int, too_large: HTTPException) -> bytes:
    decompressor = zlib.decompressobj(31 if encoding == "gzip" else 15)
    try:
        data = decompressor.decompress(body, limit + 1)  # never inflate past the limit
    except zlib.error:
        raise InputError(f"the body is not valid {encoding} data") from None
    if len(data) > limit:
        raise too_large
    if not decompressor.eof:
        raise InputError(f"the {encoding} body is truncated")
    return data


def _top_k(value: str | None, num_classes: int) -> int:
    if value is None:
        return min(DEFAULT_TOP_K, num_classes)
    if not value.isdigit() or not 1 <= int(value) <= num_classes:
        raise InputError(f"top_k is {value!r}; expected an integer from 1 to {num_classes}")
    return int(value)


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
          access_log: bool = False, say: Callable[[str], None] = print, trusted_key: Path | None = None) -> None:
    """Load `model`, listen, serve until SIGTERM or Ctrl-C, answer what is in flight, return.
    trusted_key: the model's signature must verify with it before it is loaded (None: the file
    $ALEXNET_EXPORT_TRUSTED_KEY names, when set; runtimes/signing.py)."""
    import uvicorn

    backend = backend_for(model)
    # Spinning threads would take the cores from the event loop between batches.
    runtime = backend.open(model, trusted_key=trusted_key,
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
