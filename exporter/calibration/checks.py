"""The calibration images, checked before any work: what can be known without decoding them.

Every export that calibrates, or verifies on the folder's images, runs this through
`check_arguments` (exporter/arguments.py) at its start, so a folder that cannot work fails in
milliseconds, before the FP32 export, in the CLI and the Python API alike: the folder is listed and
image headers are read, nothing is decoded. A damaged image body is found when the images are read
(ranges.py `load_calibration_set`), which skips it, or fails when too few are left.
"""

from __future__ import annotations

from pathlib import Path

from alexnet_export.errors import ArgumentError
from alexnet_export.exporter.calibration.ranges import MIN_IMAGES, CalibrationError, too_few_files, wanted_paths
from alexnet_export.runtimes.preprocess import find_images, image_problem

ARGUMENT = "calibration"  # the pipeline's argument; the CLI names --calib-dir for it


class CalibrationArgumentError(CalibrationError, ArgumentError):
    """Calibration images that cannot work, found before any work: a mistake in the arguments."""


def check_calibration_images(folder: str | Path, count: int) -> list[Path]:
    """The folder's image files, once it is known that `count` is at least MIN_IMAGES, the folder exists,
    holds MIN_IMAGES image files or more and at least MIN_IMAGES of those that a set of `count` reads
    have a header Pillow reads in a format the toolkit takes; else a CalibrationArgumentError (an
    ArgumentError and a CalibrationError) that says how many were found and how many are needed."""
    if count < MIN_IMAGES:
        raise CalibrationArgumentError(f"asked to calibrate on {count} images; calibration needs at least {MIN_IMAGES}",
                                       argument=ARGUMENT)
    paths = find_images(folder, "calibration folder", argument=ARGUMENT)
    if len(paths) < MIN_IMAGES:
        raise CalibrationArgumentError(too_few_files(len(paths), folder), argument=ARGUMENT)
    wanted = wanted_paths(paths, count)
    readable, problems = 0, []
    for path in wanted:  # usually the first MIN_IMAGES headers settle it
        problem = image_problem(path)
        if problem is not None:
            problems.append(problem)
            continue
        readable += 1
        if readable == MIN_IMAGES:
            return paths
    raise CalibrationArgumentError(f"only {readable} of {len(wanted)} images under {folder} can be read; calibration"
                                   f" needs at least {MIN_IMAGES} (first problem: {problems[0]})", argument=ARGUMENT)
