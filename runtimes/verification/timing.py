"""Time several calls interleaved round by round: the one timer of `bench`, `optimize` and
`--auto-keep-float`'s speed report.

Every round runs each call once, in an order that rotates by one each round, so a noisy
neighbour slows all of them alike and none always runs first after the others warmed the caches.
The rounds end after a number asked, after a time asked, or (Settle) once every call's median
has stopped moving; median_interval gives the 95% interval of a median from its rounds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

# The settling rule (issue 34): rounds are read in windows of WINDOW_ROUNDS; the timing stops at
# the first window's end where, for every call, the medians of the last STABLE_WINDOWS windows are
# within STABLE_PERCENT of each other (largest minus smallest, over the smallest) and the 95%
# interval of the median of all its rounds is at most STABLE_PERCENT of that median wide; else at
# MAX_ROUNDS rounds or MAX_SECONDS of timed rounds, whichever comes first. The windows catch a
# load that comes and goes (the running median would settle through it); the interval keeps noise
# from passing by luck: on simulated rounds with 20% spread (lognormal, sigma 0.2) the windows
# alone agreed within 200 rounds in 84% of 300 runs, with the interval in 2%; with 5% spread both
# stop by round 40 on average. On this 2-core machine with a test suite running beside it (load
# 2.3), window medians of 10 rounds moved 10-20%: such a run goes on to the maximum.
WINDOW_ROUNDS = 10
STABLE_WINDOWS = 3
STABLE_PERCENT = 5.0
MAX_ROUNDS = 200
MAX_SECONDS = 60.0
CONFIDENCE = 0.95

STABLE = "stable"


@dataclass(frozen=True)
class Settle:
    """Time until every call's median is stable, or a maximum is reached (the module's rule)."""

    window: int = WINDOW_ROUNDS
    windows: int = STABLE_WINDOWS
    percent: float = STABLE_PERCENT
    max_rounds: int = MAX_ROUNDS
    max_seconds: float = MAX_SECONDS

    def __post_init__(self):
        if self.window < 1 or self.windows < 2 or self.percent < 0 or self.max_rounds < 1 or self.max_seconds <= 0:
            raise ValueError(f"settling rule {self} is invalid; expected window >= 1, windows >= 2, percent >= 0"
                             " and positive maxima")

    def describe(self) -> str:
        return (f"until, for every file, the medians of the last {self.windows} windows of {self.window} rounds"
                f" are within {self.percent:g}% of each other and the 95% interval of the median is at most"
                f" {self.percent:g}% of it wide; at most {self.max_rounds} rounds or {self.max_seconds:g} s")

    def stable(self, samples: list[float]) -> bool:
        """The medians of the last `windows` whole windows of `samples` are within `percent` of each
        other, and the 95% interval of the median of them all is at most `percent` of it wide."""
        done = len(samples) - len(samples) % self.window
        if done < self.window * self.windows:
            return False
        medians = [_median(samples[end - self.window:end])
                   for end in range(done - self.window * (self.windows - 1), done + 1, self.window)]
        low, high = median_interval(samples[:done])
        share = self.percent / 100
        return max(medians) - min(medians) <= share * min(medians) and high - low <= share * _median(samples[:done])

    def verdict(self, times: dict[str, list[float]], elapsed: float) -> str | None:
        """Why the rounds end now ("stable", or the maximum reached), or None to go on; read at window ends."""
        done = min((len(samples) for samples in times.values()), default=0)
        if done % self.window == 0 and all(self.stable(samples) for samples in times.values()):
            return STABLE
        if done >= self.max_rounds:
            return f"maximum of {self.max_rounds} rounds, not stable"
        if elapsed >= self.max_seconds:
            return f"maximum of {self.max_seconds:g} s, not stable"
        return None


class Rounds(dict):
    """Per name, the seconds of each timed round; `stopped` says why the rounds ended."""

    stopped: str = ""


def interleaved_rounds(calls: dict[str, Callable[[], object]], *, warmup: int, rounds: int | None = None,
                       seconds: float | None = None, settle: Settle | None = None,
                       on_round: Callable[[int], None] = lambda done: None,
                       clock: Callable[[], float] = time.perf_counter) -> Rounds:
    """Per name, the seconds of each timed round, after `warmup` untimed rounds.

    Stops after `rounds` rounds, once `seconds` have passed (at least 3 rounds), or by the `settle`
    rule; give one. on_round(done) is called after each timed round, for progress. clock: for tests.
    """
    if sum(option is not None for option in (rounds, seconds, settle)) != 1:
        raise ValueError("give one of rounds, seconds or settle")
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times = Rounds({name: [] for name in names})
    started, done = clock(), 0
    while (stopped := _stop(times, done, clock() - started, rounds, seconds, settle)) is None:
        shift = done % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            begin = clock()
            calls[name]()
            times[name].append(clock() - begin)
        done += 1
        on_round(done)
    times.stopped = stopped
    return times


def _stop(times: Rounds, done: int, elapsed: float, rounds, seconds, settle: Settle | None) -> str | None:
    if settle is not None:
        return settle.verdict(times, elapsed) if done else None
    if rounds is not None:
        return f"{rounds} rounds asked" if done >= rounds else None
    return f"{seconds:g} s asked" if done >= 3 and elapsed >= seconds else None


def median_interval(samples: list[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The `confidence` interval of the median of the distribution `samples` come from, by order
    statistics: distribution-free, since how many samples fall below the true median is
    Binomial(n, 1/2) whatever the latencies' shape, so the k-th smallest and the k-th largest
    bracket it with probability 1 - 2 P(B <= k - 1). Under 6 samples no pair reaches 95%: the
    smallest and the largest are given (n = 5: 93.75%)."""
    if not samples:
        raise ValueError("no samples to take a median interval of")
    ordered = sorted(samples)
    rank = median_rank(len(ordered), confidence)
    return ordered[rank - 1], ordered[len(ordered) - rank]


def median_rank(n: int, confidence: float = CONFIDENCE) -> int:
    """The largest k with 2 P(B <= k - 1) <= 1 - confidence, B ~ Binomial(n, 1/2); 1 where there is none."""
    allowed, tail, rank = (1 - confidence) / 2, 0.0, 1
    while rank < (n + 1) // 2:
        tail += _binomial_half(n, rank - 1)  # P(B <= rank - 1)
        if tail > allowed:
            break
        rank += 1
    return max(rank - 1, 1)


def median_coverage(n: int, confidence: float = CONFIDENCE) -> float:
    """The exact probability that median_interval's pair brackets the median (continuous latencies)."""
    return 1 - 2 * sum(_binomial_half(n, below) for below in range(median_rank(n, confidence)))


def _binomial_half(n: int, k: int) -> float:
    """P(B = k), B ~ Binomial(n, 1/2), in logs: 2**-n underflows past n = 1074."""
    return math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2))


def _median(values: list[float]) -> float:
    ordered, middle = sorted(values), len(values) // 2
    return ordered[middle] if len(values) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
