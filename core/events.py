"""Progress events: how long library work tells its caller what it is doing.

Library functions take `on_event: Listener` and call it with these dataclasses; they never
print. The CLI draws them (core/cli/options.py: `TerminalReporter`: results on stdout,
progress on stderr), an app may log them or ignore them (the default). Typed events let each caller decide how to draw, instead of
guessing from the words of a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union


@dataclass(frozen=True)
class Step:
    """A stage begins, e.g. "tracing the model with torch.export". `transient`: a status the next
    line replaces (a terminal may show it in place, a log need not keep it)."""

    text: str
    transient: bool = False


@dataclass(frozen=True)
class Note:
    """Something the user should know about the result; `warning` when it may be a problem."""

    text: str
    warning: bool = False


@dataclass(frozen=True)
class Advance:
    """`done` of `total` units of `task` are finished (total None: open-ended, e.g. timed rounds).
    `unit` names the units ("images") when their rate and the time left are worth showing."""

    task: str
    done: int
    total: int | None = None
    unit: str | None = None


@dataclass(frozen=True)
class Verified:
    """A file passed its parity gate; `report` (runtimes/verification/parity.py's ParityReport) has the figures."""

    title: str  # what was compared with what, and on which inputs
    report: object


Event = Union[Step, Note, Advance, Verified]
Listener = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The default listener: library calls are silent unless asked."""


def counter(on_event: Listener, task: str, total: int | None) -> Callable[[int], None]:
    """A `tick(n)` callback that reports `n` more units of `task` as Advance events.

    Nothing is reported until the first tick, so work that turns out to be cached shows no bar.
    """
    done = 0

    def tick(count: int) -> None:
        nonlocal done
        done += count
        on_event(Advance(task, done, total))

    return tick
