"""The `serve` app: one model behind the Open Inference Protocol's routes (KServe v2), a dynamic
batcher in front of the runtime, a warm-up before ready, and /metrics.

Request parsing and answer encoding (serving/protocol.py) run in worker threads so the event loop
keeps accepting requests while a batch fills; the HTTP guards and body limits are serving/http.py's.
No endpoint loads anything: the app serves the one runtime it was made with.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alexnet_export import __version__
from alexnet_export.errors import AlexNetExportError, InputError, one_line
from alexnet_export.runtimes.base import Runtime, top_predictions
from alexnet_export.runtimes.preprocess import preprocess_batch
from alexnet_export.runtimes.table import ONNX
from alexnet_export.serving import protocol
from alexnet_export.serving.batcher import DynamicBatcher
from alexnet_export.serving.http import guard, http_error, internal_error, read_body
from alexnet_export.serving.metrics import CONTENT_TYPE as METRICS_TYPE
from alexnet_export.serving.metrics import ServerMetrics
from alexnet_export.serving.tensors import warmup_sizes

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
        # Every batch is checked when its request is parsed (serving/protocol.py, preprocess_batch).
        self.batcher = DynamicBatcher(self._run_checked, max_batch=settings.max_batch,
                                      max_delay=settings.max_queue_delay_ms / 1000, runners=settings.workers,
                                      merge=settings.batching, on_run=self.metrics.on_run)
        self.ready = False
        self.decoding = asyncio.Semaphore(DECODE_SLOTS)

    def _run_checked(self, batch: np.ndarray) -> np.ndarray:
        return self.runtime.predict_in_allowed_batches(batch, checked=True)

    def warm_up(self) -> None:
        """Zeros through the model at each batch size it will run (the batcher's runs go through the same call)."""
        for size in warmup_sizes(self.settings.max_batch):
            try:
                self._run_checked(self.runtime.zeros(size))
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
        body = await read_body(request, settings.max_body_bytes, INFER_TYPES)
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
        body = await read_body(request, settings.max_body_bytes, IMAGE_TYPES)
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
        Route("/v2/health/live", guard(live)),
        Route("/v2/health/ready", guard(ready)),
        Route("/v2", guard(server_metadata)),
        Route("/v2/models/stats", guard(stats)),
        Route("/metrics", guard(metrics)),
    ]
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [
            Route(prefix, guard(model_metadata)),
            Route(prefix + "/ready", guard(model_ready)),
            Route(prefix + "/stats", guard(stats)),
            Route(prefix + "/infer", guard(infer, service.metrics, "infer"), methods=["POST"]),
            Route(prefix + "/classify", guard(classify, service.metrics, "classify"), methods=["POST"]),
        ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        HTTPException: http_error, Exception: internal_error})


def _top_k(value: str | None, num_classes: int) -> int:
    if value is None:
        return min(DEFAULT_TOP_K, num_classes)
    if not value.isdigit() or not 1 <= int(value) <= num_classes:
        raise InputError(f"top_k is {value!r}; expected an integer from 1 to {num_classes}")
    return int(value)
