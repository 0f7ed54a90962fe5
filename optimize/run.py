"""`alexnet-export optimize` as a library call: make every file the installed extras can make,
measure each on the user's labelled images and in one interleaved bench, keep the fastest (or
smallest) within a top-1 budget."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from alexnet_export.bench.accuracy import ImageSet, image_set
from alexnet_export.errors import AlexNetExportError, ArgumentError, InputError, ParityError
from alexnet_export.events import Listener, Note, Step, ignore
from alexnet_export.exporter.onnx.auto_keep import MAX_KEPT, Int8GateError
from alexnet_export.exporter.pipeline import CalibrationOptions, ModelSource, load_model
from alexnet_export.exporter.source import torch_reference
from alexnet_export.hashing import file_sha256
from alexnet_export.optimize import candidates as table
from alexnet_export.optimize.choice import choose, with_pareto
from alexnet_export.optimize.measure import Accuracy, file_bytes, time_files, top1_of_file, top1_of_model
from alexnet_export.optimize.progress import FAILED, MADE, Progress, Record, settings_key
from alexnet_export.optimize.report import Report, Row, write_report
from alexnet_export.runtimes.table import ONNX, backend_for
from alexnet_export.runtimes.verification.timing import Settle

OBJECTIVES = ("latency", "size")
MIN_LABELLED_IMAGES = 20


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
    threads: int = 2,
    num_classes: int | None = None,
    seed: int = 0,
    labels: str | Path | None = None,
    candidates: Sequence[str] | None = None,
    keep_all: bool = False,
    bench_rounds: int | None = None,
    on_event: Listener = ignore,
) -> OptimizeResult:
    """Write into the folder `output` the fastest file (objective "size": the smallest) whose top-1
    on the labelled images under `images` (`images`/<label>/<image>, labels being the model's) is
    at most `max_top1_drop` percentage points below the eager FP32 model's; with 0, one that keeps
    every answer the FP32 model got right. Also report.json, report.md and report.png.

    weights: the checkpoint (None: seeded random weights). calibration: the INT8 files' images
    (no folder: the INT8 candidates are skipped). candidates: formats ("onnx", "openvino", ...)
    or ids ("onnx:int8-cpu") to try (None: all; the FP32 .onnx always). The others are deleted
    unless keep_all. A rerun with the same checkpoint and settings reuses the candidates already
    measured (optimize/progress.py). Everything is checked before anything is written.
    bench_rounds: None times until every file's median is stable (runtimes/verification/timing.py's
    rule); a number, exactly that many rounds. Files whose p50 intervals overlap the fastest's are
    a tie, broken by a stated rule (optimize/choice.py); report.json says which and why.
    """
    output, images = Path(output), Path(images)
    settings = _check(weights, images, output, max_top1_drop, objective, batch_size, threads, bench_rounds)
    _check_calibration(calibration)
    wanted = table.select(candidates)
    source = ModelSource(Path(weights) if weights is not None else None, num_classes, seed, labels)
    loaded = load_model(source, on_event=on_event)
    labelled = image_set(images, loaded.metadata.labels)
    if len(labelled.paths) < MIN_LABELLED_IMAGES:
        raise InputError(f"found {len(labelled.paths)} labelled images under {images}; expected at least"
                         f" {MIN_LABELLED_IMAGES}, so that a top-1 budget means something", argument="images")
    settings.update(calibration=[str(calibration.folder.resolve()) if calibration.folder else None,
                                 calibration.count, calibration.method], candidates=[c.id for c in wanted],
                    labels=list(loaded.metadata.labels), num_classes=loaded.metadata.num_classes,
                    checkpoint_sha256=file_sha256(weights) if weights is not None else f"random seed {seed}",
                    images_listing=_listing(labelled, images))
    output.mkdir(exist_ok=True)  # the first write: every check above has passed
    progress = Progress.open(output, settings_key(_run_settings(settings)))
    if progress.reference is None:
        on_event(Step(f"top-1 of the FP32 reference (eager PyTorch) on {len(labelled.paths)} images"))
        progress.reference = top1_of_model(torch_reference(loaded.model), labelled, on_event)
        progress.save()
    reference = progress.reference
    skipped = table.not_timed(candidates)
    work = table.Work(output, source, calibration, max(batch_size, 32), threads, batch_size,
                      accept=lambda path: _refusal(top1_of_file(path, labelled, backend=ONNX), reference,
                                                   max_top1_drop),
                      on_event=on_event)
    done: dict[str, tuple[Record, bool]] = {}
    runnable = [(c, table.skip_reason(c, calibration.folder is not None, batch_size)) for c in wanted]
    for candidate, reason in runnable:
        if reason is not None:
            skipped[candidate.id] = reason
    plan = [c for c, reason in runnable if reason is None]
    for number, candidate in enumerate(plan, 1):
        if candidate.id == table.KEEP_FLOAT and not _needs_keep_float(done, reference, max_top1_drop):
            on_event(Note(f"[{number}/{len(plan)}] {candidate.id}: not needed, the INT8 CPU file is within the budget"))
            continue
        key = settings_key({"run": progress.key, **_own_settings(candidate, settings)})
        record, reused = progress.reusable(candidate.id, key), True
        if record is None:
            on_event(Step(f"[{number}/{len(plan)}] making {candidate.file} ({candidate.id})"))
            (record, final), reused = _make(candidate, work, labelled, key, on_event), False
            if final:  # a made file, or a failed gate (the same settings fail it again); not other errors
                progress.save(record)
        done[candidate.id] = (record, reused)
        on_event(Note(_progress_line(number, len(plan), record, reference, max_top1_drop, reused),
                      warning=record.status == FAILED))
        if candidate is table.FIRST and record.status == FAILED:
            raise AlexNetExportError(f"the FP32 .onnx, which the other files are made from, failed: {record.reason}")
    for candidate_id, (record, _) in done.items():
        if record.status == FAILED:
            skipped[candidate_id] = record.reason
    made = {cid: (record, reused) for cid, (record, reused) in done.items() if record.status == MADE}
    rule = f"{bench_rounds} rounds" if bench_rounds else Settle().describe()
    until = f"{bench_rounds} rounds" if bench_rounds else "until every median is stable"
    on_event(Step(f"timing {len(made)} files at batch {batch_size}, interleaved ({until})"))
    load_before = os.getloadavg()[0]
    bench = time_files([output / record.file for record, _ in made.values()], batch_size, threads, bench_rounds,
                       on_event)
    machine = {**bench.machine, "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    rows = with_pareto(_rows(made, bench, reference, max_top1_drop))
    choice = choose(rows, objective)
    chosen = choice.row
    report = Report({**_public(settings)}, machine, reference.top1, reference.images, rows, skipped,
                    str(output / chosen.file) if chosen else None, bench.to_dict(), choice.tie, choice.decided_by,
                    _timing(bench, rule))
    written = tuple(write_report(output, report))
    if not keep_all and chosen is not None:  # with none chosen, every file stays for a look
        _remove_others(output, [c.file for c in table.CANDIDATES], chosen)
    return OptimizeResult(report, output / chosen.file if chosen else None, written)


def _check(weights, images: Path, output: Path, budget, objective, batch_size, threads, rounds) -> dict:
    """Every argument, before any work: a one-line ArgumentError naming it."""
    if objective not in OBJECTIVES:
        raise ArgumentError(f"objective {objective!r} is unknown; expected one of {', '.join(OBJECTIVES)}",
                            argument="objective")
    number = not isinstance(budget, bool) and isinstance(budget, (int, float))
    if not number or not 0 <= budget <= 100:
        raise ArgumentError(f"max_top1_drop {f'{budget:g}' if number else repr(budget)} is outside 0..100; expected"
                            " percentage points of top-1 accuracy the chosen file may lose", argument="max_top1_drop")
    for name, value in (("batch_size", batch_size), ("threads", threads), ("bench_rounds", 1 if rounds is None else rounds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ArgumentError(f"{name} {value!r} is invalid; expected a positive integer", argument=name)
    if weights is not None and not Path(weights).is_file():
        raise ArgumentError(f"checkpoint {weights} does not exist or is not a file", argument="weights")
    if not images.is_dir():
        raise ArgumentError(f"images folder {images} does not exist", argument="images")
    if output.exists() and not output.is_dir():
        raise ArgumentError(f"output {output} is a file; expected a folder for the chosen file and the report",
                            argument="output")
    if not output.parent.is_dir():
        raise ArgumentError(f"output folder's parent {output.parent} does not exist; create it first",
                            argument="output")
    return {"images": str(images.resolve()), "max_top1_drop": float(budget), "objective": objective,
            "batch_size": batch_size, "threads": threads}


def _check_calibration(calibration: CalibrationOptions) -> None:
    from alexnet_export.exporter.calibration.ranges import MIN_IMAGES
    from alexnet_export.runtimes.preprocess import find_images

    if calibration.folder is None:
        return
    if not Path(calibration.folder).is_dir():
        raise ArgumentError(f"calibration folder {calibration.folder} does not exist", argument="calibration")
    if calibration.count < MIN_IMAGES:
        raise ArgumentError(f"calibration count {calibration.count} is below {MIN_IMAGES}; calibration needs at least"
                            f" {MIN_IMAGES} images", argument="calib_count")
    found = len(find_images(calibration.folder, "calibration folder"))
    if found < MIN_IMAGES:
        raise InputError(f"found {found} image files under {calibration.folder}; calibration needs at least"
                         f" {MIN_IMAGES}", argument="calibration")


def _run_settings(settings: dict) -> dict:
    """What every candidate and the reference depend on (not the budget, objective, batch or threads)."""
    return {key: settings[key] for key in ("images", "images_listing", "calibration", "labels", "num_classes",
                                           "checkpoint_sha256")}


def _listing(labelled: ImageSet, folder: Path) -> str:
    """A digest of the labelled images' names, sizes and times: another set of images is another run."""
    import hashlib

    entries = (f"{path.relative_to(folder)}:{path.stat().st_size}:{path.stat().st_mtime_ns}" for path in labelled.paths)
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def _own_settings(candidate: table.Candidate, settings: dict) -> dict:
    """What one candidate depends on beyond the run's settings."""
    if candidate.id == table.KEEP_FLOAT:
        return {"max_top1_drop": settings["max_top1_drop"]}  # its search stops at the first set within it
    if candidate.format == "executorch":
        return {"max_batch": max(settings["batch_size"], 32)}
    if candidate.format == "litert":
        return {"batch": settings["batch_size"]}
    return {}


