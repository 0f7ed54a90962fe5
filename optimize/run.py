"""`alexnet-export optimize` as a library call: make every file the installed extras can make,
measure each on the user's labelled images and in one interleaved bench, keep the fastest (or
smallest, or the most images/s within a latency budget) within a top-1 budget."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from alexnet_export.bench.accuracy import image_set
from alexnet_export.errors import AlexNetExportError, InputError
from alexnet_export.events import Listener, Note, Step, ignore
from alexnet_export.exporter.pipeline import CalibrationOptions, ModelSource, load_model
from alexnet_export.exporter.source import torch_reference
from alexnet_export.hashing import file_sha256
from alexnet_export.runtimes.preprocess import require_images
from alexnet_export.optimize import candidates as table
from alexnet_export.optimize.checks import (
    MIN_LABELLED_IMAGES,
    check_arguments,
    check_calibration,
    listing,
    own_settings,
    public,
    run_settings,
)
from alexnet_export.optimize.choice import choose, why_not, with_pareto
from alexnet_export.optimize.making import make, needs_keep_float, progress_line, refusal
from alexnet_export.optimize.measure import time_files, top1_of_file, top1_of_model
from alexnet_export.optimize.progress import FAILED, MADE, NOT_MADE, Progress, settings_key
from alexnet_export.optimize.report import BatchTiming, Report, Row, write_report
from alexnet_export.runtimes.table import ONNX, backend_for
from alexnet_export.runtimes.verification.timing import Settle


@dataclass(frozen=True)
class OptimizeResult:
    report: Report
    chosen: Path | None
    written: tuple[Path, ...]  # report.json, report.md, report.png


def optimize(
    weights: str | Path | None,
    images: str | Path,
    output: str | Path,
    *,
    max_top1_drop: float,
    calibration: CalibrationOptions = CalibrationOptions(),
    objective: str = "latency",
    batch_size: int = 1,
    batch_sizes: Sequence[int] | None = None,
    max_latency_ms: float | None = None,
    threads: int = 2,
    num_classes: int | None = None,
    seed: int = 0,
    labels: str | Path | None = None,
    candidates: Sequence[str] | None = None,
    keep_all: bool = False,
    bench_rounds: int | None = None,
    on_event: Listener = ignore,
    on_detail: Listener = ignore,
) -> OptimizeResult:
    """Write into the folder `output` the fastest file (objective "size": the smallest; "throughput":
    the (file, batch) with the most images/s whose p95 keeps `max_latency_ms`, at each of
    `batch_sizes`) whose top-1 on the labelled images under `images` (`images`/<label>/<image>,
    labels being the model's) is at most `max_top1_drop` percentage points below the eager FP32
    model's; with 0, one that keeps every answer the FP32 model got right. Also report.json,
    report.md and report.png.

    weights: the checkpoint (None: seeded random weights). calibration: the INT8 files' images
    (no folder: the INT8 candidates are skipped). candidates: formats ("onnx", "openvino", ...)
    or ids ("onnx:int8-cpu") to try (None: all; the FP32 .onnx always). The others are deleted
    unless keep_all. A rerun with the same checkpoint and settings reuses the candidates already
    measured (optimize/progress.py). Everything is checked before anything is written.
    bench_rounds: None times until every file's median is stable (runtimes/verification/timing.py's
    rule); a number, exactly that many rounds. Files whose intervals overlap the best's are a tie,
    broken by a stated rule (optimize/choice.py); report.json says which and why.
    on_event: optimize's own progress (a line per candidate, the timing); on_detail: each export's
    and the bench's own steps and parity tables (report.md keeps the tables either way).
    """
    output, images = Path(output), Path(images)
    settings = check_arguments(weights, images, output, max_top1_drop, objective, batch_size, batch_sizes,
                               max_latency_ms, threads, bench_rounds)
    check_calibration(calibration)
    wanted = table.select(candidates)
    require_images(images, argument="images")  # an empty folder is known before the checkpoint is read
    source = ModelSource(Path(weights) if weights is not None else None, num_classes, seed, labels)
    loading: list = []  # shown once the images are known to fit the model, so a mistake is one line
    loaded = load_model(source, on_event=loading.append)
    try:
        labelled = image_set(images, loaded.metadata.labels)
    except InputError as exc:
        if exc.argument != "class_names":
            raise
        raise InputError(str(exc), argument="labels") from None  # the model's labels are --labels's
    for event in loading:
        on_event(event)
    if len(labelled.paths) < MIN_LABELLED_IMAGES:
        raise InputError(f"found {len(labelled.paths)} labelled images under {images}; expected at least"
                         f" {MIN_LABELLED_IMAGES}, so that a top-1 budget means something", argument="images")
    settings.update(calibration=[str(calibration.folder.resolve()) if calibration.folder else None,
                                 calibration.count, calibration.method], candidates=[c.id for c in wanted],
                    labels=list(loaded.metadata.labels), num_classes=loaded.metadata.num_classes,
                    checkpoint_sha256=file_sha256(weights) if weights is not None else f"random seed {seed}",
                    images_listing=listing(labelled, images))
    output.mkdir(exist_ok=True)  # the first write: every check above has passed
    progress = Progress.open(output, settings_key(run_settings(settings)))
    if progress.reference is None:
        on_event(Step(f"top-1 of the FP32 reference (eager PyTorch) on {len(labelled.paths)} images"))
        progress.reference = top1_of_model(torch_reference(loaded.model), labelled, on_event)
        progress.save()
    reference = progress.reference
    batches = settings["batches"]
    work = table.Work(output, source, calibration, max(*batches, 32), threads, batches[0],
                      accept=lambda path: refusal(top1_of_file(path, labelled, backend=ONNX), reference, max_top1_drop),
                      on_event=on_detail)
    not_made = [{"id": kind, "kind": NOT_MADE, "reason": why} for kind, why in table.not_timed(candidates).items()]
    plan = []
    for candidate in wanted:
        reason = table.skip_reason(candidate, calibration.folder is not None, batches[0])
        if reason is None:
            plan.append(candidate)
        else:
            not_made.append({"id": candidate.id, "kind": NOT_MADE, "reason": reason})
    done: dict[str, tuple] = {}
    for number, candidate in enumerate(plan, 1):
        if candidate.id == table.KEEP_FLOAT and not needs_keep_float(done, reference, max_top1_drop):
            on_event(Note(f"[{number}/{len(plan)}] {candidate.id}: not needed, the INT8 CPU file is within the budget"))
            continue
        key = settings_key({"run": progress.key, **own_settings(candidate, settings)})
        record, reused = progress.reusable(candidate.id, key), True
        if record is None:
            on_event(Step(f"[{number}/{len(plan)}] making {candidate.file} ({candidate.id})", transient=True))
            (record, final), reused = make(candidate, work, labelled, key, on_event), False
            if final:  # a made file, or a failed gate (the same settings fail it again); not other errors
                progress.save(record)
        done[candidate.id] = (record, reused)
        on_event(Note(progress_line(number, len(plan), record, reference, max_top1_drop, reused),
                      warning=record.status == FAILED))
        if candidate is table.FIRST and record.status == FAILED:
            raise AlexNetExportError(f"the FP32 .onnx, which the other files are made from, failed: {record.reason}")
    not_made += [{"id": cid, "kind": record.failure or NOT_MADE, "reason": record.reason}
                 for cid, (record, _) in done.items() if record.status == FAILED]
    made = {cid: (record, reused) for cid, (record, reused) in done.items() if record.status == MADE}
    rule = f"{bench_rounds} rounds" if bench_rounds else Settle().describe()
    until = f"{bench_rounds} rounds" if bench_rounds else "until every median is stable"
    on_event(Step(f"timing {len(made)} files at batch {', '.join(map(str, batches))}, interleaved ({until})"))
    load_before = os.getloadavg()[0]
    bench = time_files([output / record.file for record, _ in made.values()], batches, threads, bench_rounds,
                       on_detail)
    machine = {**bench.machine, "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    rows = with_pareto(_rows(made, bench, reference, max_top1_drop, batches), objective, max_latency_ms)
    choice = choose(rows, objective, max_latency_ms)
    reasons = why_not(rows, choice, objective, max_top1_drop, max_latency_ms)
    not_chosen = not_made + [{"id": cid, "kind": kind, "reason": why} for cid, (kind, why) in reasons.items()]
    gates = [{"id": cid, **gate} for cid, (record, _) in made.items() for gate in record.gates]
    report = Report(public(settings), machine, reference.top1, reference.images, rows, not_chosen,
                    str(output / choice.row.file) if choice.row else None, bench.to_dict(), choice.tie,
                    choice.decided_by, _timing(bench, rule), choice.batch, gates)
    written = tuple(write_report(output, report))
    if not keep_all and choice.row is not None:  # with none chosen, every file stays for a look
        _remove_others(output, [c.file for c in table.CANDIDATES], choice.row)
    return OptimizeResult(report, output / choice.row.file if choice.row else None, written)


def _rows(made: dict, bench, reference, budget: float, batches: list[int]) -> list[Row]:
    """A row per made file: its top-1 against the reference, and its timing at every batch it ran
    (p50_ms and its interval: the first of them)."""
    timings: dict[str, list[BatchTiming]] = {}
    for result in bench.results:
        timings.setdefault(result.model, []).append(BatchTiming(result.batch, result.p50_ms, result.p95_ms,
                                                                result.images_per_s, result.p50_ci_ms))
    gates = {check.model: "passed" if check.passed else check.detail for check in bench.gates}
    rows = []
    for candidate_id, (record, reused) in made.items():
        candidate = next(c for c in table.CANDIDATES if c.id == candidate_id)
        accuracy, by_batch = record.accuracy, tuple(timings.get(record.file, ()))
        missing = [batch for batch in batches if batch not in {t.batch for t in by_batch}]
        rows.append(Row(candidate_id, record.file, candidate.format, candidate.precision, record.bytes, accuracy.top1,
                        accuracy.drop_points(reference), accuracy.lost(reference),
                        by_batch[0].p50_ms if by_batch else None, gates.get(record.file, "not checked"),
                        accuracy.within(reference, budget), record.float_layers, reused,
                        by_batch[0].p50_ci_ms if by_batch else None, by_batch=by_batch,
                        note=table.untimed_note(candidate, missing, batches[0])))
    return rows


def _timing(bench, rule: str) -> dict:
    """How the figures were timed: the rule, the rounds run and why they stopped (per batch where several)."""
    first = {}
    for row in bench.results:
        first.setdefault(row.batch, row)
    if not first:
        return {}
    rows = list(first.values())
    timing = {"rule": rule, "rounds": rows[0].rounds, "stopped": rows[0].stopped}
    if len(rows) > 1:
        timing["by_batch"] = [{"batch": row.batch, "rounds": row.rounds, "stopped": row.stopped} for row in rows]
    return timing


def _remove_others(folder: Path, files: list[str], chosen: Row | None) -> None:
    """Every candidate file but the chosen one goes, with its companions, an earlier run's too (a
    rerun remakes them: the progress record reuses only files that are still there)."""
    keep = set(backend_for(folder / chosen.file).files(folder / chosen.file)) if chosen else set()
    for name in files:
        for path in backend_for(folder / name).files(folder / name):
            if path not in keep and path.is_file():
                path.unlink()
