"""serving/batcher.py on its own: no server, no sockets, one event loop per test.

The model is a numpy stand-in that records each call (when it started, which images it got, on
which thread) and returns `images * 2 + 1`, so every answer shows which images it was computed
from. Image values are unique ids. Timing checks are lower bounds set by the batcher's own
deadlines, or upper bounds far from them (a 30-second delay that a full batch must not wait out),
so a loaded machine slows them down without failing them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from alexnet_export.serving.batcher import BatcherClosed, DynamicBatcher

LONG = 30.0  # a delay no test waits out: finishing well before it proves the batcher did not wait
PATIENCE = 10.0  # how long any one test waits for an answer before it fails instead of hanging


@dataclass
class Call:
    started: float  # time.monotonic() when the model run began
    ids: list[int]
    thread: str


class StandInModel:
    """What the batcher calls: `run(images)` from worker threads, one row per image.

    `gate` cleared holds every run until it is set (a busy model); `running` is set once a run has
    begun. Images with a negative id make the run raise, as a model failing on a batch would."""

    def __init__(self, barrier: threading.Barrier | None = None):
        self.calls: list[Call] = []
        self.gate = threading.Event()
        self.gate.set()
        self.running = threading.Event()
        self._barrier = barrier
        self._lock = threading.Lock()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        with self._lock:
            self.calls.append(Call(time.monotonic(), images[:, 0].astype(int).tolist(),
                                   threading.current_thread().name))
        self.running.set()
        if not self.gate.wait(PATIENCE):
            raise TimeoutError("the test never released the model")
        if self._barrier is not None:
            self._barrier.wait()  # raises BrokenBarrierError unless another run is in progress at once
        if (images < 0).any():
            raise ValueError(f"the model failed on a batch of {len(images)}")
        return images * 2 + 1

    @property
    def batches(self) -> list[list[int]]:
        return [call.ids for call in self.calls]


def ids(*values: int) -> np.ndarray:
    """A request whose images carry these ids, one column each (the batcher never reads the rows)."""
    return np.array(values, dtype=np.float64).reshape(-1, 1)


def answer(images: np.ndarray) -> np.ndarray:
    return images * 2 + 1


def run(coroutine):
    """Run one test's coroutine in a fresh event loop, failing after PATIENCE instead of hanging."""

    async def bounded():
        return await asyncio.wait_for(coroutine, PATIENCE)

    return asyncio.run(bounded())


async def started(model, **options) -> DynamicBatcher:
    batcher = DynamicBatcher(model, **options)
    await batcher.start()
    return batcher