def _public(settings: dict) -> dict:
    return {key: value for key, value in settings.items() if key != "labels"}


def _make(candidate: table.Candidate, work: table.Work, labelled: ImageSet, key: str,
          on_event: Listener) -> tuple[Record, bool]:
    """The candidate made and measured, or why not; and whether a rerun may reuse that."""
    path = work.folder / candidate.file
    try:
        float_layers = tuple(candidate.make(work, path))
    except Int8GateError as exc:
        reason = (f"no set of up to {MAX_KEPT} layers in float passes the int8 gate within the budget"
                  f" ({exc.failure})" if candidate.id == table.KEEP_FLOAT else exc.failure)
        return Record(candidate.id, FAILED, key, reason=reason), True
    except ParityError as exc:
        return Record(candidate.id, FAILED, key, reason=str(exc)), True
    except AlexNetExportError as exc:
        return Record(candidate.id, FAILED, key, reason=str(exc)), False
    accuracy = top1_of_file(path, labelled, on_event)
    return Record(candidate.id, MADE, key, candidate.file, file_sha256(path), file_bytes(path), accuracy,
                  float_layers), True


def _refusal(accuracy: Accuracy, reference: Accuracy, budget: float) -> str | None:
    if accuracy.within(reference, budget):
        return None
    return (f"top-1 {accuracy.top1:.2%} is {accuracy.drop_points(reference):.2f} pp below the FP32 reference's"
            f" {reference.top1:.2%} ({accuracy.lost(reference)} answers lost); the budget is {budget:g} pp")


