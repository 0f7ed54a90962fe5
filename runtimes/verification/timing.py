"""Time several calls interleaved round by round: the one timer of `bench` and of
`--auto-keep-float`'s speed report.

Every round runs each call once, in an order that rotates by one each round, so a noisy
neighbour slows all of them alike and none always runs first after the others warmed the caches.
"""

from __future__ import annotations

import time
from typing import Callable


def interleaved_rounds(calls: dict[str, Callable[[], object]], *, warmup: int, rounds: int | None = None,
                       seconds: float | None = None,
                       on_round: Callable[[int], None] = lambda done: None) -> dict[str, list[float]]:
    """Per name, the seconds of each timed round, after `warmup` untimed rounds.

    Stops after `rounds` rounds, or once `seconds` have passed (at least 3 rounds); give one.
    on_round(done) is called after each timed round, for progress.
    """
    if (rounds is None) == (seconds is None):
        raise ValueError("give either rounds or seconds")
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    started, done = time.perf_counter(), 0
    while done < rounds if rounds is not None else (done < 3 or time.perf_counter() - started < seconds):
        shift = done % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            begin = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - begin)
        done += 1
        on_round(done)
    return times
