"""A quiet way to draw progress events: results and warnings as lines on stderr, and everything
that is only progress (transient steps, counters) as one status line redrawn in place on a
terminal and left out of a log. `optimize` draws its own events with it by default
(`--verbose`: core/cli/options.py's TerminalReporter, every step and table)."""

from __future__ import annotations

import shutil
import sys

import click

from alexnet_export.cli.options import say, warn
from alexnet_export.events import Advance, Event, Note, Step, Verified


class StatusLine:
    def __init__(self):
        self.interactive = sys.stderr.isatty()
        self._shown = 0  # the length of the status line on the screen; 0: none

    def __call__(self, event: Event) -> None:
        if isinstance(event, Verified):  # report.md keeps the tables
            return
        if isinstance(event, Advance) or (isinstance(event, Step) and event.transient):
            self._status(_status_text(event))
            return
        self._clear()
        if isinstance(event, Note):
            warn(event.text) if event.warning else say(event.text)
        elif isinstance(event, Step):
            say(event.text)

    def detail(self, event: Event) -> None:
        """An event from inside a step (each export's, the bench's): progress only, unless a warning."""
        if isinstance(event, Note) and event.warning:
            self(event)
        elif isinstance(event, (Step, Advance)):
            self._status(_status_text(event))

    def _status(self, text: str) -> None:
        if not self.interactive:
            return
        text = text[:max(shutil.get_terminal_size((100, 20)).columns - 1, 20)]
        click.echo("\r" + text.ljust(self._shown), err=True, nl=False)  # blanks a longer line's tail
        self._shown = max(len(text), self._shown)  # what the screen holds, padding included

    def _clear(self) -> None:
        if self._shown:
            click.echo("\r" + " " * self._shown + "\r", err=True, nl=False)
            self._shown = 0


def _status_text(event: Advance | Step) -> str:
    if isinstance(event, Step):
        return event.text
    return f"{event.task}: {event.done}" + (f"/{event.total}" if event.total else "")