def _needs_keep_float(done: dict, reference: Accuracy, budget: float) -> bool:
    """The keep-float file is made when the plain INT8 CPU file failed its gate or is outside the budget."""
    entry = done.get("onnx:int8-cpu")
    if entry is None:
        return False
    record = entry[0]
    return record.status == FAILED or not record.accuracy.within(reference, budget)


def _progress_line(number: int, total: int, record: Record, reference: Accuracy, budget: float, reused: bool) -> str:
    head = f"[{number}/{total}] {record.id}"
    if record.status == FAILED:
        return f"{head}: not made: {record.reason}"
    accuracy = record.accuracy
    kept = f", {','.join(record.float_layers)} in float" if record.float_layers else ""
    return (f"{head}: {record.file}{kept}, {record.bytes / 1e6:.1f} MB, top-1 {accuracy.top1:.2%}"
            f" ({accuracy.drop_points(reference):+.2f} pp, {accuracy.lost(reference)} lost),"
            f" {'within' if accuracy.within(reference, budget) else 'outside'} the budget"
            f"{' (reused from an earlier run)' if reused else ''}")


def _rows(made: dict, bench, reference: Accuracy, budget: float) -> list[Row]:
    p50 = {row.model: row.p50_ms for row in bench.results}
    intervals = {row.model: row.p50_ci_ms for row in bench.results}
    gates = {check.model: "passed" if check.passed else check.detail for check in bench.gates}
    rows = []
    for candidate_id, (record, reused) in made.items():
        candidate = next(c for c in table.CANDIDATES if c.id == candidate_id)
        accuracy = record.accuracy
        timed = p50.get(record.file)
        gate = gates.get(record.file, "not checked")
        rows.append(Row(candidate_id, record.file, candidate.format, candidate.precision, record.bytes, accuracy.top1,
                        accuracy.drop_points(reference), accuracy.lost(reference), timed, gate,
                        accuracy.within(reference, budget), record.float_layers, reused,
                        intervals.get(record.file)))
    return rows


def _timing(bench, rule: str) -> dict:
    """How the p50 figures were timed: the rule, the rounds run and why they stopped."""
    row = next(iter(bench.results), None)
    return {"rule": rule, "rounds": row.rounds, "stopped": row.stopped} if row else {}


def _remove_others(folder: Path, files: list[str], chosen: Row | None) -> None:
    """Every candidate file but the chosen one goes, with its companions, an earlier run's too (a
    rerun remakes them: the progress record reuses only files that are still there)."""
    keep = set(backend_for(folder / chosen.file).files(folder / chosen.file)) if chosen else set()
    for name in files:
        for path in backend_for(folder / name).files(folder / name):
            if path not in keep and path.is_file():
                path.unlink()
