"""Dynamic batching: requests that arrive together share one model run.

Requests wait in an asyncio queue. A runner takes the oldest and keeps collecting until the batch
holds `max_batch` images or the oldest request has waited `max_delay` seconds (a request that
waited while the model was busy does not wait again), runs the model once in a worker thread and
hands each request its own rows. `runners` batches run at once (one per model instance); only
one runner collects at a time, so batches fill in arrival order. With `merge=False` every request
runs alone, in the same queue, for comparison.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


class BatcherClosed(RuntimeError):
    """The server is shutting down and takes no new requests."""


@dataclass
class _Item:
    images: np.ndarray
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """What the batcher did: requests and images answered, model runs by batch size."""

    requests: int = 0
    images: int = 0
    runs_by_size: Counter = field(default_factory=Counter)
    run_seconds: float = 0.0

    @property
    def runs(self) -> int:
        return sum(self.runs_by_size.values())


class DynamicBatcher:
    """`await submit(images)` returns `run(images)`'s rows for those images.

    `run` takes a batch of up to `max_batch` images and is called from worker threads,
    up to `runners` at once (it must be thread-safe, as `Runtime.predict` is).
    `on_run(queue_seconds, images, compute_seconds)`, if given, hears of every model run: how long
    each of its requests waited in the queue, the batch size, the run's time (serving/metrics.py).
    """

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], *, max_batch: int, max_delay: float,
                 runners: int = 1, merge: bool = True,
                 on_run: Callable[[list[float], int, float], None] | None = None):
        if max_batch < 1 or max_delay < 0 or runners < 1:
            raise ValueError("max_batch and runners must be positive and max_delay not negative")
        self._run, self.max_batch, self.max_delay, self.merge = run, max_batch, max_delay, merge
        self._on_run = on_run
        self._runners = runners
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Item] | None = None
        self._held: _Item | None = None  # taken from the queue but did not fit the last batch
        self._tasks: list[asyncio.Task] = []
        self._executor: ThreadPoolExecutor | None = None
        self._collecting: asyncio.Lock | None = None
        self._pending = 0
        self._idle: asyncio.Event | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Requests submitted and not yet answered (queued or running)."""
        return self._pending

    async def start(self) -> None:
        self._queue, self._collecting, self._idle = asyncio.Queue(), asyncio.Lock(), asyncio.Event()
        self._idle.set()
        self._executor = ThreadPoolExecutor(self._runners, thread_name_prefix="model-run")
        self._tasks = [asyncio.create_task(self._runner()) for _ in range(self._runners)]

    async def submit(self, images: np.ndarray) -> np.ndarray:
        if self._closed or self._queue is None:
            raise BatcherClosed("the server is shutting down")
        if not 1 <= len(images) <= self.max_batch:
            raise ValueError(f"a request of {len(images)} images; the batcher takes 1 to {self.max_batch}")
        item = _Item(images, asyncio.get_running_loop().create_future())
        self._pending += 1
        self._idle.clear()
        self._queue.put_nowait(item)
        try:
            return await item.future
        finally:
            self._pending -= 1
            if not self._pending:
                self._idle.set()

    async def close(self) -> None:
        """Refuse new requests, answer every one already submitted, then stop the runners."""
        self._closed = True
        if self._idle is not None:
            await self._idle.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def _runner(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            async with self._collecting:
                batch = await self._collect()
            images = batch[0].images if len(batch) == 1 else np.concatenate([item.images for item in batch])
            waited = [time.monotonic() - item.arrived for item in batch]
            started = time.perf_counter()
            try:
                logits = await loop.run_in_executor(self._executor, self._run, images)
            except Exception as exc:  # every request in the batch gets the failure; the runner goes on
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            self._record(batch, len(images), time.perf_counter() - started, waited)
            start = 0
            for item in batch:
                rows = logits[start : start + len(item.images)]
                start += len(item.images)
                if not item.future.done():  # the client may have gone away
                    item.future.set_result(rows)

    async def _collect(self) -> list[_Item]:
        """The next batch: the oldest request, then more until full or the oldest's delay is spent."""
        held, self._held = self._held, None
        first = held if held is not None and not held.future.done() else await self._next(None)
        batch, count = [first], len(first.images)
        deadline = first.arrived + self.max_delay
        while self.merge and count < self.max_batch:
            item = await self._next(deadline)
            if item is None:
                break
            if count + len(item.images) > self.max_batch:
                self._held = item  # first in line for the next batch
                break
            batch.append(item)
            count += len(item.images)
        return batch

    async def _next(self, deadline: float | None) -> _Item | None:
        """The next request whose client still waits; None once `deadline` (monotonic) passes."""
        while True:
            if deadline is None:
                item = await self._queue.get()
            else:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except asyncio.TimeoutError:
                        return None
            if not item.future.done():
                return item

    def _record(self, batch: list[_Item], images: int, seconds: float, waited: list[float]) -> None:
        self.stats.requests += len(batch)
        self.stats.images += images
        self.stats.runs_by_size[images] += 1
        self.stats.run_seconds += seconds
        if self._on_run is not None:
            self._on_run(waited, images, seconds)
