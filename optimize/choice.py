"""How `optimize` chooses with the noise in view: the Pareto front of the measured files, the tie
of the files whose p50 interval overlaps the fastest one's, and the stated rule that breaks it.

A file may be chosen when it ran at the timed batch, passed bench's gate and is within the top-1
budget. Under the latency objective the fastest such file's 95% interval of p50 is compared with
the others': every eligible file whose interval overlaps it is tied with it (the timing cannot
tell them apart), and the tie is broken by the fewest bytes, then the fewest extras needed to run
the file, then the id; the same tie set gives the same file on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from alexnet_export.optimize.report import Row
from alexnet_export.runtimes.table import backend_named

TIE_RULE = "the fewest bytes, then the fewest extras needed to run the file, then the id"


@dataclass(frozen=True)
class Choice:
    row: Row | None  # None: no file may be chosen
    tie: tuple[str, ...]  # ids of the eligible files whose p50 interval overlaps the fastest's, the fastest first
    decided_by: str  # one sentence: the rule that chose


def eligible(row: Row) -> bool:
    return row.within_budget and row.p50_ms is not None and row.gate == "passed"


def extras_to_run(row: Row) -> int:
    """How many install extras beyond the light install its runtime needs (ONNX Runtime's files: none)."""
    return 0 if backend_named(row.format).extra is None else 1


def with_pareto(rows: list[Row]) -> list[Row]:
    """Each measured row with `pareto` set: True where no other measured row is at least as good on
    p50, top-1 drop and bytes and better on one; rows not timed keep None."""
    measured = [row for row in rows if row.p50_ms is not None]
    return [replace(row, pareto=not any(_dominates(other, row) for other in measured))
            if row.p50_ms is not None else row for row in rows]


def _dominates(one: Row, other: Row) -> bool:
    mine, theirs = _figures(one), _figures(other)
    return all(a <= b for a, b in zip(mine, theirs)) and mine != theirs


def _figures(row: Row) -> tuple[float, float, int]:
    return row.p50_ms, row.top1_drop, row.bytes


def tie_of(rows: list[Row]) -> list[Row]:
    """The eligible rows whose p50 interval overlaps the fastest eligible row's, fastest first."""
    candidates = sorted((row for row in rows if eligible(row)), key=lambda row: (row.p50_ms, row.id))
    if not candidates:
        return []
    low, high = _interval(candidates[0])
    return [row for row in candidates if _interval(row)[0] <= high and _interval(row)[1] >= low]


def _interval(row: Row) -> tuple[float, float]:
    return tuple(row.p50_ci_ms) if row.p50_ci_ms is not None else (row.p50_ms, row.p50_ms)


def choose(rows: list[Row], objective: str) -> Choice:
    """The file `objective` chooses among `rows` (Pareto flags set), with the tie and the rule."""
    tie = tie_of(rows)
    ids = tuple(row.id for row in tie)
    if not tie:
        return Choice(None, ids, "nothing was chosen: no timed file is within the budget and passed bench's gate")
    if objective == "size":
        row = min((r for r in rows if eligible(r)), key=lambda r: (r.bytes, r.p50_ms, r.id))
        return Choice(row, ids, f"objective size: {row.id} has the fewest bytes within the budget"
                                " (then the lowest p50, then the id)")
    if len(tie) == 1:
        return Choice(tie[0], ids, f"objective latency: {tie[0].id} has the lowest p50 within the budget and no other"
                                   " file's 95% interval of p50 overlaps its own")
    # Only the tie's Pareto members: the fewest bytes alone could pick a file another one beats on
    # every figure. None of them is on the front only where a file that may not be chosen (failed
    # its gate, or lost answers at budget 0) beats them all; then the whole tie.
    front = [row for row in tie if row.pareto] or tie
    row = min(front, key=lambda r: (r.bytes, extras_to_run(r), r.id))
    among = "the tied files on the Pareto front" if front is not tie else "all of them (none is on the Pareto front)"
    return Choice(row, ids, f"objective latency: {len(tie)} files' 95% intervals of p50 overlap the fastest's, a tie"
                            f" broken by {TIE_RULE} among {among}: {row.id}")
