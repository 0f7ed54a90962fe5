"""What every endpoint of `serve` shares at the HTTP level: known failures turned into their status
and a one-line JSON error (anything else logged, answered "internal error"), request counting,
and request bodies read within a size limit, by content type, decompressed safely."""

from __future__ import annotations

import logging
import time
import zlib
from typing import Callable

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from alexnet_export.errors import InputError
from alexnet_export.serving.batcher import BatcherClosed
from alexnet_export.serving.metrics import ServerMetrics

log = logging.getLogger("uvicorn.error")  # configured by uvicorn, so our lines land beside its own


def guard(handler: Callable, metrics: ServerMetrics | None = None, endpoint: str = "") -> Callable:
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


async def http_error(request, exc: HTTPException) -> JSONResponse:
    return _error(exc.status_code, exc.detail)


async def internal_error(request, exc: Exception) -> JSONResponse:
    return _error(500, "internal error")  # uvicorn logs the exception


async def read_body(request: Request, limit: int, media_types: tuple[str, ...]) -> bytes:
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
