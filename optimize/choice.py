"""How `optimize` chooses with the noise in view: the Pareto front of the measured files, the tie
of the files whose interval overlaps the best one's, the stated rule that breaks it, and why each
other candidate was not chosen.

A file may be chosen when it ran, passed bench's gate and is within the top-1 budget.
- latency: the fastest such file's 95% interval of p50 is compared with the others': every one
  whose interval overlaps it is tied with it (the timing cannot tell them apart).
- throughput: every (file, batch) pair whose p95 keeps the latency budget competes on images per
  second (batch / p50, its interval from p50's); pairs whose intervals overlap the best's are tied.
  p95, not p50, keeps the budget: a server's budget is a promise about its slow requests, and at
  p50 half of them could break it.
- size: the fewest bytes (then the lowest p50, then the id); no timing decides it.
A tie goes to its Pareto members with the fewest bytes, then the fewest extras needed to run the
file, then the id (throughput: then the smaller batch); the same tie set gives the same file on
every run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from alexnet_export.optimize.report import BatchTiming, Row
from alexnet_export.runtimes.table import backend_named

TIE_RULE = "the fewest bytes, then the fewest extras needed to run the file, then the id"
# The kinds of reason report.json's not_chosen gives (besides the candidates' own "not made" and "failed its gate").
OUTSIDE_BUDGET, BENCH_GATE, OVER_LATENCY, BEATEN, TIE_LOST = (
    "outside the budget", "failed bench's gate", "over the latency budget", "beaten", "lost the tie-break")


@dataclass(frozen=True)
class Choice:
    row: Row | None  # None: no file may be chosen
    tie: tuple[str, ...]  # the tied ids (throughput: "id@batch"), the best first
    decided_by: str  # one sentence: the rule that chose
    batch: int | None = None  # the chosen row's batch (throughput: the batch it keeps the budget with)


def eligible(row: Row) -> bool:
    return row.within_budget and row.p50_ms is not None and row.gate == "passed"


def extras_to_run(row: Row) -> int:
    """How many install extras beyond the light install its runtime needs (ONNX Runtime's files: none)."""
    return 0 if backend_named(row.format).extra is None else 1


def admissible(row: Row, max_latency_ms: float | None) -> list[BatchTiming]:
    """The row's batches whose p95 keeps the latency budget (all of them without one)."""
    return [t for t in row.by_batch if max_latency_ms is None or t.p95_ms <= max_latency_ms]


def with_pareto(rows: list[Row], objective: str = "latency", max_latency_ms: float | None = None) -> list[Row]:
    """Each measured row with `pareto` set: True where no other measured row is at least as good on
    speed (p50; throughput: the most images/s within the latency budget), top-1 drop and bytes and
    better on one; rows not timed keep None."""
    measured = [row for row in rows if row.p50_ms is not None]
    figures = {row.id: _figures(row, objective, max_latency_ms) for row in measured}
    return [replace(row, pareto=not any(_dominates(figures[other.id], figures[row.id]) for other in measured))
            if row.p50_ms is not None else row for row in rows]


def _dominates(mine: tuple, theirs: tuple) -> bool:
    return all(a <= b for a, b in zip(mine, theirs)) and mine != theirs


def _figures(row: Row, objective: str, max_latency_ms: float | None) -> tuple[float, float, int]:
    if objective == "throughput":
        best = max((t.images_per_s for t in admissible(row, max_latency_ms)), default=0.0)
        return -best, row.top1_drop, row.bytes
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


def choose(rows: list[Row], objective: str, max_latency_ms: float | None = None) -> Choice:
    """The file `objective` chooses among `rows` (Pareto flags set), with the tie and the rule."""
    if objective == "throughput":
        return _by_throughput(rows, max_latency_ms)
    tie = tie_of(rows)
    ids = tuple(row.id for row in tie)
    if not tie:
        return Choice(None, ids, "nothing was chosen: no timed file is within the budget and passed bench's gate")
    if objective == "size":
        row = min((r for r in rows if eligible(r)), key=lambda r: (r.bytes, r.p50_ms, r.id))
        return Choice(row, ids, f"objective size: {row.id} has the fewest bytes within the budget"
                                " (then the lowest p50, then the id)", _batch(row))
    if len(tie) == 1:
        return Choice(tie[0], ids, f"objective latency: {tie[0].id} has the lowest p50 within the budget and no other"
                                   " file's 95% interval of p50 overlaps its own", _batch(tie[0]))
    # Only the tie's Pareto members: the fewest bytes alone could pick a file another one beats on
    # every figure. None of them is on the front only where a file that may not be chosen (failed
    # its gate, or lost answers at budget 0) beats them all; then the whole tie.
    front = [row for row in tie if row.pareto] or tie
    row = min(front, key=lambda r: (r.bytes, extras_to_run(r), r.id))
    among = "the tied files on the Pareto front" if front is not tie else "all of them (none is on the Pareto front)"
    return Choice(row, ids, f"objective latency: {len(tie)} files' 95% intervals of p50 overlap the fastest's, a tie"
                            f" broken by {TIE_RULE} among {among}: {row.id}", _batch(row))


def _batch(row: Row) -> int | None:
    return row.by_batch[0].batch if row.by_batch else None


def _rate_interval(timing: BatchTiming) -> tuple[float, float]:
    low, high = timing.p50_ci_ms or (timing.p50_ms, timing.p50_ms)
    return timing.batch * 1e3 / high, timing.batch * 1e3 / low


def _by_throughput(rows: list[Row], max_latency_ms: float | None) -> Choice:
    budget = f"p95 within {max_latency_ms:g} ms" if max_latency_ms is not None else "no latency budget"
    pairs = sorted(((row, timing) for row in rows if eligible(row) for timing in admissible(row, max_latency_ms)),
                   key=lambda pair: (-pair[1].images_per_s, pair[0].id, pair[1].batch))
    if not pairs:
        return Choice(None, (), f"nothing was chosen: no (file, batch) within the top-1 budget, passing bench's gate,"
                                f" with {budget}")
    low, high = _rate_interval(pairs[0][1])
    tie = [(row, t) for row, t in pairs if _rate_interval(t)[0] <= high and _rate_interval(t)[1] >= low]
    ids = tuple(f"{row.id}@{t.batch}" for row, t in tie)
    if len(tie) == 1:
        row, timing = tie[0]
        return Choice(row, ids, f"objective throughput ({budget}): {row.id} at batch {timing.batch} has the most"
                                " images/s and no other pair's 95% interval overlaps its own", timing.batch)
    front = [(row, t) for row, t in tie if row.pareto] or tie
    row, timing = min(front, key=lambda pair: (pair[0].bytes, extras_to_run(pair[0]), pair[0].id, pair[1].batch))
    return Choice(row, ids, f"objective throughput ({budget}): {len(tie)} (file, batch) pairs' 95% intervals of"
                            f" images/s overlap the best's, a tie broken by {TIE_RULE}, then the smaller batch, among"
                            f" the tied files on the Pareto front: {row.id} at batch {timing.batch}", timing.batch)


def why_not(rows: list[Row], choice: Choice, objective: str, budget: float,
            max_latency_ms: float | None = None) -> dict[str, tuple[str, str]]:
    """Each measured file not chosen: (kind, one line why)."""
    reasons = {}
    tied = {entry.split("@")[0] for entry in choice.tie}
    for row in rows:
        if choice.row is not None and row.id == choice.row.id:
            continue
        if not row.within_budget:
            reasons[row.id] = OUTSIDE_BUDGET, (f"top-1 {row.top1_drop:+.2f} pp against FP32, {row.answers_lost} answers"
                                               f" lost; the budget is {budget:g} pp")
        elif row.p50_ms is None:
            reasons[row.id] = BENCH_GATE, "not timed: it cannot run the timed batch"
        elif row.gate != "passed":
            reasons[row.id] = BENCH_GATE, row.gate
        elif objective == "throughput" and not admissible(row, max_latency_ms):
            slowest = ", ".join(f"batch {t.batch}: {t.p95_ms:.2f}" for t in row.by_batch)
            reasons[row.id] = OVER_LATENCY, f"p95 above {max_latency_ms:g} ms at every batch ({slowest} ms)"
        elif row.id in tied:
            reasons[row.id] = TIE_LOST, choice.decided_by
        else:
            reasons[row.id] = BEATEN, _beaten(row, choice, objective)
    return reasons


def _beaten(row: Row, choice: Choice, objective: str) -> str:
    chosen = choice.row
    if objective == "size":
        return f"{row.bytes / 1e6:.1f} MB against the chosen file's {chosen.bytes / 1e6:.1f} MB"
    if objective == "throughput":
        return f"fewer images/s than {chosen.id} at batch {choice.batch}, outside the tie"
    return f"p50 {row.p50_ms:.2f} ms, outside the tie with {chosen.id} ({chosen.p50_ms:.2f} ms)"