async def until(condition, what: str) -> None:
    """Yield to the loop until `condition()` holds (a run began, a request was queued)."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("options", [dict(max_batch=0, max_delay=0.1), dict(max_batch=4, max_delay=-0.001),
                                     dict(max_batch=4, max_delay=0.1, runners=0)])
def test_settings_out_of_range_are_refused(options):
    with pytest.raises(ValueError, match="max_batch and runners must be positive and max_delay not negative"):
        DynamicBatcher(StandInModel(), **options)


def test_requests_of_no_images_or_more_than_max_batch_are_refused():
    async def scenario():
        model = StandInModel()
        batcher = await started(model, max_batch=3, max_delay=0)
        for request in (ids(), ids(1, 2, 3, 4)):
            with pytest.raises(ValueError, match=rf"a request of {len(request)} images; the batcher takes 1 to 3"):
                await batcher.submit(request)
        assert batcher.pending == 0 and model.calls == []
        await batcher.close()

    run(scenario())


def test_a_lone_request_runs_after_the_delay_not_before():
    delay = 0.2

    async def scenario():
        model = StandInModel()
        batcher = await started(model, max_batch=4, max_delay=delay)
        submitted = time.monotonic()
        rows = await batcher.submit(ids(7))
        await batcher.close()
        return model, submitted, rows, batcher.stats

    model, submitted, rows, stats = run(scenario())
    assert np.array_equal(rows, answer(ids(7)))
    assert model.batches == [[7]]
    # The deadline is counted from the request's arrival, after `submitted`.
    assert model.calls[0].started - submitted >= delay
    assert model.calls[0].thread.startswith("model-run"), "the model ran on the event loop's thread"
    assert stats.requests == 1 and stats.images == 1 and stats.runs_by_size == {1: 1} and stats.run_seconds >= 0


def test_a_full_batch_runs_at_once_without_waiting_for_the_delay():
    async def scenario():
        model = StandInModel()
        batcher = await started(model, max_batch=4, max_delay=LONG)
        begun = time.monotonic()
        together = await asyncio.gather(*(batcher.submit(ids(i)) for i in range(4)))
        alone = await batcher.submit(ids(10, 11, 12, 13))  # one request of max_batch images: full by itself
        took = time.monotonic() - begun
        await batcher.close()
        return model, together, alone, took

    model, together, alone, took = run(scenario())
    assert took < LONG / 3, f"full batches took {took:.1f} s: the batcher waited for the {LONG:.0f} s delay"
    assert model.batches == [[0, 1, 2, 3], [10, 11, 12, 13]]
    for i, rows in enumerate(together):
        assert np.array_equal(rows, answer(ids(i)))
    assert np.array_equal(alone, answer(ids(10, 11, 12, 13)))


def test_requests_arriving_within_the_delay_join_the_batch():
    async def scenario():
        model = StandInModel()
        batcher = await started(model, max_batch=4, max_delay=LONG)
        first = asyncio.create_task(batcher.submit(ids(1)))
        await until(lambda: batcher.pending == 1, "the first request is queued")
        await asyncio.sleep(0.05)  # the runner now waits for company
        assert model.calls == [] and not first.done()
        later = asyncio.gather(batcher.submit(ids(2, 3)), batcher.submit(ids(4)))  # fills the batch
        answers = [await first, *await later]
        await batcher.close()
        return model, answers

    model, answers = run(scenario())
    assert model.batches == [[1, 2, 3, 4]]
    for request, rows in zip((ids(1), ids(2, 3), ids(4)), answers):
        assert np.array_equal(rows, answer(request))


def test_a_request_that_waited_while_the_model_was_busy_does_not_wait_again():
    delay = 0.6

    async def scenario():
        model = StandInModel()
        model.gate.clear()
        batcher = await started(model, max_batch=2, max_delay=delay)
        busy = asyncio.create_task(batcher.submit(ids(1, 2)))  # full: runs at once, held by the gate
        await until(model.running.is_set, "the first batch is running")
        waiting = asyncio.create_task(batcher.submit(ids(3)))
        await asyncio.sleep(delay * 1.2)  # its whole delay passes while the model is busy
        released = time.monotonic()
        model.gate.set()
        answers = await asyncio.gather(busy, waiting)
        await batcher.close()
        return model, released, answers

    model, released, answers = run(scenario())
    assert model.batches == [[1, 2], [3]]
    # Waiting another full delay after the busy run would start it at released + delay or later.
    assert model.calls[1].started - released < delay
    assert np.array_equal(answers[1], answer(ids(3)))


def test_a_request_that_does_not_fit_is_held_for_the_next_batch_once_in_order():
    async def scenario():
        model = StandInModel()
        batcher = await started(model, max_batch=4, max_delay=LONG)
        first = asyncio.create_task(batcher.submit(ids(1, 2, 3)))
        held = asyncio.create_task(batcher.submit(ids(4, 5)))  # 3 + 2 > 4: does not fit
        rows_first = await first  # the batch it did not fit runs at once: it cannot grow
        assert model.batches == [[1, 2, 3]] and not held.done()
        rows_last = await batcher.submit(ids(6, 7))  # the held request starts the next batch, now full
        rows_held = await held
        await batcher.close()
        return model, rows_first, rows_held, rows_last, batcher.stats

    model, rows_first, rows_held, rows_last, stats = run(scenario())
    assert model.batches == [[1, 2, 3], [4, 5, 6, 7]]
    assert np.array_equal(rows_first, answer(ids(1, 2, 3)))
    assert np.array_equal(rows_held, answer(ids(4, 5)))
    assert np.array_equal(rows_last, answer(ids(6, 7)))
    assert stats.requests == 3 and stats.images == 7 and stats.runs_by_size == {3: 1, 4: 1}


def test_a_held_request_whose_client_left_is_dropped():
    async def scenario():
        model = StandInModel()
        model.gate.clear()
        batcher = await started(model, max_batch=4, max_delay=0.05)
        first = asyncio.create_task(batcher.submit(ids(1, 2, 3)))
        held = asyncio.create_task(batcher.submit(ids(4, 5)))
        await until(model.running.is_set, "the first batch is running")  # the second is held by now
        held.cancel()  # its client went away before its batch was collected
        model.gate.set()
        await first
        later = await batcher.submit(ids(6))
        await batcher.close()
        return model, held, later, batcher.pending

    model, held, later, pending = run(scenario())
    assert held.cancelled()
    assert model.batches == [[1, 2, 3], [6]]
    assert np.array_equal(later, answer(ids(6))) and pending == 0


def test_many_requests_of_mixed_sizes_are_each_answered_once_in_arrival_order():
    sizes = [1, 3, 2, 4, 1, 1, 3, 2, 2, 4, 1, 3, 1, 2, 4, 1]

    async def scenario():
        model = StandInModel()
        batcher = await started(model, max_batch=5, max_delay=0.02)
        requests, start = [], 0
        for size in sizes:
            requests.append(ids(*range(start, start + size)))
            start += size
        answers = await asyncio.gather(*(batcher.submit(request) for request in requests))
        await batcher.close()
        return model, requests, answers, batcher.stats

    model, requests, answers, stats = run(scenario())
    for request, rows in zip(requests, answers):
        assert np.array_equal(rows, answer(request))
    # Every image ran exactly once, batches never exceeded max_batch, and held requests kept their place.
    assert [i for batch in model.batches for i in batch] == list(range(sum(sizes)))
    assert all(1 <= len(batch) <= 5 for batch in model.batches)
    assert len(model.batches) < len(sizes), "nothing was merged"
    assert stats.requests == len(sizes) and stats.images == sum(sizes) and stats.runs == len(model.batches)


def test_a_failed_run_fails_its_own_batch_only_and_the_runner_goes_on():
    async def scenario():
        model = StandInModel()
        reported = []
        batcher = await started(model, max_batch=2, max_delay=LONG, on_run=lambda *report: reported.append(report))
        ok = await batcher.submit(ids(1, 2))
        shared = await asyncio.gather(batcher.submit(ids(-1)), batcher.submit(ids(3)), return_exceptions=True)
        after = await batcher.submit(ids(4, 5))
        await batcher.close()
        return model, ok, shared, after, reported, batcher.stats

    model, ok, shared, after, reported, stats = run(scenario())
    assert model.batches == [[1, 2], [-1, 3], [4, 5]]
    # Both requests of the failed batch hear of its failure; the batches before and after are answered.
    assert all(isinstance(e, ValueError) and str(e) == "the model failed on a batch of 2" for e in shared)
    assert np.array_equal(ok, answer(ids(1, 2))) and np.array_equal(after, answer(ids(4, 5)))
    # The failed run is not counted as an answered one, in the stats or to on_run.
    assert stats.requests == 2 and stats.images == 4 and stats.runs_by_size == {2: 2}
    assert [images for _, images, _ in reported] == [2, 2]


def test_without_merging_every_request_runs_alone_and_a_failure_reaches_only_its_caller():
    async def scenario():
        model = StandInModel()
        batcher = await started(model, max_batch=4, max_delay=LONG, merge=False)
        begun = time.monotonic()
        answers = await asyncio.gather(batcher.submit(ids(1)), batcher.submit(ids(-2, 3)), batcher.submit(ids(4, 5)),
                                       return_exceptions=True)
        took = time.monotonic() - begun
        await batcher.close()
        return model, answers, took, batcher.stats

    model, answers, took, stats = run(scenario())
    assert took < LONG / 3, "without merging a lone request waited for the delay"
    assert model.batches == [[1], [-2, 3], [4, 5]]
    assert np.array_equal(answers[0], answer(ids(1))) and np.array_equal(answers[2], answer(ids(4, 5)))
    assert isinstance(answers[1], ValueError)
    assert stats.runs_by_size == {1: 1, 2: 1}


def test_runners_run_batches_at_once():
    # Each run waits at a barrier for a second run: with one model run at a time it would break.
    async def scenario():
        model = StandInModel(barrier=threading.Barrier(2, timeout=PATIENCE / 2))
        batcher = await started(model, max_batch=1, max_delay=0, runners=2)
        answers = await asyncio.gather(batcher.submit(ids(1)), batcher.submit(ids(2)))
        await batcher.close()
        return model, answers

    model, answers = run(scenario())
    assert sorted(model.batches) == [[1], [2]] and len({call.thread for call in model.calls}) == 2
    assert np.array_equal(answers[0], answer(ids(1))) and np.array_equal(answers[1], answer(ids(2)))


def test_on_run_hears_each_requests_wait_the_batch_size_and_the_run_time():
    delay = 0.1

    async def scenario():
        model = StandInModel()
        reported = []
        batcher = await started(model, max_batch=8, max_delay=delay, on_run=lambda *report: reported.append(report))
        await asyncio.gather(batcher.submit(ids(1, 2)), batcher.submit(ids(3)), batcher.submit(ids(4, 5, 6)))
        await batcher.close()
        return reported, batcher.stats

    reported, stats = run(scenario())
    assert len(reported) == 1
    waited, images, seconds = reported[0]
    assert images == 6 and len(waited) == 3  # one wait per request, not per image
    assert waited[0] >= delay and min(waited) > 0  # the first waited out its delay, the others with it
    assert 0 <= seconds == stats.run_seconds


def test_pending_counts_requests_until_answered():
    async def scenario():
        model = StandInModel()
        model.gate.clear()
        batcher = await started(model, max_batch=2, max_delay=0)
        tasks = [asyncio.create_task(batcher.submit(ids(i))) for i in range(3)]
        await until(model.running.is_set, "a batch is running")
        during = batcher.pending
        model.gate.set()
        await asyncio.gather(*tasks)
        after = batcher.pending
        await batcher.close()
        return during, after

    assert run(scenario()) == (3, 0)


def test_close_answers_what_was_submitted_then_refuses_new_requests():
    delay = 0.2

    async def scenario():
        model = StandInModel()
        batcher = await started(model, max_batch=4, max_delay=delay)
        queued = asyncio.create_task(batcher.submit(ids(1)))  # waits for company until its delay passes
        await until(lambda: batcher.pending == 1, "the request is queued")
        closing = asyncio.create_task(batcher.close())
        await asyncio.sleep(0)  # close() has begun
        with pytest.raises(BatcherClosed, match="shutting down"):
            await batcher.submit(ids(2))  # refused while closing, before the queued one is answered
        assert not queued.done()
        await closing
        rows = queued.result()  # answered before close() returned
        with pytest.raises(BatcherClosed):
            await batcher.submit(ids(3))
        return model, rows, batcher

    model, rows, batcher = run(scenario())
    assert np.array_equal(rows, answer(ids(1))) and model.batches == [[1]]
    assert all(task.done() for task in batcher._tasks)  # the runners stopped


def test_a_batcher_never_started_refuses_requests_and_closes():
    async def scenario():
        batcher = DynamicBatcher(StandInModel(), max_batch=2, max_delay=0)
        with pytest.raises(BatcherClosed):
            await batcher.submit(ids(1))
        await batcher.close()

    run(scenario())
