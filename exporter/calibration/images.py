"""Which images a new precision file is calibrated and verified on: a folder's images (calibration
and held-out ones), or photo-like images made here when there is no folder. Every backend that
calibrates (the ONNX INT8 files, the .pte, the .tflite) takes the same images from the same folder.

A process reads a folder's images once: the set read last is kept and given again while the folder's
listing (names, sizes, modification times), the count and the preprocessing are the same, so
`optimize`, which makes several calibrated files from one folder, decodes the images once."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alexnet_export.events import Listener, Note, counter, ignore
from alexnet_export.exporter.calibration.ranges import DEFAULT_METHOD, RECOMMENDED_IMAGES, CalibrationSet, load_calibration_set
from alexnet_export.models.spec import Preprocessing
from alexnet_export.runtimes.preprocess import find_images, preprocess_batch
from alexnet_export.runtimes.verification.samples import synthetic_images

MIN_HOLDOUT = 16  # the fewest held-out images verified on instead of the calibration images
SYNTHETIC_VERIFY_IMAGES = 32


@dataclass(frozen=True)
class CalibrationOptions:
    folder: Path | None = None
    count: int = RECOMMENDED_IMAGES
    method: str = DEFAULT_METHOD
    cache_dir: Path | None = None


def images_for(calibration: CalibrationOptions, preprocessing: Preprocessing, calibrating: bool,
               on_event: Listener = ignore) -> tuple[CalibrationSet | None, np.ndarray, str, list[Note]]:
    """What a new precision file is made and checked with: the calibration set (None without a
    folder), the inputs it is verified on and what they are, and notes about the images. The ONNX
    INT8 files and the ExecuTorch programs take the same images from the same folder."""
    calibration_set, notes = None, []
    if calibration.folder is not None:
        calibration_set = _load_images(calibration, preprocessing, on_event)
        notes.extend(_image_notes(calibration_set, calibrating=calibrating))
    inputs, verified_on = _verification_inputs(calibration_set, preprocessing)
    return calibration_set, inputs, verified_on, notes


# The calibration set read last, by what it was read from (see above); its arrays are shared, never written.
_LAST_READ: dict[tuple, CalibrationSet] = {}


def _load_images(calibration: CalibrationOptions, preprocessing, on_event: Listener) -> CalibrationSet:
    paths = find_images(calibration.folder, "calibration folder", argument="calibration")
    key = (str(Path(calibration.folder).resolve()), _listing(paths), calibration.count, preprocessing.to_json())
    if key in _LAST_READ:
        return _LAST_READ[key]
    calibration_set = load_calibration_set(calibration.folder, calibration.count, preprocessing,
                                           lambda total: counter(on_event, "reading calibration images", total),
                                           paths=paths)
    _LAST_READ.clear()  # one set at a time: a few hundred images are a few hundred MB
    _LAST_READ[key] = calibration_set
    return calibration_set


def _listing(paths: list[Path]) -> str:
    """A digest of the image files' names, sizes and modification times: a changed file is read again."""
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _image_notes(calibration_set: CalibrationSet, calibrating: bool) -> list[Note]:
    notes = []
    used = len(calibration_set.images)
    if calibrating and used < RECOMMENDED_IMAGES:
        notes.append(Note(f"calibrating on {used} images; {RECOMMENDED_IMAGES} or more are recommended", warning=True))
    if calibration_set.skipped:
        skipped = calibration_set.skipped
        notes.append(Note(f"skipped {len(skipped)} unreadable images, e.g. {skipped[0]}", warning=True))
    return notes


def _verification_inputs(calibration_set: CalibrationSet | None, preprocessing) -> tuple[np.ndarray, str]:
    """Held-out real images when there are enough, else the calibration images, else made ones."""
    if calibration_set is not None and len(calibration_set.holdout) >= MIN_HOLDOUT:
        return calibration_set.holdout, f"{len(calibration_set.holdout)} held-out calibration-folder images"
    if calibration_set is not None:
        return calibration_set.images, f"the {len(calibration_set.images)} calibration images (no images left to hold out)"
    images = synthetic_images(SYNTHETIC_VERIFY_IMAGES, seed=4321)
    return preprocess_batch(images, preprocessing), f"{SYNTHETIC_VERIFY_IMAGES} generated photo-like images (calibration images would be real ones)"


def held_out_inputs(calibration: CalibrationOptions, preprocessing: Preprocessing,
                    on_event: Listener = ignore) -> tuple[np.ndarray, str]:
    """The inputs a converted file is verified on, and what they are: held-out calibration
    images when a folder is given, else generated photo-like ones (as for every precision file)."""
    calibration_set = _load_images(calibration, preprocessing, on_event) if calibration.folder is not None else None
    return _verification_inputs(calibration_set, preprocessing)
