"""What `optimize` checks before any work (each argument, the calibration folder) and the settings
a run and each candidate are keyed by (optimize/progress.py reuses what was made with the same)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

from alexnet_export.bench.accuracy import ImageSet
from alexnet_export.errors import ArgumentError
from alexnet_export.exporter.pipeline import CalibrationOptions

LATENCY, THROUGHPUT, SIZE = "latency", "throughput", "size"
OBJECTIVES = (LATENCY, THROUGHPUT, SIZE)
THROUGHPUT_BATCHES = (1, 8, 32)  # --objective throughput's batches when none are given
MIN_LABELLED_IMAGES = 20


def check_arguments(weights, images: Path, output: Path, budget, objective: str, batch_size: int,
                    batch_sizes: Sequence[int] | None, max_latency_ms: float | None, threads: int,
                    rounds: int | None) -> dict:
    """Every argument, before any work: a one-line ArgumentError naming the one at fault. Returns
    the run's settings, `batches` being the batch sizes every file is timed at."""
    if objective not in OBJECTIVES:
        raise ArgumentError(f"objective {objective!r} is unknown; expected one of {', '.join(OBJECTIVES)}",
                            argument="objective")
    number = not isinstance(budget, bool) and isinstance(budget, (int, float))
    if not number or not 0 <= budget <= 100:
        raise ArgumentError(f"max_top1_drop {f'{budget:g}' if number else repr(budget)} is outside 0..100; expected"
                            " percentage points of top-1 accuracy the chosen file may lose", argument="max_top1_drop")
    for name, value in (("batch_size", batch_size), ("threads", threads), ("bench_rounds", 1 if rounds is None else rounds),
                        *(("batch_sizes", size) for size in batch_sizes or ())):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ArgumentError(f"{name} {value!r} is invalid; expected a positive integer", argument=name)
    batches = _batches(objective, batch_size, batch_sizes, max_latency_ms)
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
            "batch_size": batches[0], "batches": list(batches), "max_latency_ms": max_latency_ms, "threads": threads}


def _batches(objective: str, batch_size: int, batch_sizes: Sequence[int] | None,
             max_latency_ms: float | None) -> tuple[int, ...]:
    """The batches to time: batch_size alone, or (throughput) batch_sizes in increasing order."""
    if objective != THROUGHPUT:
        for name, value in (("batch_sizes", batch_sizes), ("max_latency_ms", max_latency_ms)):
            if value is not None:
                raise ArgumentError(f"{name} applies to objective throughput; objective {objective} times one"
                                    " batch (batch_size)", argument=name)
        return (batch_size,)
    if batch_size != 1:
        raise ArgumentError("objective throughput times batch_sizes, not batch_size; give the batches as"
                            " batch_sizes", argument="batch_size")
    if max_latency_ms is not None and (isinstance(max_latency_ms, bool) or not isinstance(max_latency_ms, (int, float))
                                       or not max_latency_ms > 0):
        raise ArgumentError(f"max_latency_ms {max_latency_ms!r} is invalid; expected a positive number of"
                            " milliseconds", argument="max_latency_ms")
    return tuple(sorted(set(batch_sizes or THROUGHPUT_BATCHES)))


def check_calibration(calibration: CalibrationOptions) -> None:
    """The calibration folder can work (the export commands' own check, exporter/calibration/checks.py);
    no folder: the INT8 candidates are skipped."""
    from alexnet_export.exporter.calibration import check_calibration_images

    if calibration.folder is not None:
        check_calibration_images(calibration.folder, calibration.count)


def run_settings(settings: dict) -> dict:
    """What every candidate and the reference depend on (not the budget, objective, batches or threads)."""
    return {key: settings[key] for key in ("images", "images_listing", "calibration", "labels", "num_classes",
                                           "checkpoint_sha256")}


def listing(labelled: ImageSet, folder: Path) -> str:
    """A digest of the labelled images' names, sizes and times: another set of images is another run."""
    entries = (f"{path.relative_to(folder)}:{path.stat().st_size}:{path.stat().st_mtime_ns}" for path in labelled.paths)
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def own_settings(candidate, settings: dict) -> dict:
    """What one candidate (optimize/candidates.py) depends on beyond the run's settings."""
    from alexnet_export.optimize.candidates import KEEP_FLOAT

    if candidate.id == KEEP_FLOAT:
        return {"max_top1_drop": settings["max_top1_drop"]}  # its search stops at the first set within it
    sizes = {"batch": settings["batch_size"], "max_batch": max(*settings["batches"], 32)}  # as candidates.Work's
    return {option.optimize_value: sizes[option.optimize_value] for option in candidate.declared.options} \
        if candidate.declared else {}


def public(settings: dict) -> dict:
    """The settings report.json shows (the labels are the model's, long, and in its metadata)."""
    return {key: value for key, value in settings.items() if key != "labels"}
