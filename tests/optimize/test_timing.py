"""The timing `optimize` and `bench` share (runtimes/verification/timing.py): the settling rule on
synthetic sample streams (a fake clock: each call advances it by the stream's next figure), and
the order-statistics interval of the median on a known distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alexnet_export.runtimes.verification.timing import (
    MAX_ROUNDS,
    STABLE_WINDOWS,
    WINDOW_ROUNDS,
    Settle,
    interleaved_rounds,
    median_coverage,
    median_interval,
    median_rank,
)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _timed(streams: dict[str, np.ndarray], rule: Settle = Settle()):
    """interleaved_rounds over calls that take the streams' seconds, one figure per call."""
    clock = FakeClock()

    def call(samples):
        figures = iter(samples)

        def run():
            clock.now += float(next(figures))
        return run

    return interleaved_rounds({name: call(samples) for name, samples in streams.items()}, warmup=0, settle=rule,
                              clock=clock), clock


def _lognormal(seed: int, spread: float, size: int = 10_000, median: float = 0.010) -> np.ndarray:
    return median * np.exp(np.random.default_rng(seed).normal(0, spread, size))


def test_stable_streams_stop_at_the_first_window_end_that_can_show_it():
    times, _ = _timed({"a.onnx": _lognormal(1, 0.005), "b.xml": _lognormal(2, 0.005, median=0.004)})
    assert times.stopped == "stable"
    assert [len(samples) for samples in times.values()] == [WINDOW_ROUNDS * STABLE_WINDOWS] * 2


def test_noisy_streams_run_to_the_maximum_of_rounds():
    times, _ = _timed({"a.onnx": _lognormal(3, 0.5)})
    assert times.stopped == f"maximum of {MAX_ROUNDS} rounds, not stable"
    assert len(times["a.onnx"]) == MAX_ROUNDS


def test_one_noisy_file_keeps_every_file_timing():
    times, _ = _timed({"a.onnx": _lognormal(4, 0.005), "b.onnx": _lognormal(5, 0.5)})
    assert times.stopped.startswith("maximum") and len(times["a.onnx"]) == MAX_ROUNDS


def test_a_load_that_comes_and_goes_is_not_stable():
    """Each window's rounds steady, but every other window 20% slower (a neighbour's bursts)."""
    steps = np.repeat(np.tile([0.010, 0.012], 50), WINDOW_ROUNDS)
    times, _ = _timed({"a.onnx": steps})
    assert times.stopped.startswith("maximum of 200 rounds")


def test_the_seconds_maximum_stops_slow_noisy_calls():
    times, clock = _timed({"a.onnx": _lognormal(6, 0.5, median=1.0)}, Settle(max_seconds=60))
    assert times.stopped == "maximum of 60 s, not stable"
    assert 60 <= clock.now < 60 + max(times["a.onnx"]) + 1e-9


def test_the_rule_reads_whole_windows_only():
    rule = Settle(window=10, windows=3, percent=5)
    assert not rule.stable([1.0] * 29) and rule.stable([1.0] * 30) and rule.stable([1.0] * 35)
    shifted = [1.0] * 10 + [1.049] * 10 + [1.0] * 10  # the window medians 4.9% apart: within
    assert rule.stable(shifted) and not rule.stable([1.0] * 20 + [1.051] * 10)
    assert rule.verdict({"a": [1.0] * 35}, elapsed=0) is None  # read at window ends only
    scattered = [0.5, 1.5, 0.6, 1.4, 1.0, 0.7, 1.3, 0.8, 1.2, 1.0] * 3  # every window's median 1.0, spread wide
    assert not rule.stable(scattered)  # the interval of the median is far over 5% wide: not passed by luck
    assert "the medians of the last 3 windows of 10 rounds are within 5% of each other and the 95% interval" in rule.describe()


def test_one_way_to_stop_is_asked_for():
    with pytest.raises(ValueError, match="give one of rounds, seconds or settle"):
        interleaved_rounds({}, warmup=0, rounds=3, settle=Settle())
    with pytest.raises(ValueError, match="settling rule .* is invalid"):
        Settle(windows=1)
    assert interleaved_rounds({"a": lambda: None}, warmup=0, rounds=3).stopped == "3 rounds asked"


@pytest.mark.parametrize("n, rank", [(5, 1), (6, 1), (9, 2), (20, 6), (100, 40)])
def test_median_ranks_are_the_binomial_ones(n, rank):
    """Published 95% ranks (n = 100: the 40th and 61st values); under 6 samples the extremes."""
    assert median_rank(n) == rank
    assert median_coverage(n) >= 0.95 or n < 6


def test_large_samples_get_the_normal_approximations_rank():
    n = 100_000
    assert abs(median_rank(n) - (n / 2 - 1.96 * math.sqrt(n) / 2)) <= 2


def test_the_median_interval_covers_the_true_median_as_often_as_it_says():
    """Lognormal latencies (median 1), 41 rounds, 4000 draws with a fixed seed: the interval holds the
    true median about as often as its exact coverage (at least 95%), whatever the skew."""
    rng, n, trials = np.random.default_rng(0), 41, 4000
    hits = 0
    for _ in range(trials):
        low, high = median_interval(list(np.exp(rng.normal(0, 0.4, n))))
        hits += low <= 1.0 <= high
    exact = median_coverage(n)
    assert exact >= 0.95
    assert abs(hits / trials - exact) < 3 * math.sqrt(exact * (1 - exact) / trials)


def test_the_interval_holds_the_sample_median():
    samples = list(_lognormal(7, 0.2, size=61))
    low, high = median_interval(samples)
    assert low <= float(np.median(samples)) <= high
    assert median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0)
    with pytest.raises(ValueError, match="no samples"):
        median_interval([])
